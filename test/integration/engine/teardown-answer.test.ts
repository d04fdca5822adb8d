/**
 * Issue 18 (teardown as the caller sees it): `DELETE /containers/{id}` answers once the store, DNS
 * and events say the container is gone; its kernel side (firewall elements, the held port, the
 * namespace) ends after the answer, before the engine takes its next operation. `?settle=1` (what
 * the CLI sends) answers only after the kernel side too. What the kernel side cannot undo is left
 * for the reconciler (fault injection through BERTH_KERNEL_FAULTS).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { KernelFaults } from '../../helpers/kernel-faults.js';
import { BUSYBOX, Sandbox, eventually } from '../../helpers/sandbox.js';
import { call } from '../api/http.js';

const PORT = 9300;

describe('container rm answers before its kernel side ends', () => {
  let sb: Sandbox;
  const faults = new KernelFaults('teardown');
  before(async () => {
    faults.arm();
    sb = await Sandbox.create('ta');
    await sb.berthOk('network', 'create', '--subnet', '10.93.0.0/24', 'tnet');
  });
  after(async () => {
    await sb?.destroy();
    faults.remove();
  });

  /** create?start=1&detach=0 through the API, with one published port; returns the id. */
  const start = async (name: string): Promise<string> => {
    const r = await call(sb.socket, 'POST', '/containers/create?start=1&detach=0', {
      body: { name, cmd: [BUSYBOX, 'sleep', '60'], networkMode: 'tnet', ports: [{ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: PORT, containerPort: 80 }] },
    });
    assert.equal(r.status, 201, r.text);
    return (JSON.parse(r.text) as { Id: string }).Id;
  };
  const dnatElements = async () => {
    const r = await sb.inHost('nft', ['list', 'map', 'ip', 'berth', 'dnat_any']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.match(new RegExp(`tcp \\. ${PORT} comment "container [0-9a-f]+" : [0-9.]+ \\. 80`, 'g')) ?? [];
  };

  test('the next operation after an early answer finds the port, the address and the name free', async () => {
    const first = await start('t1');
    const netns = await sb.netnsOf('t1');
    const ip1 = (await sb.inspect('t1')).NetworkSettings.Networks['tnet']!.IPAddress;
    assert.ok(fs.existsSync(netns), 'the namespace is mounted while the container runs');
    const rm = await call(sb.socket, 'DELETE', `/containers/${first}?force=1`);
    assert.equal(rm.status, 204, rm.text);
    // Same name, same port, and (lowest free) the same address: each would clash with a kernel
    // side still in place, so the engine must have finished the old one first.
    await start('t1');
    const ip2 = (await sb.inspect('t1')).NetworkSettings.Networks['tnet']!.IPAddress;
    assert.equal(ip2, ip1, 'the freed address is handed out again');
    assert.equal(fs.existsSync(netns), false, 'the old namespace is gone');
    const elements = await dnatElements();
    assert.equal(elements.length, 1, `one DNAT element for the port: ${elements.join(' | ')}`);
    assert.ok(!elements[0]!.includes(first), 'and it is the new container’s');
    assert.ok(
      await eventually(() => /"msg":"container rm settled"/.test(sb.daemonLog)),
      'the daemon logs when the kernel side of the rm has ended',
    );
  });

  test('settle=1 answers only once the namespace and the firewall element are gone', async () => {
    const netns = await sb.netnsOf('t1');
    const id = (await sb.inspect('t1')).Id;
    const rm = await call(sb.socket, 'DELETE', `/containers/${id}?force=1&settle=1`);
    assert.equal(rm.status, 204, rm.text);
    assert.equal(fs.existsSync(netns), false, 'no namespace left at the answer');
    assert.deepEqual(await dnatElements(), [], 'no DNAT element left at the answer');
  });

  test('a kernel side that fails is logged and left for the reconciler, which removes it', async () => {
    await start('t2');
    const netns = await sb.netnsOf('t2');
    const id = (await sb.inspect('t2')).Id;
    faults.inject('deleteSandbox\n');
    try {
      const rm = await call(sb.socket, 'DELETE', `/containers/${id}?force=1&settle=1`);
      assert.equal(rm.status, 204, 'the store is the truth: the rm itself succeeds');
    } finally {
      faults.inject('');
    }
    assert.ok(fs.existsSync(netns), 'the injected failure left the namespace (the control: it is really there)');
    // The daemon writes its log after the answer (lines are batched per event-loop turn).
    assert.ok(await eventually(() => /tearing down container t2: left for the reconciler/.test(sb.daemonLog)), 'the failure is logged');
    await sb.berthOk('system', 'reconcile');
    assert.equal(fs.existsSync(netns), false, 'the reconciler removed the namespace nothing references');
    const ps = await sb.berthOk('ps', '-a', '-q');
    assert.equal(ps.trim(), '', 'no container record left');
  });
});
