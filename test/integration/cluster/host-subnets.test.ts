/**
 * Flannel-style host subnets (--cluster-cidr) on three simulated hosts with a real etcd: each
 * host leases a distinct subnet in Flannel's keys and its default bridge takes it; containers on
 * the default bridge of one host reach those of the others by address, the receiver seeing the
 * sender's own address (no NAT), while traffic to the outside is masqueraded; a restart keeps the
 * subnet; a host killed is gone from its peers within TTL + 1 s, and its subnet is not leased
 * again before its lease expired; bad input is refused with nothing left. Once for vxlan, once
 * for host-gw (which also refuses a peer off its L2 segment).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BERTH, BUSYBOX, eventually, must, run, sleep } from '../../helpers/sandbox.js';
import { Cluster, OUTSIDE_ADDRESS } from '../../helpers/cluster.js';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** What both backends' suites share: the cluster, its hosts and the checks on them. */
function harness(cidr: string, backend: string, hosts: number) {
  const state = { c: undefined as unknown as Cluster };
  const h = (i: number) => state.c.hosts[i]!;
  const flags = (extra: string[] = []) => ['--cluster-cidr', cidr, '--backend', backend, ...extra];
  const subnetOf = async (i: number) => {
    const [net] = JSON.parse(await h(i).berthOk('network', 'inspect', 'bridge'));
    return net.IPAM.Config[0].Subnet as string;
  };
  const ipOf = async (i: number, name: string) => (await h(i).inspect(name)).NetworkSettings.Networks.bridge!.IPAddress;
  const ping = async (i: number, from: string, target: string) => (await h(i).inNs(await h(i).netnsOf(from), BUSYBOX, ['ping', '-c', '1', '-W', '1', target])).code === 0;
  /** The address a TCP listener at `target` sees `from` connect from. */
  const seenFrom = async (fromHost: number, from: string, toNs: string, toHost: number, target: string, port: number) => {
    const listener = h(toHost).spawnIn(toNs, 'socat', [`TCP-LISTEN:${port},reuseaddr,fork`, 'SYSTEM:echo $SOCAT_PEERADDR']);
    try {
      await eventually(async () => (await h(toHost).inNs(toNs, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(`:${port}`), 3000);
      const got = await h(fromHost).inNs(await h(fromHost).netnsOf(from), BUSYBOX, ['nc', '-w', '2', target, String(port)], 5000);
      return got.stdout.trim();
    } finally {
      listener.kill('SIGKILL');
    }
  };
  /** A daemon in host i's namespace on its own root, with these flags; it must exit on its own. */
  const daemonWith = (i: number, args: string[]) =>
    run('nsenter', [`--net=${h(i).hostNs}`, '--', process.execPath, BERTH, 'daemon', '--root', path.join(h(i).root, 'state'), '--host', `unix://${h(i).root}/bad.sock`, '--resolv-conf', h(i).resolvConf, ...args], { timeoutMs: 15_000 });
  const leases = async () => (await state.c.etcdList('/coreos.com/network/subnets/')).map((kv) => ({ key: kv.key, ...JSON.parse(kv.value) }));
  return { state, h, flags, subnetOf, ipOf, ping, seenFrom, daemonWith, leases, hosts };
}

describe('host subnets: vxlan', () => {
  const x = harness('10.5.0.0/16', 'vxlan', 3);
  const { h, flags, subnetOf, ipOf, ping, seenFrom, daemonWith, leases } = x;
  before(async () => {
    x.state.c = await Cluster.create({ hosts: 3, members: 1, ttl: 3, startDaemons: false });
    for (let i = 0; i < 3; i++) await x.state.c.startDaemon(i, flags());
    for (let i = 0; i < 3; i++) await h(i).berthOk('run', '-d', '--name', `c${i}`, '--', BUSYBOX, 'sleep', '3600');
  });
  after(async () => {
    await x.state.c?.destroy();
  });

  test('each host leases a distinct /24 of the cluster CIDR, its berth0 takes it, and subnet.env records it as Flannel does', async () => {
    const subnets = await Promise.all([0, 1, 2].map(subnetOf));
    assert.equal(new Set(subnets).size, 3, subnets.join(' '));
    for (const [i, s] of subnets.entries()) {
      assert.match(s, /^10\.5\.\d+\.0\/24$/);
      assert.notEqual(s, '10.5.0.0/24', 'the first subnet is never leased (Flannel’s SubnetMin)');
      const gw = s.replace(/0\/24$/, '1');
      assert.match(must(await h(i).inHost('ip', ['-4', '-o', 'addr', 'show', 'berth0']), 'berth0'), new RegExp(`inet ${esc(gw)}/24`));
      const env = fs.readFileSync(path.join(h(i).root, 'state', 'subnet.env'), 'utf8');
      assert.match(env, /^FLANNEL_NETWORK=10\.5\.0\.0\/16$/m);
      assert.match(env, new RegExp(`^FLANNEL_SUBNET=${esc(gw)}/24$`, 'm'));
      assert.match(env, /^FLANNEL_MTU=1450$/m);
      assert.match(env, /^FLANNEL_IPMASQ=true$/m);
      assert.match(must(await h(i).inNs(await h(i).netnsOf(`c${i}`), 'ip', ['-o', 'link', 'show', 'eth0']), 'mtu'), / mtu 1450 /);
    }
  });

  test('etcd holds Flannel’s keys and JSON: the config, and one lease per host with its PublicIP and VtepMAC', async () => {
    const [config] = await x.state.c.etcdList('/coreos.com/network/config');
    assert.equal(config?.value, '{"Network":"10.5.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}');
    const all = await leases();
    assert.equal(all.length, 3);
    for (let i = 0; i < 3; i++) {
      const s = await subnetOf(i);
      const lease = all.find((l) => l.key === `/coreos.com/network/subnets/${s.replace('/', '-')}`);
      assert.ok(lease, `a key for ${s}`);
      const mac = /link\/ether (\S+)/.exec(must(await h(i).inHost('ip', ['link', 'show', 'berth.1']), 'berth.1'))![1];
      assert.deepEqual(Object.keys(lease).slice(1), ['PublicIP', 'PublicIPv6', 'BackendType', 'BackendData'], 'field order as Flannel writes it');
      assert.deepEqual({ ...lease, key: undefined }, { key: undefined, PublicIP: x.state.c.address(i), PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: mac } });
    }
  });

  test('one VXLAN device per host (berth.1, VNI 1, port 8472, learning off) and three entries per peer', async () => {
    const dev = must(await h(0).inHost('ip', ['-d', 'link', 'show', 'berth.1']), 'berth.1');
    assert.match(dev, /mtu 1450/);
    assert.match(dev, /vxlan id 1 local 192\.168\.90\.11 dev eth0 srcport \d+ \d+ dstport 8472 nolearning/);
    const s0 = await subnetOf(0);
    assert.match(must(await h(0).inHost('ip', ['-4', '-o', 'addr', 'show', 'berth.1']), 'addr'), new RegExp(`inet ${esc(s0.replace('/24', ''))}/32`));
    for (const i of [1, 2]) {
      const s = await subnetOf(i);
      const net = s.replace('/24', '');
      const mac = /link\/ether (\S+)/.exec(must(await h(i).inHost('ip', ['link', 'show', 'berth.1']), 'peer mac'))![1]!;
      assert.match(must(await h(0).inHost('ip', ['neigh', 'show', 'dev', 'berth.1']), 'neigh'), new RegExp(`${esc(net)} lladdr ${mac} PERMANENT`));
      assert.match(must(await h(0).inHost('bridge', ['fdb', 'show', 'dev', 'berth.1']), 'fdb'), new RegExp(`${mac} dst ${esc(x.state.c.address(i))} self permanent`));
      assert.match(must(await h(0).inHost('ip', ['route', 'show', s]), 'route'), new RegExp(`${esc(s)} via ${esc(net)} dev berth\\.1 proto (0xb5|181) onlink`));
    }
  });

  test('a container reaches containers on the other hosts by address, and the receiver sees its own address', async () => {
    const ips = await Promise.all([0, 1, 2].map((i) => ipOf(i, `c${i}`)));
    for (const [from, to] of [[0, 1], [0, 2], [1, 2], [2, 0]] as const) {
      assert.ok(await eventually(() => ping(from, `c${from}`, ips[to]!), 3000), `c${from} → c${to} (${ips[to]})`);
    }
    for (const to of [1, 2]) assert.equal(await x.seenFrom(0, 'c0', await h(to).netnsOf(`c${to}`), to, ips[to]!, 7000 + to), ips[0], `c${to} sees c0’s own address`);
    // A full-size packet crosses: 1422 + 8 ICMP + 20 IP = the MTU, 1450.
    assert.equal((await h(0).inNs(await h(0).netnsOf('c0'), BUSYBOX, ['ping', '-c', '1', '-W', '2', '-s', '1422', ips[1]!])).code, 0);
  });

  test('outbound to the outside is masqueraded: the outside sees the host’s address', async () => {
    assert.equal(await seenFrom(0, 'c0', x.state.c.outsideNs, 0, OUTSIDE_ADDRESS, 7100), x.state.c.address(0));
  });

  test('the reconciler restores a deleted route and neighbour entry', async () => {
    const s1 = await subnetOf(1);
    must(await h(0).inHost('ip', ['route', 'del', s1]), 'delete the route');
    must(await h(0).inHost('ip', ['neigh', 'del', s1.replace('/24', ''), 'dev', 'berth.1']), 'delete the neighbour');
    assert.equal(await ping(0, 'c0', await ipOf(1, 'c1')), false, 'no path without them');
    const report = JSON.parse(await h(0).berthOk('system', 'reconcile'));
    assert.deepEqual(report.hostSubnetPeersRepaired, [s1]);
    assert.ok(await eventually(async () => ping(0, 'c0', await ipOf(1, 'c1')), 3000), 'the path is back');
  });

  test('a daemon restart keeps the host’s subnet and its containers’ traffic', async () => {
    const before = await subnetOf(1);
    await h(1).stopDaemon('SIGTERM');
    await x.state.c.startDaemon(1, flags());
    assert.equal(await subnetOf(1), before);
    assert.match(h(1).daemonLog, /kept this host’s subnet lease/);
    assert.ok(await eventually(async () => ping(0, 'c0', await ipOf(1, 'c1')), 3000));
  });

  test('a host killed is gone from its peers within TTL + 1 s; its subnet is not leased again before its lease expired', async () => {
    const s2 = await subnetOf(2);
    const key = `/coreos.com/network/subnets/${s2.replace('/', '-')}`;
    const routeTo = async () => must(await h(0).inHost('ip', ['route', 'show', s2]), 'route').trim() !== '';
    assert.ok(await routeTo());
    const killedAt = Date.now();
    await h(2).stopDaemon('SIGKILL');
    await sleep(1000);
    assert.equal((await x.state.c.etcdList(key))[0]?.value.includes(x.state.c.address(2)), true, 'the key is still host 2’s a second later');
    assert.ok(await eventually(async () => !(await routeTo()), (x.state.c.ttl + 3) * 1000, 50), 'host 0 dropped the route');
    const gone = Date.now() - killedAt;
    assert.ok(gone <= (x.state.c.ttl + 1) * 1000, `dropped after ${gone} ms (TTL ${x.state.c.ttl} s)`);
    const neigh = must(await h(0).inHost('ip', ['neigh', 'show', 'dev', 'berth.1']), 'neigh');
    assert.doesNotMatch(neigh, new RegExp(`${esc(s2.replace('/24', ''))} `));
    assert.deepEqual(await x.state.c.etcdList(key), [], 'the key expired with its lease');
  });

  test('bad input is refused naming what is wrong, with nothing left (no key, berth0 unchanged)', async () => {
    // Host 2's daemon is dead (the previous test): each attempt runs on its root.
    const berth0 = must(await h(2).inHost('ip', ['-4', '-o', 'addr', 'show', 'berth0']), 'berth0');
    const store = ['--cluster-store', x.state.c.store, '--advertise-addr', x.state.c.address(2), '--cluster-ttl', '3'];
    const cases: [string[], RegExp][] = [
      [['--cluster-cidr', '10.6.0.0/16'], /--cluster-cidr 10\.6\.0\.0\/16 differs from the cluster's network 10\.5\.0\.0\/16 in etcd \(\/coreos\.com\/network\/config\)/],
      [['--cluster-cidr', '10.5.0.0/16', '--host-subnet-size', '25'], /--host-subnet-size 25 differs from the cluster's SubnetLen 24/],
      [['--cluster-cidr', '10.5.0.0/16', '--backend', 'host-gw'], /--backend host-gw differs from the cluster's backend vxlan/],
      [['--cluster-cidr', '192.168.0.0/16'], /--cluster-cidr 192\.168\.0\.0\/16 overlaps host (address 192\.168\.90\.13\/24|route 192\.168\.90\.0\/24)/],
      [['--cluster-cidr', '10.5.0.0/24'], /--cluster-cidr 10\.5\.0\.0\/24 is too small for --host-subnet-size 24/],
      [['--cluster-cidr', '10.5.0.0/16', '--backend', 'ipip'], /--backend "ipip" is not a host-subnet backend: use one of vxlan, host-gw, udp/],
      [['--backend', 'vxlan'], /--host-subnet-size and --backend need --cluster-cidr/],
    ];
    for (const [args, message] of cases) {
      const r = await daemonWith(2, [...store, ...args]);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, message, args.join(' '));
      assert.doesNotMatch(r.stderr, /daemon ready/);
    }
    assert.equal((await leases()).some((l) => l.PublicIP === x.state.c.address(2)), false, 'no lease of host 2');
    assert.equal(must(await h(2).inHost('ip', ['-4', '-o', 'addr', 'show', 'berth0']), 'berth0'), berth0, 'berth0 unchanged');
    // Positive control: the right flags start it again, on a new subnet (the old one expired).
    await x.state.c.startDaemon(2, flags());
    assert.equal((await leases()).filter((l) => l.PublicIP === x.state.c.address(2)).length, 1);
  });
});

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
