/**
 * Issue 13 on the bridge driver, with real IPv6 traffic: dual-stack containers (addresses, default
 * routes, sysctls), container↔container over IPv6, NAT66 to an IPv6 "internet" peer, published
 * ports on [::], on one IPv6 host address and on [::1], hairpin over IPv6, isolation, icc=false and
 * internal networks for IPv6, --ip6, and the bad input of the issue. Servers report the client
 * address they saw, so NAT is checked, not just reachability.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { BUSYBOX, Sandbox, eventually, must, run, type Peer } from '../../helpers/sandbox.js';
import { webRoot } from '../../helpers/net-probes.js';
import { addIpv6Wan } from '../../helpers/ipv6.js';

/** The IPv6 "internet": a peer namespace on fd99::/64, with no route back to container subnets. */
const WAN_HOST = 'fd99::1';
const WAN_PEER = 'fd99::2';

describe('dual-stack bridge networks', () => {
  let sb: Sandbox;
  let wan: Peer;
  let www: string;

  /** GET over IPv6 (or IPv4) from a namespace; stdout is the body with the brackets of a v6 client address stripped. */
  const get = async (ns: string, url: string) => {
    const r = await sb.inNs(ns, 'curl', ['-s', '-g', '--max-time', '3', url], 10_000);
    return { ...r, stdout: r.stdout.trim().replace(/^\[([0-9a-f:]+)\]$/, '$1').replace(/^\[?::ffff:([\d.]+)\]?$/, '$1') };
  };
  const ping6 = (ns: string, target: string) => sb.inNs(ns, BUSYBOX, ['ping', '-6', '-c', '1', '-W', '2', target], 10_000);
  const ns = (name: string) => sb.netnsOf(name);
  const httpd = (name: string, network: string, ...extra: string[]) =>
    sb.berthOk('run', '-d', '--name', name, '--network', network, ...extra, '--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', www);

  before(async () => {
    sb = await Sandbox.create('d6');
    www = webRoot(path.join(sb.root, 'www'), 'hello-v6');
    wan = await addIpv6Wan(sb, '10.98.0', 'fd99', www);
    await sb.berthOk('network', 'create', '--ipv6', '--subnet', '10.60.0.0/24', '--subnet', 'fd60::/64', 'dual');
    await httpd('srv', 'dual', '-p', '8080:80', '-p', '[::1]:8082:80', '-p', `[${WAN_HOST}]:8083:80`);
    await sb.berthOk('run', '-d', '--name', 'cli', '--network', 'dual', '--', BUSYBOX, 'sleep', '3600');
    assert.ok(await eventually(async () => (await get(wan.nsPath, `http://[${WAN_PEER}]/`)).stdout === 'hello-v6', 5000, 100), 'the WAN server is up');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('inspect shows both families: the network, the endpoint and the ports', async () => {
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'dual'));
    assert.equal(net.EnableIPv6, true);
    assert.deepEqual(net.IPAM.Config, [
      { Subnet: '10.60.0.0/24', Gateway: '10.60.0.1' },
      { Subnet: 'fd60::/64', Gateway: 'fd60::1' },
    ]);
    const srv = (await sb.inspect('srv')) as unknown as { NetworkSettings: { Networks: Record<string, Record<string, unknown>>; Ports: Record<string, { HostIp: string }[]> } };
    const ep = srv.NetworkSettings.Networks.dual!;
    assert.equal(ep.IPAddress, '10.60.0.2');
    assert.equal(ep.GlobalIPv6Address, 'fd60::2');
    assert.equal(ep.GlobalIPv6PrefixLen, 64);
    assert.equal(ep.IPv6Gateway, 'fd60::1');
    assert.deepEqual(srv.NetworkSettings.Ports['80/tcp']!.map((p) => p.HostIp).sort(), ['0.0.0.0', '::', '::1', WAN_HOST].sort());
  });

  test('a container has both addresses, a default route per family, and takes no router advertisement', async () => {
    const n = await ns('srv');
    assert.match(must(await sb.inNs(n, 'ip', ['-6', 'addr', 'show', 'dev', 'eth0']), 'addr'), /inet6 fd60::2\/64 scope global/);
    assert.doesNotMatch((await sb.inNs(n, 'ip', ['-6', 'addr', 'show', 'dev', 'eth0'])).stdout, /tentative/, 'no DAD wait');
    assert.match(must(await sb.inNs(n, 'ip', ['-6', 'route', 'show', 'default']), 'route'), /default via fd60::1 dev eth0/);
    assert.match(must(await sb.inNs(n, 'ip', ['-4', 'route', 'show', 'default']), 'route'), /default via 10\.60\.0\.1 dev eth0/);
    assert.equal((await sb.inNs(n, 'cat', ['/proc/sys/net/ipv6/conf/eth0/accept_ra'])).stdout.trim(), '0');
    assert.equal((await sb.inHost('cat', ['/proc/sys/net/ipv6/conf/all/forwarding'])).stdout.trim(), '1');
  });

  test('containers reach each other over IPv6: ping and TCP, with the client address preserved', async () => {
    const c = await ns('cli');
    assert.equal((await ping6(c, 'fd60::2')).code, 0, 'ping -6 cli → srv');
    assert.equal((await get(c, 'http://[fd60::2]/cgi-bin/ip')).stdout, 'fd60::3');
  });

  test('a port published on 0.0.0.0 itself stays IPv4-only, as in Docker ≥ 27', async () => {
    await httpd('v4port', 'dual', '-p', '0.0.0.0:8084:80');
    const ports = ((await sb.inspect('v4port')) as unknown as { NetworkSettings: { Ports: Record<string, { HostIp: string }[]> } }).NetworkSettings.Ports['80/tcp']!;
    assert.deepEqual(ports.map((p) => p.HostIp), ['0.0.0.0']);
    assert.ok(await eventually(async () => (await get(wan.nsPath, `http://${wan.hostAddress}:8084/`)).stdout === 'hello-v6', 5000), 'reached over IPv4');
    assert.notEqual((await get(wan.nsPath, `http://[${WAN_HOST}]:8084/`)).stdout, 'hello-v6', 'not over IPv6');
    assert.equal((await get(wan.nsPath, `http://[${WAN_HOST}]:8080/`)).stdout, 'hello-v6', 'positive control: the port published with no address answers over IPv6');
    await sb.berthOk('rm', '-f', 'v4port');
  });

  test('NAT66: a container reaches the IPv6 internet, which sees the host address', async () => {
    assert.equal((await get(await ns('cli'), `http://[${WAN_PEER}]/cgi-bin/ip`)).stdout, WAN_HOST);
  });

  test('a port published without an address is published on IPv6 too; the LAN peer keeps its own address', async () => {
    assert.equal((await get(wan.nsPath, `http://[${WAN_HOST}]:8080/cgi-bin/ip`)).stdout, WAN_PEER);
    assert.equal((await get(wan.nsPath, `http://${wan.hostAddress}:8080/cgi-bin/ip`)).stdout, wan.address, 'and on IPv4');
  });

  test('a port published on one IPv6 host address answers there', async () => {
    assert.equal((await get(wan.nsPath, `http://[${WAN_HOST}]:8083/`)).stdout, 'hello-v6');
  });

  test('a port published on [::1] is unreachable from the LAN (positive control: [::]:8080 on the same server)', async () => {
    assert.notEqual((await get(wan.nsPath, `http://[${WAN_HOST}]:8082/`)).stdout, 'hello-v6', 'not from the LAN');
    assert.equal((await get(wan.nsPath, `http://[${WAN_HOST}]:8080/`)).stdout, 'hello-v6', 'control');
  });

  test('hairpin over IPv6: a container reaches its own network\'s published port via the host address', async () => {
    assert.equal((await get(await ns('cli'), `http://[${WAN_HOST}]:8080/`)).stdout, 'hello-v6');
    assert.equal((await get(await ns('srv'), `http://[${WAN_HOST}]:8080/`)).stdout, 'hello-v6', 'even its own port');
  });

  test('isolation: a container of another dual-stack network cannot reach srv over IPv6 (control: it reaches the WAN)', async () => {
    await sb.berthOk('network', 'create', '--ipv6', 'other6');
    await sb.berthOk('run', '-d', '--name', 'stranger', '--network', 'other6', '--', BUSYBOX, 'sleep', '3600');
    const s = await ns('stranger');
    assert.equal((await get(s, `http://[${WAN_PEER}]/`)).stdout, 'hello-v6', 'control: its IPv6 works');
    assert.notEqual((await get(s, 'http://[fd60::2]/')).stdout, 'hello-v6', 'the other network is closed');
    assert.notEqual((await ping6(s, 'fd60::2')).code, 0);
  });

  test('the LAN cannot reach container IPv6 addresses directly (control: via the published port)', async () => {
    must(await sb.inNs(wan.nsPath, 'ip', ['-6', 'route', 'add', 'fd60::/64', 'via', WAN_HOST]), 'route to containers');
    assert.notEqual((await get(wan.nsPath, 'http://[fd60::2]/')).stdout, 'hello-v6');
    assert.equal((await get(wan.nsPath, `http://[${WAN_HOST}]:8080/`)).stdout, 'hello-v6');
  });

  test('icc=false holds for IPv6 between containers; each still reaches its gateway', async () => {
    await sb.berthOk('network', 'create', '--ipv6', '-o', 'com.docker.network.bridge.enable_icc=false', 'noicc6');
    await httpd('isrv', 'noicc6');
    await sb.berthOk('run', '-d', '--name', 'icli', '--network', 'noicc6', '--', BUSYBOX, 'sleep', '3600');
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'noicc6'));
    const gw6 = net.IPAM.Config[1].Gateway as string;
    const srv6 = ((await sb.inspect('isrv')) as unknown as { NetworkSettings: { Networks: Record<string, { GlobalIPv6Address: string }> } }).NetworkSettings.Networks.noicc6!.GlobalIPv6Address;
    const c = await ns('icli');
    assert.equal((await ping6(c, gw6)).code, 0, 'the gateway answers');
    assert.equal((await get(c, `http://[${WAN_PEER}]/`)).stdout, 'hello-v6', 'and the WAN');
    assert.notEqual((await get(c, `http://[${srv6}]/`)).stdout, 'hello-v6', 'but not the other container');
  });

  test('an internal dual-stack network does not reach the IPv6 internet (control: its gateway answers)', async () => {
    await sb.berthOk('network', 'create', '--ipv6', '--internal', 'int6');
    await sb.berthOk('run', '-d', '--name', 'inner', '--network', 'int6', '--', BUSYBOX, 'sleep', '3600');
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'int6'));
    const c = await ns('inner');
    assert.equal((await ping6(c, net.IPAM.Config[1].Gateway)).code, 0);
    assert.notEqual((await get(c, `http://[${WAN_PEER}]/`)).stdout, 'hello-v6');
  });

  test('without --subnet the IPv6 side is a /64 of the host ULA prefix; --ip6 pins an address', async () => {
    await sb.berthOk('network', 'create', '--ipv6', 'ula');
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'ula'));
    const subnet = net.IPAM.Config[1].Subnet as string;
    assert.match(subnet, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}(:[0-9a-f]{1,4})?::\/64$/);
    const pinned = subnet.replace('::/64', '::99');
    await sb.berthOk('run', '-d', '--name', 'pinned', '--network', 'ula', '--ip6', pinned, '--', BUSYBOX, 'sleep', '3600');
    assert.match(must(await sb.inNs(await ns('pinned'), 'ip', ['-6', 'addr', 'show', 'dev', 'eth0']), 'addr'), new RegExp(`inet6 ${pinned}/64`));
    assert.equal((await get(await ns('pinned'), `http://[${WAN_PEER}]/cgi-bin/ip`)).stdout, WAN_HOST, 'and it reaches out');
  });

  test('bad input is refused with what is wrong, and leaves nothing behind', async () => {
    const before = (await sb.berthOk('network', 'ls', '-q')).split('\n').length;
    const containersBefore = (await sb.berthOk('ps', '-aq')).split('\n').filter(Boolean).length;
    const refuse = async (args: string[], pattern: RegExp) => {
      const r = await sb.berth(...args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, pattern, args.join(' '));
    };
    await refuse(['network', 'create', '--ipv6', '--subnet', 'fd61::5/64', 'x'], /host bits are set; did you mean fd61::\/64/);
    await refuse(['network', 'create', '--ipv6', '--subnet', 'fd61::/127', 'x'], /too small/);
    await refuse(['network', 'create', '--ipv6', '--subnet', 'fd60::/48', 'x'], /overlaps network dual/);
    await refuse(['network', 'create', '--ipv6', '--subnet', 'fd99::/64', 'x'], /overlaps host (address|route) fd99::/);
    await refuse(['network', 'create', '--ipv6', '--subnet', 'fd61::/64', '--gateway', 'fd62::1', 'x'], /gateway must be inside fd61::\/64/);
    await refuse(['network', 'create', '--ipv6', '--subnet', 'fd61::zz/64', 'x'], /not an IPv6 CIDR/);
    await refuse(['network', 'create', '--subnet', 'fd61::/64', 'x'], /needs --ipv6/);
    await refuse(['network', 'create', '--ipv6', '-d', 'macvlan', '-o', 'parent=lo', 'x'], /needs the LAN's IPv6 prefix: pass --subnet V6CIDR/);
    await refuse(['network', 'create', '--ipv4', 'false', 'x'], /--ipv4=false makes an IPv6-only network: add --ipv6/);
    await refuse(['network', 'create', '--ipv6', '--ipv4', 'false', '-d', 'ptp', 'x'], /--ipv4=false is not supported by the ptp driver yet/);
    await refuse(['network', 'create', '--ipv6', '--ipv4', 'false', '--subnet', '10.61.0.0/24', 'x'], /an IPv4 --subnet.* was given for an IPv6-only network/);
    assert.equal((await sb.berthOk('network', 'ls', '-q')).split('\n').length, before, 'no network was made');
    await sb.berthOk('network', 'create', 'v4only');
    await refuse(['run', '--network', 'v4only', '--ip6', 'fd60::77', '--', BUSYBOX, 'true'], /has no IPv6 \(create it with --ipv6\)/);
    await refuse(['run', '--network', 'dual', '--ip6', 'fd61::7', '--', BUSYBOX, 'true'], /does not belong to network "dual"'s IPv6 subnet fd60::\/64/);
    await refuse(['run', '--network', 'dual', '--ip6', 'fd60::zz', '--', BUSYBOX, 'true'], /invalid --ip6 address "fd60::zz"/);
    await refuse(['run', '--network', 'v4only', '-p', '[::]:8090:80', '--', BUSYBOX, 'true'], /publishes on IPv6, but the container's network has no IPv6/);
    await refuse(['run', '--network', 'dual', '-p', '8080:80', '--', BUSYBOX, 'true'], /already allocated to container srv/);
    assert.equal((await sb.berthOk('ps', '-aq')).split('\n').filter(Boolean).length, containersBefore, 'no container was left by a refusal');
  });

  test('IPv6-only (--ipv4=false): no IPv4 at all; names, NAT66 and published ports over IPv6; its resolver on the IPv6 gateway', async () => {
    await sb.berthOk('network', 'create', '--ipv6', '--ipv4', 'false', '--subnet', 'fd62::/64', 'v6only');
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'v6only'));
    assert.equal(net.EnableIPv4, false);
    assert.deepEqual(net.IPAM.Config, [{ Subnet: 'fd62::/64', Gateway: 'fd62::1' }]);
    await httpd('srv6', 'v6only', '--network-alias', 'web-v6', '-p', '8086:80');
    await sb.berthOk('run', '-d', '--name', 'cli6', '--network', 'v6only', '--', BUSYBOX, 'sleep', '3600');
    const srv = (await sb.inspect('srv6')) as unknown as { NetworkSettings: { IPAddress: string; GlobalIPv6Address: string; Ports: Record<string, { HostIp: string }[]> } };
    assert.equal(srv.NetworkSettings.IPAddress, '');
    assert.equal(srv.NetworkSettings.GlobalIPv6Address, 'fd62::2');
    assert.deepEqual(srv.NetworkSettings.Ports['80/tcp']!.map((p) => p.HostIp), ['::'], 'published on every IPv6 address only');
    const c = await ns('cli6');
    assert.equal(must(await sb.inNs(c, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']), 'v4 addr').trim(), '', 'no IPv4 address');
    assert.match(must(await sb.inNs(c, 'ip', ['-6', 'route', 'show', 'default']), 'route'), /default via fd62::1 dev eth0/);
    assert.match(await sb.berthOk('exec', 'cli6', '--', BUSYBOX, 'cat', '/etc/resolv.conf'), /^nameserver fd62::1$/m);
    const dig = async (name: string) => (await sb.inNs(c, 'dig', ['@fd62::1', '+tries=2', '+time=2', '+short', 'AAAA', name], 10_000)).stdout.trim();
    assert.ok(await eventually(async () => (await dig('web-v6')) === 'fd62::2', 3000), 'the resolver on the IPv6 gateway answers AAAA');
    // berth exec: the container's own /etc/resolv.conf (nameserver fd62::1) resolves the name.
    const byName = await sb.berthOk('exec', 'cli6', '--', 'curl', '-s', '--max-time', '3', 'http://web-v6/cgi-bin/ip');
    assert.equal(byName.trim().replace(/^\[|\]$/g, ''), 'fd62::3', 'by name over IPv6, client address kept');
    assert.equal((await get(c, `http://[${WAN_PEER}]/cgi-bin/ip`)).stdout, WAN_HOST, 'NAT66 out');
    assert.ok(await eventually(async () => (await get(wan.nsPath, `http://[${WAN_HOST}]:8086/cgi-bin/ip`)).stdout === WAN_PEER, 5000), 'the published port over IPv6');
    assert.notEqual((await get(wan.nsPath, `http://${wan.hostAddress}:8086/`)).stdout, 'hello-v6', 'and not over IPv4');
    const wanDig = await sb.inNs(wan.nsPath, 'dig', [`@${WAN_HOST}`, '-p', '53', '+tries=1', '+time=2', '+short', 'AAAA', 'web-v6'], 10_000);
    assert.notEqual(wanDig.stdout.trim(), 'fd62::2', 'a peer outside the network gets no answer');
    const refusedV4 = await sb.berth('run', '--network', 'v6only', '-p', '127.0.0.1:8087:80', '--', BUSYBOX, 'true');
    assert.notEqual(refusedV4.code, 0);
    assert.match(refusedV4.stderr, /publishes on IPv4, but the container's network is IPv6-only/);
    const pinned = await sb.berth('run', '--network', 'v6only', '--ip', '10.62.0.5', '--', BUSYBOX, 'true');
    assert.notEqual(pinned.code, 0);
    assert.match(pinned.stderr, /is IPv6-only, so its containers get no IPv4 address/);
    await sb.berthOk('rm', '-f', 'srv6', 'cli6');
    await sb.berthOk('network', 'rm', 'v6only');
  });

  test('DNS: AAAA for names and aliases, A beside it, PTR under ip6.arpa; /etc/hosts lists both addresses', async () => {
    await sb.berthOk('run', '-d', '--name', 'named', '--network', 'dual', '--network-alias', 'web6', '--', BUSYBOX, 'sleep', '3600');
    const ep = ((await sb.inspect('named')) as unknown as { NetworkSettings: { Networks: Record<string, { IPAddress: string; GlobalIPv6Address: string }> } }).NetworkSettings.Networks.dual!;
    const c = await ns('srv');
    const dig = async (type: string, name: string) => (await sb.inNs(c, 'dig', ['@10.60.0.1', '+tries=1', '+time=2', '+short', type, name], 10_000)).stdout.trim();
    assert.equal(await dig('AAAA', 'named'), ep.GlobalIPv6Address);
    assert.equal(await dig('AAAA', 'web6'), ep.GlobalIPv6Address);
    assert.equal(await dig('A', 'named'), ep.IPAddress);
    assert.equal((await sb.inNs(c, 'dig', ['@10.60.0.1', '+tries=1', '+time=2', '+short', '-x', ep.GlobalIPv6Address], 10_000)).stdout.trim(), 'named.dual.');
    const hosts = await sb.berthOk('exec', 'named', '--', BUSYBOX, 'cat', '/etc/hosts');
    assert.match(hosts, new RegExp(`^${ep.IPAddress.replace(/\./g, '\\.')}\t`, 'm'));
    assert.match(hosts, new RegExp(`^${ep.GlobalIPv6Address}\t`, 'm'));
  });

  test('DNS forwards over an IPv6 upstream (a resolver on the IPv6 WAN)', async () => {
    sb.serveZone(wan.nsPath, '2001:db8::77 far.example\n', WAN_PEER);
    await sb.berthOk('run', '-d', '--name', 'asker', '--network', 'dual', '--dns', WAN_PEER, '--', BUSYBOX, 'sleep', '3600');
    const c = await ns('asker');
    const answer = async () => (await sb.inNs(c, 'dig', ['@10.60.0.1', '+tries=1', '+time=2', '+short', 'AAAA', 'far.example'], 10_000)).stdout.trim();
    assert.ok(await eventually(async () => (await answer()) === '2001:db8::77', 5000, 200), 'the answer came from the IPv6 upstream');
  });

  test('removing a dual-stack container frees its IPv6 address for the next one', async () => {
    await sb.berthOk('rm', '-f', 'cli');
    await sb.berthOk('run', '-d', '--name', 'cli2', '--network', 'dual', '--', BUSYBOX, 'sleep', '3600');
    const ep = ((await sb.inspect('cli2')) as unknown as { NetworkSettings: { Networks: Record<string, { GlobalIPv6Address: string }> } }).NetworkSettings.Networks.dual!;
    assert.equal(ep.GlobalIPv6Address, 'fd60::3');
    const out = must(await run('nsenter', [`--net=${sb.hostNs}`, '--', 'ip', '-6', 'neigh', 'show', 'fd60::3']), 'neigh');
    assert.match(out, /PERMANENT/, 'the bridge has a permanent entry for the new address');
  });
});
