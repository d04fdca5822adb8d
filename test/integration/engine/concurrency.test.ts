/**
 * Concurrency: 100 `berth run -d` at once on one network, concurrent connect/disconnect/rm on one
 * container, and two CLI processes creating the same network name.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox } from '../../helpers/sandbox.js';

describe('concurrency', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create('q');
    await sb.berthOk('network', 'create', '--subnet', '10.130.0.0/24', 'busy');
    await sb.berthOk('network', 'create', '--subnet', '10.131.0.0/24', 'spare');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('100 berth run -d at once on one network all succeed with distinct addresses', { timeout: 300_000 }, async () => {
    const runs = await Promise.all(
      Array.from({ length: 100 }, (_, i) => sb.berth('run', '-d', '--name', `c${i}`, '--network', 'busy', '--', BUSYBOX, 'sleep', '3600')),
    );
    const failed = runs.filter((r) => r.code !== 0);
    assert.deepEqual(failed.map((r) => r.stderr), [], 'every run succeeded');
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'busy'));
    const addresses = Object.values(net.Containers as Record<string, { IPv4Address: string }>).map((c) => c.IPv4Address);
    assert.equal(addresses.length, 100);
    assert.equal(new Set(addresses).size, 100, 'no address is held twice');
    const ports = (await sb.inHost('ip', ['-o', 'link'])).stdout.split('\n').filter((l) => / master berth-/.test(l)).length;
    assert.equal(ports, 100, 'one bridge port per container');
  });

  test('concurrent connect, disconnect and rm on one container are serialised safely', async () => {
    await sb.berthOk('run', '-d', '--name', 'target', '--network', 'busy', '--', BUSYBOX, 'sleep', '3600');
    const results = await Promise.all([
      sb.berth('network', 'connect', 'spare', 'target'),
      sb.berth('network', 'disconnect', 'busy', 'target'),
      sb.berth('network', 'disconnect', 'spare', 'target'),
      sb.berth('rm', '-f', 'target'),
    ]);
    // Whatever order they ran in, each either succeeded or failed cleanly, and rm won in the end.
    for (const r of results) if (r.code !== 0) assert.match(r.stderr, /not connected|No such container|not running/);
    assert.equal((await sb.berth('inspect', 'target')).code, 1, 'the container is gone');
    for (const name of ['busy', 'spare']) {
      const [net] = JSON.parse(await sb.berthOk('network', 'inspect', name));
      assert.ok(!Object.values(net.Containers as Record<string, { Name: string }>).some((c) => c.Name === 'target'), `no endpoint left on ${name}`);
    }
  });

  test('two CLI processes creating the same network name: one wins, the other gets a clear conflict', async () => {
    const [a, b] = await Promise.all([sb.berth('network', 'create', 'twin'), sb.berth('network', 'create', 'twin')]);
    assert.deepEqual([a.code, b.code].sort(), [0, 1]);
    const loser = a.code === 0 ? b : a;
    assert.match(loser.stderr, /network with name twin already exists/);
    assert.equal((await sb.berthOk('network', 'ls', '--filter', 'name=twin', '-q')).trim().split('\n').length, 1);
  });
});
