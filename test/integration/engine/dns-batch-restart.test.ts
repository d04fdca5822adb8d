/**
 * The resolver's batch thread ended by a fault in its own code (injected through
 * BERTH_KERNEL_FAULTS' `dnsBatch`, which makes it throw on the next batch it reads): a new thread
 * takes over the same sockets, so containers' UDP queries are answered again, with no thread or
 * descriptor left behind. A thread that keeps failing is restarted at most three times a minute;
 * then UDP stays unanswered (logged), while TCP, on the event loop, still answers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { KernelFaults } from '../../helpers/kernel-faults.js';
import { BUSYBOX, Sandbox, eventually } from '../../helpers/sandbox.js';

describe('DNS batch thread restart', () => {
  let sb: Sandbox;
  let gw: string;
  let askerNs: string;
  let target: string;
  const faults = new KernelFaults('dns');
  const threads = () => fs.readdirSync(`/proc/${sb.daemonPid}/task`).length;
  const fds = () => fs.readdirSync(`/proc/${sb.daemonPid}/fd`).length;
  /** One UDP (or TCP) query from inside the asker container, one try of one second: the address answered, or ''. */
  const ask = async (tcp = false) => {
    const r = await sb.inNs(askerNs, 'dig', ['+time=1', '+tries=1', '+short', ...(tcp ? ['+tcp'] : []), `@${gw}`, 'target']);
    return r.stdout.split('\n').filter((line) => /^\d+\.\d+\.\d+\.\d+$/.test(line)).join(',');
  };

  before(async () => {
    faults.arm();
    sb = await Sandbox.create('dr');
    await sb.berthOk('network', 'create', 'rsnet');
    gw = JSON.parse(await sb.berthOk('network', 'inspect', 'rsnet'))[0].IPAM.Config[0].Gateway;
    await sb.berthOk('run', '-d', '--name', 'target', '--network', 'rsnet', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'asker', '--network', 'rsnet', '--', BUSYBOX, 'sleep', '3600');
    askerNs = await sb.netnsOf('asker');
    target = (await sb.inspect('target')).NetworkSettings.Networks.rsnet!.IPAddress;
  });
  after(async () => {
    await sb?.destroy();
    faults.remove();
  });

  test('a new thread takes over the sockets; nothing is left behind', async () => {
    assert.equal(await ask(), target, 'answered before the fault');
    const threadsBefore = threads();
    const fdsBefore = fds();
    faults.inject('dnsBatch\n');
    assert.equal(await ask(), '', 'the query that meets the fault is lost with the thread');
    faults.inject('');
    assert.ok(await eventually(async () => (await ask()) === target, 5000, 100), 'a new thread answers on the same socket');
    assert.match(sb.daemonLog, /dns batch thread lost: a new one takes over its sockets/);
    assert.match(sb.daemonLog, /injected failure of kernel operation dnsBatch/);
    assert.ok(await eventually(() => threads() === threadsBefore && fds() === fdsBefore, 3000, 100), `threads ${threads()} (was ${threadsBefore}), descriptors ${fds()} (was ${fdsBefore})`);
  });

  test('a thread that keeps failing is given up after three restarts a minute; TCP still answers', async () => {
    faults.inject('dnsBatch\n');
    // One restart was spent above: two more, then the fourth loss within the minute is final.
    for (let i = 0; i < 3; i++) {
      await ask();
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    faults.inject('');
    assert.ok(await eventually(() => /dns batch thread lost again/.test(sb.daemonLog), 5000, 100), 'the final loss is logged');
    assert.equal(await ask(), '', 'UDP is no longer answered');
    assert.equal(await ask(true), target, 'TCP still answers (positive control through the same resolver)');
  });
});
