/**
 * Drift: someone deletes a berth bridge and runs `nft flush ruleset` in the host namespace (the
 * netavark#1258 complaint), and leaks a berth veth. `berth system reconcile` reports and repairs it
 * all: the bridge comes back, the rules come back, the leak goes, and connectivity returns.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, eventually, must, run, type Peer } from '../../helpers/sandbox.js';

describe('drift repair', () => {
  let sb: Sandbox;
  let lan: Peer;
  before(async () => {
    sb = await Sandbox.create('r');
    lan = await sb.addPeer('l', '10.205.0');
    await sb.berthOk('network', 'create', '--subnet', '10.150.0.0/24', 'fragile');
    await sb.berthOk('run', '-d', '--name', 'srv', '--network', 'fragile', '-p', '8300:80', '--', BUSYBOX, 'nc', '-ll', '-p', '80', '-e', '/bin/echo', 'still-here');
    await sb.berthOk('run', '-d', '--name', 'cli', '--network', 'fragile', '--', BUSYBOX, 'sleep', '3600');
  });
  after(async () => {
    await sb?.destroy();
  });

  const published = () => sb.inNs(lan.nsPath, BUSYBOX, ['nc', '-w', '2', lan.hostAddress, '8300']);

  test('a deleted bridge, a flushed ruleset and a leaked veth are repaired by berth system reconcile', async () => {
    assert.ok(await eventually(async () => (await published()).stdout.includes('still-here'), 3000), 'works before the damage');
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'fragile'));
    const bridge = `berth-${(net.Id as string).slice(0, 9)}`;
    must(await sb.inHost('ip', ['link', 'del', bridge]), 'delete the bridge');
    must(await sb.inHost('nft', ['flush', 'ruleset']), 'flush the ruleset');
    must(await sb.inHost('ip', ['link', 'add', 'bv0123456789ab', 'type', 'veth', 'peer', 'name', 'leak-peer']), 'a leaked berth veth');
    assert.notEqual((await published()).code === 0 && (await published()).stdout.includes('still-here'), true, 'broken now');

    const report = JSON.parse(await sb.berthOk('system', 'reconcile'));
    assert.ok(report.bridgesRestored.includes(bridge), JSON.stringify(report));
    assert.ok(report.linksRemoved.includes('bv0123456789ab'), JSON.stringify(report));
    // The containers' veths outlived their bridge: they go back on the restored one.
    assert.equal(report.portsReattached.length, 2, JSON.stringify(report));
    assert.match((await sb.inHost('nft', ['list', 'tables'])).stdout, /table ip berth/);
    assert.ok(await eventually(async () => (await published()).stdout.includes('still-here'), 3000), 'the published port works again');
  });

  test('after repair containers talk again; other tables are untouched', async () => {
    must(await run('ip', ['netns', 'exec', sb.name, 'nft', 'add', 'table', 'inet', 'someone-else']), 'a foreign table');
    const srvIp = (await sb.inspect('srv')).NetworkSettings.Networks.fragile!.IPAddress;
    assert.equal((await sb.inNs(await sb.netnsOf('cli'), BUSYBOX, ['nc', '-w', '2', srvIp, '80'])).stdout.trim(), 'still-here');
    await sb.berthOk('system', 'reconcile');
    assert.match((await sb.inHost('nft', ['list', 'tables'])).stdout, /table inet someone-else/, "berth never touches others' tables");
  });
});
