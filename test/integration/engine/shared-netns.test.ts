/**
 * Issue 10 item 8: the owner of a network namespace that `container:NAME` containers share keeps
 * its address while they run. `stop`/`rm` of the owner is refused with a conflict naming the
 * sharers; `rm -f` and the owner's own exit stop the sharers first, then free the address, which
 * the next container then reuses normally.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { BUSYBOX, Sandbox, eventually } from '../../helpers/sandbox.js';

describe('container:NAME sharers keep the owner’s address', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create('k');
    await sb.berthOk('network', 'create', '--subnet', '10.63.0.0/24', 'podnet');
  });
  after(async () => {
    await sb?.destroy();
  });

  const ipOf = async (name: string) => (await sb.inspect(name)).NetworkSettings.Networks.podnet?.IPAddress;
  const state = async (name: string) => (await sb.inspect(name)).State.Status;
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  async function pod(owner: string, sharer: string): Promise<{ ip: string; sharerPid: number }> {
    await sb.berthOk('run', '-d', '--name', owner, '--network', 'podnet', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', sharer, '--network', `container:${owner}`, '--', BUSYBOX, 'sleep', '3600');
    return { ip: (await ipOf(owner))!, sharerPid: (await sb.inspect(sharer)).State.Pid };
  }

  test('stop and rm of the owner are refused while a sharer runs, naming it; the next container gets another address', async () => {
    const { ip } = await pod('owner1', 'side1');
    for (const args of [['stop', 'owner1'], ['rm', 'owner1']]) {
      const r = await sb.berth(...args);
      assert.notEqual(r.code, 0, `${args.join(' ')} is refused`);
      assert.match(r.stderr, /share its network namespace.*side1/, args.join(' '));
    }
    assert.equal(await state('owner1'), 'running');
    await sb.berthOk('run', '-d', '--name', 'next1', '--network', 'podnet', '--', BUSYBOX, 'sleep', '3600');
    assert.notEqual(await ipOf('next1'), ip, 'the address stays with the namespace');
    const inside = await sb.berthOk('exec', 'side1', '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0');
    assert.match(inside, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/24`), 'the sharer still has it');
    const mac = (await sb.inspect('owner1')).NetworkSettings.Networks.podnet!.MacAddress;
    assert.notEqual((await sb.inspect('next1')).NetworkSettings.Networks.podnet!.MacAddress, mac);
  });

  test('rm -f of the owner stops the sharer first; then its address is reused (positive control)', async () => {
    const ip = (await ipOf('owner1'))!;
    const sharerPid = (await sb.inspect('side1')).State.Pid;
    await sb.berthOk('rm', '-f', 'owner1');
    assert.equal(await state('side1'), 'exited');
    assert.ok(await eventually(() => !alive(sharerPid), 3000), 'the sharer process is gone');
    await sb.berthOk('run', '-d', '--name', 'next2', '--network', 'podnet', '--', BUSYBOX, 'sleep', '3600');
    assert.equal(await ipOf('next2'), ip, 'the freed address is the lowest free one again');
  });

  test("the owner's process exiting by itself stops its sharers, then frees the address", async () => {
    const { ip, sharerPid } = await pod('owner3', 'side3');
    process.kill((await sb.inspect('owner3')).State.Pid, 'SIGKILL');
    assert.ok(await eventually(async () => (await state('owner3')) === 'exited' && (await state('side3')) === 'exited', 5000), 'both exited');
    assert.ok(await eventually(() => !alive(sharerPid), 3000), 'the sharer process is gone');
    await sb.berthOk('run', '-d', '--name', 'next3', '--network', 'podnet', '--', BUSYBOX, 'sleep', '3600');
    assert.equal(await ipOf('next3'), ip);
  });

  test('with the sharer stopped first, the owner stops normally', async () => {
    await pod('owner4', 'side4');
    await sb.berthOk('stop', 'side4');
    await sb.berthOk('stop', 'owner4');
    assert.equal(await state('owner4'), 'exited');
  });

  test('a sharer whose PID the daemon died before recording is adopted at the next start; two such are killed', async () => {
    /** Stops the daemon hard and forgets the PIDs of `names`, as a daemon killed between spawn and record leaves them. */
    const forgetPids = async (names: string[]) => {
      await sb.stopDaemon('SIGKILL');
      const db = new Database(path.join(sb.root, 'state', 'berth.db'));
      for (const name of names) db.prepare('UPDATE containers SET pid = NULL, pid_start = NULL WHERE name = ?').run(name);
      db.close();
      await sb.startDaemon();
    };
    const { sharerPid } = await pod('owner5', 'side5');
    await forgetPids(['side5']);
    assert.equal((await sb.inspect('side5')).State.Pid, sharerPid, "the sharer's process is found in the owner's namespace and adopted");
    assert.equal((await sb.inspect('owner5')).State.Running, true);
    assert.ok(alive(sharerPid));

    await sb.berthOk('run', '-d', '--name', 'side6', '--network', 'container:owner5', '--', BUSYBOX, 'sleep', '3600');
    const side6Pid = (await sb.inspect('side6')).State.Pid;
    await forgetPids(['side5', 'side6']);
    assert.ok(await eventually(() => !alive(sharerPid) && !alive(side6Pid), 3000), 'two unrecorded sharers cannot be told apart: both processes are killed');
    assert.ok(alive((await sb.inspect('owner5')).State.Pid), "the owner's process is left alone");
    await sb.berthOk('rm', '-f', 'side5', 'side6', 'owner5');
  });
});
