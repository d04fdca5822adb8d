/**
 * Flannel-style host subnets (--cluster-cidr) on three simulated hosts with a real etcd: each
 * host leases a distinct subnet in Flannel's keys and its default bridge takes it; containers on
 * the default bridge of one host reach those of the others by address, the receiver seeing the
 * sender's own address (no NAT), while traffic to the outside is masqueraded; a restart keeps the
 * subnet; a host killed is gone from its peers within TTL + 1 s, and its subnet is not leased
 * again before its lease expired; bad input is refused with nothing left. This file: host-gw.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, eventually, must } from '../../helpers/sandbox.js';
import { Cluster, OUTSIDE_ADDRESS } from '../../helpers/cluster.js';
import { esc, harness } from '../../helpers/host-subnets.js';

describe('host subnets: host-gw', () => {
  // A /22 holds three leasable /24s (the first is never leased): three hosts fill it, the fourth finds it full.
  const x = harness('10.6.0.0/22', 'host-gw', 4);
  const { h, flags, subnetOf, ipOf, ping, seenFrom, daemonWith, leases } = x;
  const etcdCall = (what: string, body: unknown) => x.state.c.hosts[0]!.inHost('curl', ['-s', '-m', '2', '-X', 'POST', `http://${x.state.c.address(0)}:2379/v3/kv/${what}`, '-d', JSON.stringify(body)]);
  const b64 = (t: string) => Buffer.from(t).toString('base64');
  before(async () => {
    x.state.c = await Cluster.create({ hosts: 4, members: 1, ttl: 3, startDaemons: false });
    for (let i = 0; i < 3; i++) await x.state.c.startDaemon(i, flags());
    for (let i = 0; i < 3; i++) await h(i).berthOk('run', '-d', '--name', `c${i}`, '--', BUSYBOX, 'sleep', '3600');
  });
  after(async () => {
    await x.state.c?.destroy();
  });

  test('each host leases a distinct /24, published as Flannel’s host-gw leases; a plain route per peer via its underlay address', async () => {
    const subnets = await Promise.all([0, 1, 2].map(subnetOf));
    assert.deepEqual([...subnets].sort(), ['10.6.1.0/24', '10.6.2.0/24', '10.6.3.0/24']);
    const [config] = await x.state.c.etcdList('/coreos.com/network/config');
    assert.equal(config?.value, '{"Network":"10.6.0.0/22","SubnetLen":24,"Backend":{"Type":"host-gw"}}');
    for (const l of await leases()) assert.deepEqual({ PublicIP: l.PublicIP, PublicIPv6: l.PublicIPv6, BackendType: l.BackendType, BackendData: l.BackendData }, { PublicIP: l.PublicIP, PublicIPv6: null, BackendType: 'host-gw', BackendData: null });
    for (const i of [1, 2]) {
      assert.match(must(await h(0).inHost('ip', ['route', 'show', subnets[i]!]), 'route'), new RegExp(`${esc(subnets[i]!)} via ${esc(x.state.c.address(i))} dev eth0 proto (0xb5|181)`));
    }
    assert.notEqual((await h(0).inHost('ip', ['link', 'show', 'berth.1'])).code, 0, 'no VXLAN device');
    assert.match(must(await h(0).inNs(await h(0).netnsOf('c0'), 'ip', ['-o', 'link', 'show', 'eth0']), 'mtu'), / mtu 1500 /);
  });

  test('containers reach the other hosts’ containers unencapsulated, the receiver seeing the sender’s address; outbound is masqueraded', async () => {
    const ips = await Promise.all([0, 1, 2].map((i) => ipOf(i, `c${i}`)));
    for (const [from, to] of [[0, 1], [0, 2], [2, 1]] as const) assert.ok(await eventually(() => ping(from, `c${from}`, ips[to]!), 3000), `c${from} → c${to}`);
    assert.equal(await seenFrom(0, 'c0', await h(1).netnsOf('c1'), 1, ips[1]!, 7201), ips[0]);
    assert.equal(await seenFrom(0, 'c0', x.state.c.outsideNs, 0, OUTSIDE_ADDRESS, 7202), x.state.c.address(0));
  });

  test('a fourth host finds the cluster CIDR full: refused, nothing left', async () => {
    const r = await daemonWith(3, ['--cluster-store', x.state.c.store, '--advertise-addr', x.state.c.address(3), '--cluster-ttl', '3', ...flags()]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /the cluster CIDR 10\.6\.0\.0\/22 is full: all 3 of its \/24 host subnets are leased/);
    assert.equal((await leases()).length, 3);
    assert.notEqual((await h(3).inHost('ip', ['link', 'show', 'berth0'])).code, 0, 'no berth0 on host 3');
  });

  test('a peer off the L2 segment: running hosts warn and skip it, a joining host refuses naming it; without it the host joins (after the dead host’s lease expired)', async () => {
    // 10.6.0.0/24 is never leased by berth, so the fake host takes no real host's place.
    const fake = '/coreos.com/network/subnets/10.6.0.0-24';
    must(await etcdCall('put', { key: b64(fake), value: b64('{"PublicIP":"10.99.0.5","PublicIPv6":null,"BackendType":"host-gw","BackendData":null}') }), 'put a fake lease');
    assert.ok(await eventually(() => /skipped a host whose subnet this host cannot reach.*10\.99\.0\.5/.test(h(0).daemonLog), 3000), h(0).daemonLog.slice(-2000));
    assert.match(h(0).daemonLog, /host-gw cannot reach host 10\.99\.0\.5 \(subnet 10\.6\.0\.0\/24\): it is not on this host's L2 segment \(eth0: 192\.168\.90\.0\/24\)/);
    assert.equal(must(await h(0).inHost('ip', ['route', 'show', '10.6.0.0/24']), 'route').trim(), '', 'no route to it');
    // Host 2 dies: its subnet frees when its lease expires (its route goes from host 0 by then).
    const s2 = await subnetOf(2);
    const killedAt = Date.now();
    await h(2).stopDaemon('SIGKILL');
    assert.ok(await eventually(async () => must(await h(0).inHost('ip', ['route', 'show', s2]), 'route').trim() === '', (x.state.c.ttl + 3) * 1000, 50));
    assert.ok(Date.now() - killedAt <= (x.state.c.ttl + 1) * 1000, `host 2’s route dropped after ${Date.now() - killedAt} ms`);
    const join = ['--cluster-store', x.state.c.store, '--advertise-addr', x.state.c.address(3), '--cluster-ttl', '3', ...flags()];
    const refused = await daemonWith(3, join);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /host-gw cannot reach host 10\.99\.0\.5 \(subnet 10\.6\.0\.0\/24\)/);
    assert.equal((await leases()).some((l) => l.PublicIP === x.state.c.address(3)), false, 'no lease of host 3');
    assert.equal(must(await h(3).inHost('ip', ['route', 'show', 'proto', '181']), 'routes').trim(), '', 'no route left on host 3');
    assert.notEqual((await h(3).inHost('ip', ['link', 'show', 'berth0'])).code, 0, 'no berth0 on host 3');
    // Positive control: without the fake peer, host 3 joins, on the subnet host 2 held.
    must(await etcdCall('deleterange', { key: b64(fake) }), 'delete the fake lease');
    await x.state.c.startDaemon(3, flags());
    assert.equal(await subnetOf(3), s2);
    await h(3).berthOk('run', '-d', '--name', 'c3', '--', BUSYBOX, 'sleep', '3600');
    const ip3 = await ipOf(3, 'c3');
    assert.ok(await eventually(() => ping(0, 'c0', ip3), 3000), 'c0 → c3');
  });
});