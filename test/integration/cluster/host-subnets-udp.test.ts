/**
 * Flannel-style host subnets (--cluster-cidr) with the udp backend, on two simulated hosts with a
 * real etcd: Flannel's udp leases, the TUN device on the cluster CIDR, the MTU, and traffic between
 * the hosts' containers through the daemon's encapsulation, the receiver seeing the sender's own
 * address, outbound masqueraded. The lease lifecycle (restart, host loss, bad input) is the same
 * code for every backend and is tested in the vxlan and host-gw files.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, eventually, must } from '../../helpers/sandbox.js';
import { Cluster, OUTSIDE_ADDRESS } from '../../helpers/cluster.js';
import { harness } from '../../helpers/host-subnets.js';

describe('host subnets: udp', () => {
  const x = harness('10.7.0.0/16', 'udp', 2);
  const { h, flags, subnetOf, ipOf, ping, seenFrom, leases } = x;
  before(async () => {
    x.state.c = await Cluster.create({ hosts: 2, members: 1, ttl: 3, startDaemons: false });
    for (let i = 0; i < 2; i++) await x.state.c.startDaemon(i, flags());
    for (let i = 0; i < 2; i++) await h(i).berthOk('run', '-d', '--name', `c${i}`, '--', BUSYBOX, 'sleep', '3600');
  });
  after(async () => {
    await x.state.c?.destroy();
  });

  test('leases published as Flannel’s udp leases; the TUN device carries the cluster CIDR; containers get the underlay MTU minus 28', async () => {
    const subnets = await Promise.all([0, 1].map(subnetOf));
    assert.notEqual(subnets[0], subnets[1]);
    for (const l of await leases()) assert.equal(l.BackendType, 'udp');
    assert.match(must(await h(0).inHost('ip', ['route', 'show', '10.7.0.0/16']), 'route'), /10\.7\.0\.0\/16 dev berthudp0/);
    assert.match(must(await h(0).inNs(await h(0).netnsOf('c0'), 'ip', ['-o', 'link', 'show', 'eth0']), 'mtu'), / mtu 1472 /);
  });

  test('containers reach the other host’s container through the daemon’s encapsulation, the receiver seeing the sender’s address; outbound is masqueraded', async () => {
    const ips = await Promise.all([0, 1].map((i) => ipOf(i, `c${i}`)));
    assert.ok(await eventually(() => ping(0, 'c0', ips[1]!), 3000), 'c0 → c1');
    assert.ok(await eventually(() => ping(1, 'c1', ips[0]!), 3000), 'c1 → c0');
    assert.equal(await seenFrom(0, 'c0', await h(1).netnsOf('c1'), 1, ips[1]!, 7301), ips[0]);
    assert.equal(await seenFrom(0, 'c0', x.state.c.outsideNs, 0, OUTSIDE_ADDRESS, 7302), x.state.c.address(0));
  });
});