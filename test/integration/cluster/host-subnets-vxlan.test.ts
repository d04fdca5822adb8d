/**
 * Flannel-style host subnets (--cluster-cidr) on three simulated hosts with a real etcd: each
 * host leases a distinct subnet in Flannel's keys and its default bridge takes it; containers on
 * the default bridge of one host reach those of the others by address, the receiver seeing the
 * sender's own address (no NAT), while traffic to the outside is masqueraded; a restart keeps the
 * subnet; a host killed is gone from its peers within TTL + 1 s, and its subnet is not leased
 * again before its lease expired; bad input is refused with nothing left. This file: vxlan.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, eventually, must, sleep } from '../../helpers/sandbox.js';
import { Cluster, OUTSIDE_ADDRESS } from '../../helpers/cluster.js';
import { esc, harness } from '../../helpers/host-subnets.js';

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
    const stoppedAt = Date.now();
    await h(1).stopDaemon('SIGTERM');
    await x.state.c.startDaemon(1, flags());
    const downMs = Date.now() - stoppedAt;
    assert.equal(await subnetOf(1), before);
    // Back within the lease's TTL, the lease itself is kept; a restart slower than that (a loaded
    // machine, TTL 3 s here) finds it expired and leases the same subnet again from subnet.env.
    if (downMs < x.state.c.ttl * 1000 - 500) assert.match(h(1).daemonLog, /kept this host’s subnet lease/);
    else assert.match(h(1).daemonLog, /kept this host’s subnet lease|leased a subnet for this host/, `down for ${downMs} ms`);
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