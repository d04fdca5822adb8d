/**
 * `GET /berth/topology` on a two-host cluster: both hosts are listed, the overlay network carries
 * its VNI, its bridge and VXLAN device as the kernel has them, the other host as a VXLAN peer at
 * its underlay address, and the other host's container as a remote endpoint (a real packet crosses
 * first, so what the topology says is what works).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../../helpers/cluster.js';
import { BUSYBOX, eventually, must, type Sandbox } from '../../helpers/sandbox.js';
import type { Topology } from '../../../src/engine/topology.js';

describe('topology of a cluster', () => {
  let c: Cluster;
  const host = (i: number) => c.hosts[i]!;
  const topologyOf = async (sb: Sandbox) => JSON.parse(must(await sb.inHost('curl', ['-s', '--max-time', '5', '--unix-socket', sb.socket, 'http://berth/berth/topology']), 'topology')) as Topology;

  before(async () => {
    c = await Cluster.create({ hosts: 2 });
    must(await host(0).berth('network', 'create', '-d', 'overlay', '--subnet', '10.91.0.0/24', 'ovt'), 'create overlay');
    assert.ok(await eventually(async () => (await host(1).berth('network', 'inspect', 'ovt')).code === 0, 5000), 'host 1 lists ovt');
    for (let i = 0; i < 2; i++) await host(i).berthOk('run', '-d', '--name', `t${i}`, '--network', 'ovt', '--', BUSYBOX, 'sleep', '3600');
  });
  after(async () => {
    await c?.destroy();
  });

  test('hosts, the overlay with its devices and VXLAN peer, and the remote container', async () => {
    const remoteIp = (await host(1).inspect('t1')).NetworkSettings.Networks.ovt!.IPAddress;
    const ns0 = await host(0).netnsOf('t0');
    assert.ok(await eventually(async () => (await host(0).inNs(ns0, BUSYBOX, ['ping', '-c', '1', '-W', '1', remoteIp])).code === 0, 5000), `t0 reaches t1 (${remoteIp})`);

    const t = await topologyOf(host(0));
    assert.equal(t.hosts.length, 2, JSON.stringify(t.hosts));
    const [me, other] = [t.hosts.find((h) => h.local)!, t.hosts.find((h) => !h.local)!];
    assert.equal(me.id, t.hostId);
    assert.ok(other.address, 'the other host has its underlay address');

    const ovt = t.networks.find((n) => n.name === 'ovt')!;
    assert.equal(ovt.driver, 'overlay');
    assert.equal(typeof ovt.vni, 'number');
    const roles = Object.fromEntries(ovt.devices.map((d) => [d.role, { present: d.present, up: d.up, kind: d.kind }]));
    assert.deepEqual(roles.bridge, { present: true, up: true, kind: 'bridge' });
    assert.deepEqual(roles.vxlan, { present: true, up: true, kind: 'vxlan' });
    assert.deepEqual(ovt.vxlanPeers, [{ hostId: other.id, vtep: other.address }]);

    const remote = t.remoteEndpoints.filter((r) => r.networkId === ovt.id);
    assert.deepEqual(remote.map((r) => ({ name: r.name, ip: r.ip, hostId: r.hostId })), [{ name: 't1', ip: remoteIp, hostId: other.id }]);
    const local = t.containers.find((x) => x.name === 't0')!;
    assert.equal(local.endpoints[0]!.hostLink!.master, ovt.devices.find((d) => d.role === 'bridge')!.name);
  });
});
