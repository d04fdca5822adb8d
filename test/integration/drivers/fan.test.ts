/**
 * fan networks between simulated hosts with no cluster store (no etcd, daemons without
 * --cluster-store): each host creates the network with the same two options and gets its own
 * slice of the overlay from its underlay address; containers on different hosts reach each other
 * with their own addresses, from the first packet, including on a host the others never heard of
 * and while another host's daemon is down. Bad input is refused with nothing left behind; the
 * reconciler restores the fan device; network rm removes it.
 * berth's own firewall carries the traffic: the fan's overlay is the network's routed peer
 * (un-NATed both ways, new connections accepted), and outbound to the outside is masqueraded.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, eventually, must, sleep } from '../../helpers/sandbox.js';
import { Cluster, OUTSIDE_ADDRESS } from '../../helpers/cluster.js';

const OVERLAY = '250.0.0.0/8';
const FAN = ['-d', 'fan', '-o', 'underlay=192.168.0.0/16', '-o', `overlay=${OVERLAY}`];

describe('fan networks across hosts, without a cluster store', () => {
  let c: Cluster;
  const host = (i: number) => c.hosts[i]!;
  const ipOf = async (i: number, name: string) => (await host(i).inspect(name)).NetworkSettings.Networks.fan!.IPAddress;
  const ping = async (i: number, name: string, target: string, extra: string[] = []) =>
    host(i).inNs(await host(i).netnsOf(name), BUSYBOX, ['ping', '-c', '1', '-W', '2', ...extra, target]);
  /** Who `to` (a container on host j) sees connecting from a container on host i, over TCP. */
  const peerSeen = async (i: number, from: string, j: number, to: string, port: number): Promise<string> => {
    const ns = await host(j).netnsOf(to);
    const listener = host(j).spawnIn(ns, 'socat', [`TCP-LISTEN:${port},reuseaddr,fork`, 'SYSTEM:echo $SOCAT_PEERADDR']);
    try {
      await eventually(async () => (await host(j).inNs(ns, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(`:${port}`), 3000);
      return (await host(i).inNs(await host(i).netnsOf(from), BUSYBOX, ['nc', '-w', '2', await ipOf(j, to), String(port)], 5000)).stdout.trim();
    } finally {
      listener.kill('SIGKILL');
    }
  };
  const createFan = (i: number) => host(i).berthOk('network', 'create', ...FAN, 'fan');
  const fanDevice = async (i: number) => /\d+: (bfx\w+):/.exec(must(await host(i).inHost('ip', ['-o', 'link', 'show', 'type', 'vxlan']), 'vxlan'))?.[1];

  before(async () => {
    c = await Cluster.create({ hosts: 3, members: 0, startDaemons: false });
    await host(0).startDaemon([]);
    await host(1).startDaemon([]);
  });
  after(async () => {
    await c?.destroy();
  });

  test("each host's slice follows from its underlay address: 192.168.90.11 owns 250.90.11.0/24", async () => {
    for (const i of [0, 1]) {
      await createFan(i);
      const [net] = JSON.parse(await host(i).berthOk('network', 'inspect', 'fan'));
      assert.equal(net.Driver, 'fan');
      assert.equal(net.Scope, 'local');
      assert.equal(net.IPAM.Config[0].Subnet, `250.90.${11 + i}.0/24`);
      assert.equal(net.IPAM.Config[0].Gateway, `250.90.${11 + i}.1`);
      assert.equal(net.Options['com.docker.network.driver.mtu'], '1450', 'the underlay MTU minus VXLAN');
      const dev = (await fanDevice(i))!;
      const link = must(await host(i).inHost('ip', ['-d', 'link', 'show', dev]), 'fan device');
      assert.match(link, /NOARP,UP/);
      assert.match(link, new RegExp(`link/ether 02:fa:00:00:5a:${(11 + i).toString(16).padStart(2, '0')} `));
      assert.match(link, /vxlan external vnifilter.*dstport 8472 nolearning/);
      assert.match(must(await host(i).inHost('bridge', ['vni', 'show', 'dev', dev]), 'vni'), /16384000/, 'VNI 0xfa0000, from the overlay');
      assert.match(must(await host(i).inHost('ip', ['route', 'show', OVERLAY]), 'route'), new RegExp(`250\\.0\\.0\\.0/8 dev ${dev} scope link src 250\\.90\\.${11 + i}\\.1`));
      assert.match(must(await host(i).inHost('tc', ['filter', 'show', 'dev', dev, 'egress']), 'tc'), /bpf .*berth-fan 250\.0\.0\.0\/8 over 192\.168\.0\.0\/16 v1 direct-action/);
      await host(i).berthOk('run', '-d', '--name', `c${i}`, '--network', 'fan', '--', BUSYBOX, 'sleep', '3600');
      assert.match(await ipOf(i, `c${i}`), new RegExp(`^250\\.90\\.${11 + i}\\.\\d+$`));
    }
  });

  test('containers on two hosts reach each other from the first packet, and the receiver sees the sender’s address', async () => {
    const [ip0, ip1] = [await ipOf(0, 'c0'), await ipOf(1, 'c1')];
    // No packet has crossed yet: each first ping must be answered within its 1 s.
    const first = await ping(0, 'c0', ip1, ['-W', '1']);
    assert.equal(first.code, 0, `the first packet c0 → c1 is answered: ${first.stdout}${first.stderr}`);
    assert.equal((await ping(1, 'c1', ip0, ['-W', '1'])).code, 0, 'c1 → c0');
    assert.equal(await peerSeen(0, 'c0', 1, 'c1', 7000), ip0, 'c1 sees c0’s own address');
    assert.equal(await peerSeen(1, 'c1', 0, 'c0', 7001), ip1, 'and c0 sees c1’s');
    assert.equal((await host(0).inHost(BUSYBOX, ['ping', '-c', '1', '-W', '2', ip1])).code, 0, 'host 0 reaches c1 (from its gateway address)');
    // A full-size packet crosses: 1422 + 8 ICMP + 20 IP = 1450, the containers' MTU.
    assert.equal((await ping(0, 'c0', ip1, ['-s', '1422'])).code, 0, 'a 1450-byte packet crosses');
    // On the wire: VXLAN to 192.168.90.12:8472, outer TTL 64, the container addresses inside.
    const capture = host(1).inHost('timeout', ['10', 'tcpdump', '-c', '1', '-nvi', 'eth0', 'udp', 'port', '8472'], 15_000);
    let captured = false;
    void capture.then(() => (captured = true));
    // Echoes until tcpdump has one (it may take a while to start listening on a loaded machine).
    for (let i = 0; i < 40 && !captured; i++) {
      assert.equal((await ping(0, 'c0', ip1)).code, 0);
      await sleep(200);
    }
    const wire = (await capture).stdout;
    assert.match(wire, /ttl 64, .*proto UDP/);
    assert.match(wire, new RegExp(`192\\.168\\.90\\.11\\.\\d+ > 192\\.168\\.90\\.12\\.8472: .*instance 16384000`));
    assert.match(wire, new RegExp(`${ip0.replace(/\./g, '\\.')} > ${ip1.replace(/\./g, '\\.')}: ICMP echo request`));
    // After all that traffic, berth has programmed nothing for the peer.
    const fdb = must(await host(0).inHost('bridge', ['fdb', 'show', 'dev', (await fanDevice(0))!]), 'fdb');
    const neigh = must(await host(0).inHost('ip', ['neigh', 'show', 'nud', 'permanent']), 'neigh');
    assert.doesNotMatch(fdb, /dst 192\.168/, 'no forwarding entry for any peer');
    assert.doesNotMatch(neigh, /250\.90\.12/, 'no neighbour entry for any peer');
  });

  test('a third host joins with nothing configured on the others, even with their daemons down', async () => {
    // Host 0's daemon is gone (a crash): the fan's data path needs no daemon, old peer or new.
    const ns0 = await host(0).netnsOf('c0');
    await host(0).stopDaemon('SIGKILL');
    try {
      await host(2).startDaemon([]);
      await createFan(2);
      await host(2).berthOk('run', '-d', '--name', 'c2', '--network', 'fan', '--', BUSYBOX, 'sleep', '3600');
      const ip2 = await ipOf(2, 'c2');
      assert.match(ip2, /^250\.90\.13\.\d+$/);
      const first = await host(0).inNs(ns0, BUSYBOX, ['ping', '-c', '1', '-W', '1', ip2]);
      assert.equal(first.code, 0, `c0 (host 0, daemon down) reaches the new host’s container at the first packet: ${first.stdout}`);
      assert.equal((await ping(2, 'c2', await ipOf(1, 'c1'))).code, 0, 'c2 → c1');
      assert.equal(await peerSeen(2, 'c2', 1, 'c1', 7002), ip2);
    } finally {
      await host(0).startDaemon([]);
    }
    assert.equal((await ping(0, 'c0', await ipOf(1, 'c1'))).code, 0, 'after the restart, c0 still reaches c1');
  });

  test("with berth's own rules: new connections both ways, un-NATed, and masquerade to the outside", async () => {
    assert.match(must(await host(1).inHost('nft', ['list', 'set', 'ip', 'berth', 'routed_peers']), 'routed_peers'), /250\.90\.12\.0\/24 \. 250\.0\.0\.0\/8/, "the fan's slice paired with its overlay");
    assert.equal(await peerSeen(0, 'c0', 1, 'c1', 7003), await ipOf(0, 'c0'));
    assert.equal(await peerSeen(1, 'c1', 0, 'c0', 7004), await ipOf(1, 'c1'));
    const seenBy = host(0).spawnIn(c.outsideNs, 'socat', ['TCP-LISTEN:7100,reuseaddr,fork', 'SYSTEM:echo $SOCAT_PEERADDR']);
    await eventually(async () => (await host(0).inNs(c.outsideNs, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(':7100'), 3000);
    const out = await host(1).inNs(await host(1).netnsOf('c1'), BUSYBOX, ['nc', '-w', '2', OUTSIDE_ADDRESS, '7100'], 5000);
    seenBy.kill('SIGKILL');
    assert.equal(out.stdout.trim(), c.address(1), 'the outside sees host 1’s underlay address');
  });

  test('refused with a clear message, nothing left: a host outside the underlay, a --subnet that differs, an overlay in use, bad options', async () => {
    const was = { ls: await host(0).berthOk('network', 'ls'), links: must(await host(0).inHost('ip', ['-o', 'link']), 'links').split('\n').length };
    const refuse = async (args: string[], message: RegExp) => {
      const r = await host(0).berth('network', 'create', ...args);
      assert.notEqual(r.code, 0, `refused: ${args.join(' ')}`);
      assert.match(r.stderr, message);
    };
    await refuse(['-d', 'fan', '-o', 'underlay=10.20.0.0/16', '-o', 'overlay=251.0.0.0/8', 'away'], /this host has no address in the underlay 10\.20\.0\.0\/16 \(its IPv4 addresses: 192\.168\.90\.11\/24 on eth0\)/);
    await refuse([...FAN.slice(0, 4), '-o', 'overlay=251.0.0.0/8', '--subnet', '251.90.12.0/24', 'wrong'], /--subnet 251\.90\.12\.0\/24 does not match this host's: .*here 251\.90\.11\.0\/24/);
    await refuse([...FAN, 'again'], /the overlay 250\.0\.0\.0\/8 overlaps network fan \(fan overlay 250\.0\.0\.0\/8\)/);
    await refuse(['-d', 'fan', '-o', 'underlay=192.168.0.0/16', 'half'], /a fan network needs both options: -o underlay=CIDR -o overlay=CIDR/);
    await refuse(['-d', 'fan', '-o', 'underlay=192.168.0.0/16', '-o', 'overlay=250.0.0.0/20', 'tiny'], /an underlay \/16 and an overlay \/20 leave each host a \/36 .*at most a \/30/);
    await refuse(['-d', 'fan', '-o', 'underlay=192.168.0.0/16', '-o', 'overlay=10.90.0.0/8', 'typo'], /host bits are set; did you mean 10\.0\.0\.0\/8/);
    await refuse(['-d', 'fan', ...FAN.slice(2), '-o', 'vxlan=1', 'odd'], /option vxlan is unknown to the fan driver/);
    await refuse(['-d', 'bridge', '--subnet', '250.7.0.0/24', 'inside'], /Pool overlaps .*network fan \(it routes 250\.0\.0\.0\/8\)/);
    assert.equal(await host(0).berthOk('network', 'ls'), was.ls, 'the network list is unchanged');
    assert.equal(must(await host(0).inHost('ip', ['-o', 'link']), 'links').split('\n').length, was.links, 'no link was made');
    // The positive control through the same path: a second fan on its own overlay is made.
    await host(0).berthOk('network', 'create', '-d', 'fan', '-o', 'underlay=192.168.0.0/16', '-o', 'overlay=10.0.0.0/8', 'fan10');
    const [net] = JSON.parse(await host(0).berthOk('network', 'inspect', 'fan10'));
    assert.equal(net.IPAM.Config[0].Subnet, '10.90.11.0/24');
    await host(0).berthOk('network', 'rm', 'fan10');
  });

  test('the reconciler restores a deleted fan device (route, VNI, program), and network rm removes everything', async () => {
    const dev = (await fanDevice(0))!;
    must(await host(0).inHost('ip', ['link', 'del', dev]), 'delete the fan device');
    assert.notEqual((await ping(0, 'c0', await ipOf(1, 'c1'))).code, 0, 'without it c1 is out of reach');
    await host(0).berthOk('system', 'reconcile');
    assert.match(must(await host(0).inHost('tc', ['filter', 'show', 'dev', dev, 'egress']), 'tc'), /berth-fan/);
    assert.match(must(await host(0).inHost('ip', ['route', 'show', OVERLAY]), 'route'), new RegExp(`dev ${dev}`));
    assert.equal((await ping(0, 'c0', await ipOf(1, 'c1'))).code, 0, 'c0 reaches c1 again');

    await host(0).berthOk('rm', '-f', 'c0');
    await host(0).berthOk('network', 'rm', 'fan');
    assert.equal((await fanDevice(0)) ?? '', '', 'the fan device is gone');
    assert.doesNotMatch(must(await host(0).inHost('ip', ['-o', 'link']), 'links'), /bfn|bfx/, 'and the bridge');
    assert.equal(must(await host(0).inHost('ip', ['route', 'show', OVERLAY]), 'route').trim(), '', 'and the overlay route');
    assert.equal((await ping(1, 'c1', await ipOf(2, 'c2'))).code, 0, 'the other hosts carry on');
  });
});
