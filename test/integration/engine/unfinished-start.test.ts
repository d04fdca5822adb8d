/**
 * A daemon killed in the middle of a start: a start records "running" while the kernel thread
 * makes its interfaces (it does its ports, firewall and DNS meanwhile), so such a crash leaves a
 * container the store calls running whose endpoints never became active. The reconciler undoes
 * that start at the next start-up: the container is exited, its published port, firewall element
 * and namespace are gone. A container whose start finished is left as it was.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { ApiClient } from '../../../src/api/client.js';
import { BUSYBOX, Sandbox, eventually, must } from '../../helpers/sandbox.js';

describe('a start cut short by a crash', () => {
  let sb: Sandbox;
  let api: ApiClient;
  before(async () => {
    sb = await Sandbox.create('us');
    await sb.berthOk('network', 'create', '--subnet', '10.122.0.0/24', 'usnet');
    api = new ApiClient(`unix://${sb.socket}`);
  });
  after(async () => {
    api?.close();
    await sb?.destroy();
  });

  const ruleset = async () => must(await sb.inHost('nft', ['list', 'ruleset']), 'nft list ruleset');

  test('is undone at the next start-up; a finished one is kept', async () => {
    // A network-only start (a runtime's start?detach=0: no process yet), and one that finished with its process.
    const { Id: half } = await api.request<{ Id: string }>('POST', '/containers/create?start=1&detach=0', {
      name: 'half', cmd: [BUSYBOX, 'sleep', '3600'], networkMode: 'usnet',
      ports: [{ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8404, containerPort: 80 }],
    });
    await sb.berthOk('run', '-d', '--name', 'whole', '--network', 'usnet', '-p', '8405:80', '--', BUSYBOX, 'sleep', '3600');
    const halfNs = (await sb.inspect('half')).NetworkSettings.SandboxKey;
    const before = await ruleset();
    assert.match(before, /\b8404\b/);
    assert.match(before, /\b8405\b/);
    api.close();
    await sb.stopDaemon('SIGKILL');
    // The state a crash before its interface was made leaves: running, its endpoint still pending.
    const d = new Database(path.join(sb.root, 'state', 'berth.db'));
    try {
      assert.equal(d.prepare("UPDATE endpoints SET state = 'pending' WHERE container_id = ?").run(half).changes, 1);
    } finally {
      d.close();
    }
    await sb.startDaemon();
    const after = await sb.inspect('half');
    assert.equal(after.State.Status, 'exited', 'the unfinished start is undone');
    assert.deepEqual(after.NetworkSettings.Networks, {}, 'no endpoint is left');
    assert.ok(await eventually(async () => !/\b8404\b/.test(await ruleset()), 5000, 200), 'its published port leaves the firewall');
    assert.ok(await eventually(() => !fs.existsSync(halfNs), 5000, 100), 'its namespace is gone');
    assert.match(sb.daemonLog, /half/);
    // Positive control: the finished start is untouched.
    const whole = await sb.inspect('whole');
    assert.equal(whole.State.Running, true);
    assert.match(whole.NetworkSettings.Networks.usnet!.IPAddress, /^10\.122\.0\./);
    assert.match(await ruleset(), /\b8405\b/);
    await sb.berthOk('rm', '-f', 'whole', 'half');
  });
});
