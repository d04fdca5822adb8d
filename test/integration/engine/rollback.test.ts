/**
 * Issue 10 item 15: rollback when a late step fails. Faults are injected into the daemon's kernel
 * calls through BERTH_KERNEL_FAULTS (src/kernel/faults.ts): a failed network create leaves no
 * firewall elements, a failed connect leaves no endpoint, a start whose veth cannot be made
 * (after its ports, firewall and DNS were applied beside it) leaves none of them, and a stop whose
 * firewall update fails still tears the container down, with the firewall rebuilt from the store
 * once nft works again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { KernelFaults } from '../../helpers/kernel-faults.js';
import { BUSYBOX, Sandbox, eventually, must } from '../../helpers/sandbox.js';

describe('rollback of late failures', () => {
  let sb: Sandbox;
  const faults = new KernelFaults('rollback');

  before(async () => {
    faults.arm();
    sb = await Sandbox.create('q');
    await sb.berthOk('network', 'create', '--subnet', '10.66.0.0/24', 'roomy');
    await sb.berthOk('network', 'create', '--subnet', '10.67.0.0/24', '-o', 'com.docker.network.bridge.enable_icc=false', 'strict');
  });
  after(async () => {
    await sb?.destroy();
    faults.remove();
  });

  const ruleset = async () => must(await sb.inHost('nft', ['list', 'ruleset']), 'nft list ruleset');

  test('network create: a failure after the firewall step leaves no firewall elements, no bridge, no network', async () => {
    faults.inject('nft after 1\n');
    const r = await sb.berth('network', 'create', '--subnet', '10.65.0.0/24', '-o', 'com.docker.network.bridge.name=rbk0', 'rbk');
    assert.notEqual(r.code, 0, 'the create fails');
    faults.inject('');
    assert.doesNotMatch(await sb.berthOk('network', 'ls'), /\brbk\b/);
    assert.notEqual((await sb.inHost('ip', ['link', 'show', 'rbk0'])).code, 0, 'no bridge');
    assert.ok(await eventually(async () => !/rbk0|10\.65\.0\./.test(await ruleset()), 5000, 200), 'no firewall element of the network is left');
    // Positive control: the same network, created without faults, shows in the ruleset.
    await sb.berthOk('network', 'create', '--subnet', '10.65.0.0/24', '-o', 'com.docker.network.bridge.name=rbk0', 'rbk');
    assert.match(await ruleset(), /rbk0|10\.65\.0\./);
    await sb.berthOk('network', 'rm', 'rbk');
  });

  test('network connect: a failed firewall update leaves no endpoint behind', async () => {
    await sb.berthOk('run', '-d', '--name', 'joiner', '--network', 'roomy', '--', BUSYBOX, 'sleep', '3600');
    const ns = await sb.netnsOf('joiner');
    faults.inject('nft\n');
    const r = await sb.berth('network', 'connect', 'strict', 'joiner');
    faults.inject('');
    assert.notEqual(r.code, 0, 'the connect fails');
    assert.equal((await sb.inspect('joiner')).NetworkSettings.Networks.strict, undefined, 'no endpoint in the store');
    assert.ok(await eventually(async () => (await sb.inNs(ns, 'ip', ['link', 'show', 'eth1'])).code !== 0, 3000), 'no eth1 in the container');
    assert.deepEqual(JSON.parse(await sb.berthOk('network', 'inspect', 'strict'))[0].Containers, {});
    // Positive control: without the fault the same connect works.
    await sb.berthOk('network', 'connect', 'strict', 'joiner');
    assert.match((await sb.inNs(ns, 'ip', ['-br', 'addr', 'show', 'eth1'])).stdout, /10\.67\.0\.2\/24/);
  });

  test('start: a veth that cannot be made leaves no published port, held port, DNS name or endpoint', async () => {
    await sb.berthOk('run', '-d', '--name', 'asker', '--network', 'roomy', '--', BUSYBOX, 'sleep', '3600');
    const asker = await sb.netnsOf('asker');
    const resolves = async (name: string) => (await sb.inNs(asker, BUSYBOX, ['nslookup', name, '10.66.0.1'])).code === 0;
    // A host process can bind the port (nc then waits until `timeout` ends it: 124) unless berth holds it.
    const hostCanBind = async () => (await sb.inHost('timeout', ['1', BUSYBOX, 'nc', '-l', '-p', '8401'])).code === 124;
    assert.ok(await hostCanBind(), 'the port is free before');
    faults.inject('attach\n');
    const r = await sb.berth('run', '-d', '--name', 'unmade', '--network', 'roomy', '-p', '8401:80', '--', BUSYBOX, 'sleep', '3600');
    faults.inject('');
    assert.notEqual(r.code, 0, 'the run fails');
    assert.match(r.stderr, /injected failure/);
    assert.doesNotMatch(await sb.berthOk('ps', '-a'), /\bunmade\b/, 'no container is left');
    assert.doesNotMatch(await ruleset(), /\b8401\b/, 'no published-port element');
    assert.ok(await hostCanBind(), 'the port is not held');
    assert.equal(await resolves('unmade'), false, 'the name does not resolve');
    const onRoomy = async () => Object.values(JSON.parse(await sb.berthOk('network', 'inspect', 'roomy'))[0].Containers as Record<string, { Name: string }>).map((c) => c.Name);
    assert.ok(!(await onRoomy()).includes('unmade'), 'no endpoint on the network');
    // Positive control: the same run without the fault publishes, holds and names it.
    await sb.berthOk('run', '-d', '--name', 'unmade', '--network', 'roomy', '-p', '8401:80', '--', BUSYBOX, 'sleep', '3600');
    assert.match(await ruleset(), /\b8401\b/);
    assert.equal(await hostCanBind(), false, 'the port is held');
    assert.ok(await resolves('unmade'), 'the name resolves');
    assert.ok((await onRoomy()).includes('unmade'));
    await sb.berthOk('rm', '-f', 'unmade', 'asker');
  });

  test('stop: a failed firewall update still tears the container down; the firewall follows once nft works', async () => {
    await sb.berthOk('run', '-d', '--name', 'pub', '--network', 'roomy', '-p', '8400:80', '--', BUSYBOX, 'sleep', '3600');
    const pub = await sb.inspect('pub');
    const ip = pub.NetworkSettings.Networks.roomy!.IPAddress;
    assert.match(await ruleset(), /\b8400\b/, 'the published port is in the ruleset');
    faults.inject('nft\n');
    const r = await sb.berth('stop', 'pub');
    assert.equal(r.code, 0, `stop succeeds: ${r.stderr}`);
    assert.equal((await sb.inspect('pub')).State.Status, 'exited');
    assert.ok(!fs.existsSync(pub.NetworkSettings.SandboxKey), 'its namespace is gone');
    assert.doesNotMatch((await sb.inHost('ip', ['neigh', 'show', ip])).stdout, /PERMANENT/, 'its neighbour entry is gone');
    faults.inject('');
    assert.ok(await eventually(async () => !/\b8400\b/.test(await ruleset()), 5000, 200), 'the published port leaves the ruleset');
  });
});
