/**
 * Issue 12: overlay networks across three simulated hosts with a real etcd. Containers on
 * different hosts reach each other by address and by name over VXLAN, with the MTU derived from
 * the underlay; every host lists the network; addresses stay distinct under concurrent starts;
 * containers leave through masquerade on their own host and publish ports there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, eventually, must } from '../../helpers/sandbox.js';
import { Cluster, OUTSIDE_ADDRESS } from '../../helpers/cluster.js';
import { canonicalIpv6 } from '../../../src/ipam/ipv6.js';

describe('overlay networks across hosts', () => {
  let c: Cluster;
  before(async () => {
    c = await Cluster.create({ hosts: 3, members: 3 });
  });
  after(async () => {
    await c?.destroy();
  });

  const host = (i: number) => c.hosts[i]!;
  const ping = async (i: number, container: string, target: string, extra: string[] = []) =>
    (await host(i).inNs(await host(i).netnsOf(container), BUSYBOX, ['ping', '-c', '1', '-W', '2', ...extra, target])).code === 0;

  test('a network made on one host is listed by every host, with scope global and a VNI from 4096', async () => {
    must(await host(0).berth('network', 'create', '-d', 'overlay', '--subnet', '10.90.0.0/24', 'ov'), 'create overlay');
    for (let i = 0; i < 3; i++) {
      assert.ok(await eventually(async () => (await host(i).berth('network', 'inspect', 'ov')).code === 0, 5000), `host ${i} lists ov`);
      const [net] = JSON.parse(await host(i).berthOk('network', 'inspect', 'ov'));
      assert.equal(net.Scope, 'global');
      assert.equal(net.Driver, 'overlay');
      assert.equal(net.Options['com.docker.network.driver.overlay.vxlanid_list'], '4096');
      assert.equal(net.IPAM.Config[0].Subnet, '10.90.0.0/24');
    }
    const ls = await host(2).berthOk('network', 'ls');
    assert.match(ls, /ov\s+overlay\s+global/);
  });

  test('containers on different hosts reach each other by address and by name', async () => {
    for (let i = 0; i < 3; i++) await host(i).berthOk('run', '-d', '--name', `c${i}`, '--network', 'ov', '--', BUSYBOX, 'sleep', '3600');
    const ips = await Promise.all([0, 1, 2].map(async (i) => (await host(i).inspect(`c${i}`)).NetworkSettings.Networks.ov!.IPAddress));
    assert.equal(new Set(ips).size, 3, `distinct addresses: ${ips}`);
    for (const [from, to] of [[0, 1], [1, 2], [2, 0]] as const) {
      assert.ok(await eventually(() => ping(from, `c${from}`, ips[to]!), 3000), `c${from} → c${to} (${ips[to]}) by address`);
      // By name through the container's own resolv.conf (its embedded resolver on this host).
      const byName = await host(from).berth('exec', `c${from}`, '--', BUSYBOX, 'ping', '-c', '1', '-W', '2', `c${to}`);
      assert.equal(byName.code, 0, `c${from} → c${to} by name: ${byName.stdout} ${byName.stderr}`);
      assert.match(byName.stdout, new RegExp(`\\(${ips[to]!.replace(/\./g, '\\.')}\\)`));
    }
    // The receiver sees the sender's own address: no NAT between hosts.
    const nsB = await host(1).netnsOf('c1');
    const listener = host(1).spawnIn(nsB, 'socat', ['TCP-LISTEN:7000,reuseaddr,fork', 'SYSTEM:echo $SOCAT_PEERADDR']);
    await eventually(async () => (await host(1).inNs(nsB, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(':7000'), 3000);
    const got = await host(0).inNs(await host(0).netnsOf('c0'), BUSYBOX, ['nc', '-w', '2', ips[1]!, '7000'], 5000);
    listener.kill('SIGKILL');
    assert.equal(got.stdout.trim(), ips[0], 'the receiver sees the sender container’s address'); 
  });

  test('the container MTU is the underlay MTU minus 50, and a full-size packet crosses', async () => {
    const ns = await host(0).netnsOf('c0');
    const link = must(await host(0).inNs(ns, 'ip', ['-o', 'link', 'show', 'eth0']), 'link');
    assert.match(link, / mtu 1450 /);
    assert.match(must(await host(0).inHost('ip', ['-o', 'link', 'show', 'eth0']), 'underlay'), / mtu 1500 /);
    // A client that asked before its host had a new peer programmed asks again after 100 ms, not 1 s.
    assert.match(must(await host(0).inNs(ns, 'ip', ['-d', 'ntable', 'show', 'dev', 'eth0', 'name', 'arp_cache']), 'ntable'), /retrans 100 /);
    const ip1 = (await host(1).inspect('c1')).NetworkSettings.Networks.ov!.IPAddress;
    // 1422 bytes of payload + 8 ICMP + 20 IP = 1450, the largest that fits; one more does not.
    assert.ok(await ping(0, 'c0', ip1, ['-s', '1422']), '1450-byte packet crosses');
    const vx = must(await host(0).inHost('ip', ['-d', 'link', 'show', 'type', 'vxlan']), 'vxlan');
    assert.match(vx, /mtu 1450/);
    assert.match(vx, /vxlan id 4096 local 192\.168\.90\.11 dev eth0 srcport \d+ \d+ dstport 4789 nolearning proxy/);
  });

  test('each remote endpoint is three kernel entries, with learning and flooding off', async () => {
    const [c1] = [await host(1).inspect('c1')];
    const mac = c1.NetworkSettings.Networks.ov!.MacAddress;
    const ip = c1.NetworkSettings.Networks.ov!.IPAddress;
    const fdb = must(await host(0).inHost('bridge', ['fdb', 'show']), 'fdb');
    assert.match(fdb, new RegExp(`${mac} dev bvx\\S+ dst 192\\.168\\.90\\.12 self permanent`));
    assert.match(fdb, new RegExp(`${mac} dev bvx\\S+ master bov\\S+ static`));
    const neigh = must(await host(0).inHost('ip', ['neigh', 'show', ip]), 'neigh');
    assert.match(neigh, new RegExp(`${ip} dev bvx\\S+ lladdr ${mac} PERMANENT`));
    const port = must(await host(0).inHost('bridge', ['-d', 'link', 'show']), 'ports');
    const vxPort = port.split('\n').findIndex((l) => /bvx/.test(l));
    assert.ok(vxPort >= 0);
    assert.match(port.split('\n').slice(vxPort, vxPort + 4).join(' '), /learning off flood off/);
  });

  test('the reconciler restores a remote endpoint’s deleted entries and removes entries no endpoint has', async () => {
    const c1 = (await host(1).inspect('c1')).NetworkSettings.Networks.ov!;
    const vx = /\d+: (bvx\w+):/.exec(must(await host(0).inHost('ip', ['-o', 'link', 'show', 'type', 'vxlan']), 'vxlan'))![1]!;
    must(await host(0).inHost('ip', ['neigh', 'del', c1.IPAddress, 'dev', vx]), 'delete a real entry');
    must(await host(0).inHost('bridge', ['fdb', 'del', c1.MacAddress, 'dev', vx, 'self']), 'delete a real fdb entry');
    must(await host(0).inHost('ip', ['neigh', 'replace', '10.90.0.250', 'lladdr', '02:42:0a:5a:00:fa', 'dev', vx, 'nud', 'permanent']), 'add a stale entry');
    must(await host(0).inHost('bridge', ['fdb', 'replace', '02:42:0a:5a:00:fa', 'dev', vx, 'dst', '192.168.90.99', 'self', 'permanent']), 'add a stale fdb entry');
    await host(0).berthOk('system', 'reconcile');
    const neigh = must(await host(0).inHost('ip', ['neigh', 'show', 'dev', vx]), 'neigh');
    assert.match(neigh, new RegExp(`${c1.IPAddress.replace(/\./g, '\\.')} lladdr ${c1.MacAddress} PERMANENT`));
    assert.doesNotMatch(neigh, /10\.90\.0\.250/);
    const fdb = must(await host(0).inHost('bridge', ['fdb', 'show', 'dev', vx]), 'fdb');
    assert.match(fdb, new RegExp(`${c1.MacAddress} dst 192\\.168\\.90\\.12 self permanent`));
    assert.doesNotMatch(fdb, /02:42:0a:5a:00:fa/);
    assert.ok(await ping(0, 'c0', c1.IPAddress));
  });

  test('a deleted overlay bridge comes back with its VXLAN port and the container veth on it, and traffic crosses again', async () => {
    const ip1 = (await host(1).inspect('c1')).NetworkSettings.Networks.ov!.IPAddress;
    assert.ok(await ping(0, 'c0', ip1), 'positive control: c0 → c1 before the deletion');
    const bridge = /\d+: (bov\w+):/.exec(must(await host(0).inHost('ip', ['-o', 'link', 'show', 'type', 'bridge']), 'bridges'))![1]!;
    must(await host(0).inHost('ip', ['link', 'del', bridge]), 'delete the overlay bridge');
    assert.ok(!(await ping(0, 'c0', ip1)), 'c0 is cut off while its bridge is gone');
    await host(0).berthOk('system', 'reconcile');
    const ports = must(await host(0).inHost('ip', ['-o', 'link', 'show', 'master', bridge]), 'ports');
    assert.match(ports, /bvx\w+/, 'the VXLAN device is a port again');
    assert.equal(ports.split('\n').filter((l) => l.trim() && !/bvx/.test(l)).length, 1, `the container veth is a port again: ${ports}`);
    assert.ok(await eventually(() => ping(0, 'c0', ip1), 3000), 'c0 → c1 crosses again');
  });

  test('concurrent starts on every host get distinct addresses', async () => {
    const names = (i: number) => [0, 1, 2, 3].map((k) => `p${i}${k}`);
    await Promise.all([0, 1, 2].flatMap((i) => names(i).map((n) => host(i).berthOk('run', '-d', '--name', n, '--network', 'ov', '--', BUSYBOX, 'sleep', '3600'))));
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      for (const n of names(i)) {
        const out = must(await host(i).inNs(await host(i).netnsOf(n), 'ip', ['-4', '-o', 'addr', 'show', 'eth0']), 'addr');
        seen.push(/inet (\S+)\//.exec(out)![1]!);
      }
    }
    assert.equal(new Set(seen).size, 12, `addresses inside the namespaces: ${seen.join(' ')}`);
    const held = await c.etcdList('/berth/v1/ipam/');
    assert.ok(held.length >= 15, `etcd holds every address (${held.length})`);
    for (let i = 0; i < 3; i++) await Promise.all(names(i).map((n) => host(i).berthOk('rm', '-f', n)));
    assert.ok(await eventually(async () => (await c.etcdList('/berth/v1/ipam/')).length === 3, 5000), 'removed containers free their addresses');
  });

  test('containers leave through masquerade on their own host and publish ports there', async () => {
    // The "outside" sees the host's underlay address, not the container's.
    const seenBy = host(0).spawnIn(c.outsideNs, 'socat', ['TCP-LISTEN:7100,reuseaddr,fork', 'SYSTEM:echo $SOCAT_PEERADDR']);
    await eventually(async () => (await host(0).inNs(c.outsideNs, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(':7100'), 3000);
    const out = await host(1).inNs(await host(1).netnsOf('c1'), BUSYBOX, ['nc', '-w', '2', OUTSIDE_ADDRESS, '7100'], 5000);
    seenBy.kill('SIGKILL');
    assert.equal(out.stdout.trim(), c.address(1));
    await host(2).berthOk('run', '-d', '--name', 'web', '--network', 'ov', '-p', '8080:80', '--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', '/etc');
    const ok = await eventually(async () => (await host(0).inNs(c.outsideNs, 'curl', ['-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${c.address(2)}:8080/hostname`])).stdout === '200', 5000);
    assert.ok(ok, 'port published on host 2 answers from outside');
    const other = await host(0).inNs(c.outsideNs, 'curl', ['-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${c.address(1)}:8080/hostname`]);
    assert.notEqual(other.stdout, '200', 'and only on host 2');
  });

  test('dual stack: one IPv6 /64 of the cluster ULA everywhere, IPv6 across hosts by address and AAAA, addresses following IPv4', async () => {
    const refuse = async (args: string[], pattern: RegExp) => {
      const r = await host(1).berth(...args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, pattern, args.join(' '));
    };
    await refuse(['network', 'create', '-d', 'overlay', '--ipv6', '--subnet', 'fd91::/112', 'ov6x'], /too small for a cluster network: .* \/96 or wider/);
    await refuse(['network', 'create', '-d', 'overlay', '--ipv6', '--subnet', 'fd91::/64', '--ip-range', 'fd91::/80', 'ov6x'], /IPv6 --ip-range is not supported on cluster networks/);
    must(await host(0).berth('network', 'create', '-d', 'overlay', '--ipv6', '--subnet', '10.91.0.0/24', 'ov6'), 'create dual-stack overlay');
    const subnets = await Promise.all(
      [0, 1, 2].map(async (i) => {
        assert.ok(await eventually(async () => (await host(i).berth('network', 'inspect', 'ov6')).code === 0, 5000), `host ${i} lists ov6`);
        const [net] = JSON.parse(await host(i).berthOk('network', 'inspect', 'ov6'));
        assert.equal(net.EnableIPv6, true);
        return net.IPAM.Config[1].Subnet as string;
      }),
    );
    assert.equal(new Set(subnets).size, 1, `one IPv6 subnet on every host: ${subnets}`);
    assert.match(subnets[0]!, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/, 'a /64 of a ULA /48');
    await refuse(['network', 'create', '-d', 'overlay', '--ipv6', '--subnet', subnets[0]!, 'ov6x'], /overlaps (cluster )?network ov6/);
    await refuse(['run', '--network', 'ov6', '--ip6', subnets[0]!.replace('::/64', '::99'), '--', BUSYBOX, 'true'], /follows its IPv4 address .* pin it with --ip/);
    for (let i = 0; i < 2; i++) await host(i).berthOk('run', '-d', '--name', `d${i}`, '--network', 'ov6', '--', BUSYBOX, 'sleep', '3600');
    const eps = await Promise.all([0, 1].map(async (i) => (await host(i).inspect(`d${i}`)).NetworkSettings.Networks.ov6!));
    const prefix = subnets[0]!.replace('::/64', '');
    for (const ep of eps) {
      const [a, b, c3, d] = ep.IPAddress.split('.').map(Number) as [number, number, number, number];
      assert.equal(ep.GlobalIPv6Address, `${prefix}::${((a << 8) | b).toString(16)}:${((c3 << 8) | d).toString(16)}`, 'the IPv6 address carries the IPv4 one');
    }
    const ip6 = eps.map((e) => e.GlobalIPv6Address as string);
    const ns0 = await host(0).netnsOf('d0');
    assert.ok(await eventually(async () => (await host(0).inNs(ns0, BUSYBOX, ['ping', '-6', '-c', '1', '-W', '2', ip6[1]!])).code === 0, 3000), 'd0 → d1 over IPv6 across hosts');
    const aaaa = (await host(0).inNs(ns0, 'dig', ['@10.91.0.1', '+tries=2', '+time=2', '+short', 'AAAA', 'd1'])).stdout.trim();
    assert.equal(aaaa, ip6[1], 'the remote container\'s AAAA');
    const nsB = await host(1).netnsOf('d1');
    const listener = host(1).spawnIn(nsB, 'socat', ['TCP6-LISTEN:7001,reuseaddr,fork', 'SYSTEM:echo $SOCAT_PEERADDR']);
    await eventually(async () => (await host(1).inNs(nsB, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(':7001'), 3000);
    const got = await host(0).inNs(ns0, 'socat', ['-T', '2', '-', `TCP6:[${ip6[1]}]:7001`], 5000);
    listener.kill('SIGKILL');
    // socat prints the peer in full (fd..:0000:…): compare canonical forms.
    assert.equal(canonicalIpv6(got.stdout.trim().replace(/^\[|\]$/g, '')), ip6[0], 'the receiver sees the sender container’s IPv6 address');
    const neigh = must(await host(0).inHost('ip', ['-6', 'neigh', 'show', ip6[1]!]), 'neigh');
    assert.match(neigh, new RegExp(`dev bvx\\S+ lladdr ${eps[1]!.MacAddress} PERMANENT`), 'the fourth entry: the IPv6 neighbour on the VXLAN device');
    await host(1).berthOk('rm', '-f', 'd1');
    assert.ok(await eventually(async () => !(await host(0).inHost('ip', ['-6', 'neigh', 'show', ip6[1]!])).stdout.includes('lladdr'), 5000), 'and it goes with the endpoint');
    await host(0).berthOk('rm', '-f', 'd0');
    must(await host(2).berth('network', 'rm', 'ov6'), 'remove ov6');
  });
});
