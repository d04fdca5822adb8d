/**
 * Issue 13 beyond the bridge driver, with real IPv6 traffic: dual-stack ptp networks (a /128 per
 * container routed by the host: container↔container, NAT66, a published port over IPv6, AAAA,
 * repair of a deleted /128 route) and dual-stack macvlan networks (containers at their own IPv6
 * addresses on a simulated LAN, the host's own LAN address never handed out, the LAN's router as
 * the IPv6 default route, AAAA from the in-sandbox resolver), and the bad input of each.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { BUSYBOX, Sandbox, eventually, must, type Peer } from '../../helpers/sandbox.js';
import { Lan, type LanHost } from '../../helpers/lan.js';
import { webRoot } from '../../helpers/net-probes.js';
import { addIpv6Wan } from '../../helpers/ipv6.js';

/** The IPv6 "internet": a peer namespace on fd97::/64, with no route back to container subnets. */
const WAN_HOST = 'fd97::1';
const WAN_PEER = 'fd97::2';

describe('dual-stack ptp and macvlan networks', () => {
  let sb: Sandbox;
  let wan: Peer;
  let lan: Lan;
  let lanPeer: LanHost;
  let www: string;

  /** GET from a namespace; stdout is the body, a v6 client address without its brackets. */
  const get = async (ns: string, url: string) => {
    const r = await sb.inNs(ns, 'curl', ['-s', '-g', '--max-time', '3', url], 10_000);
    return r.stdout.trim().replace(/^\[([0-9a-f:]+)\]$/, '$1');
  };
  const ping6 = async (ns: string, target: string) => (await sb.inNs(ns, BUSYBOX, ['ping', '-6', '-c', '1', '-W', '2', target], 10_000)).code === 0;
  const ns = (name: string) => sb.netnsOf(name);
  const ip6Of = async (name: string, net: string) => (await sb.inspect(name)).NetworkSettings.Networks[net]!.GlobalIPv6Address as string;
  const httpd = (name: string, network: string, ...extra: string[]) =>
    sb.berthOk('run', '-d', '--name', name, '--network', network, ...extra, '--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', www);
  const aaaa = async (nsPath: string, server: string, name: string) =>
    (await sb.inNs(nsPath, 'dig', [`@${server}`, '+tries=2', '+time=2', '+short', 'AAAA', name])).stdout.trim();

  before(async () => {
    sb = await Sandbox.create('x6');
    www = webRoot(path.join(sb.root, 'www'), 'hello');
    wan = await addIpv6Wan(sb, '10.97.0', 'fd97', www);
    // The LAN of the macvlan tests: the host is .2 / fd78::2 on lan0, the router .1 / fd78::1, a peer .10 / fd78::10.
    lan = await Lan.create(sb, 'l', '192.168.78');
    await lan.addNic('lan0', 2);
    must(await sb.inHost('ip', ['-6', 'addr', 'add', 'fd78::2/64', 'dev', 'lan0', 'nodad']), 'host v6 on the LAN');
    const router = await lan.addHost('rt', 1);
    must(await sb.inNs(router.nsPath, 'ip', ['-6', 'addr', 'add', 'fd78::1/64', 'dev', 'eth0', 'nodad']), 'router v6');
    lanPeer = await lan.addHost('pe', 10, 1);
    must(await sb.inNs(lanPeer.nsPath, 'ip', ['-6', 'addr', 'add', 'fd78::10/64', 'dev', 'eth0', 'nodad']), 'peer v6');
    sb.spawnIn(lanPeer.nsPath, BUSYBOX, ['httpd', '-f', '-p', '[::]:80', '-h', www]);
  });
  after(async () => {
    await sb?.destroy();
  });

  describe('ptp', () => {
    before(async () => {
      await sb.berthOk('network', 'create', '-d', 'ptp', '--ipv6', '--subnet', '10.123.0.0/24', '--subnet', 'fd23::/64', 'p6');
      await httpd('pa', 'p6', '--network-alias', 'web', '-p', '8090:80');
      await sb.berthOk('run', '-d', '--name', 'pb', '--network', 'p6', '--', BUSYBOX, 'sleep', '3600');
    });

    test('a container has its /128, routes of both families via the gateways, and no RA', async () => {
      const n = await ns('pa');
      assert.equal(await ip6Of('pa', 'p6'), 'fd23::2');
      assert.match(must(await sb.inNs(n, 'ip', ['-6', 'addr', 'show', 'dev', 'eth0']), 'addr'), /inet6 fd23::2\/128 scope global/);
      const routes = must(await sb.inNs(n, 'ip', ['-6', 'route']), 'routes');
      assert.match(routes, /default via fd23::1 dev eth0/);
      assert.match(routes, /fd23::\/64 via fd23::1 dev eth0/);
      assert.match(must(await sb.inNs(n, 'ip', ['-4', 'route', 'show', 'default']), 'v4 route'), /default via 10\.123\.0\.1 dev eth0/);
      assert.equal((await sb.inNs(n, 'cat', ['/proc/sys/net/ipv6/conf/eth0/accept_ra'])).stdout.trim(), '0');
      assert.match(must(await sb.inHost('ip', ['-6', 'route', 'show', 'fd23::2/128']), 'host route'), /dev bpt[0-9a-f]{12}/, 'the host routes to pa through its veth');
    });

    test('containers reach each other over IPv6 through the host, keeping their addresses', async () => {
      assert.ok(await ping6(await ns('pb'), 'fd23::2'), 'ping -6 pb → pa');
      assert.ok(await eventually(async () => (await get(await ns('pb'), 'http://[fd23::2]/cgi-bin/ip')) === 'fd23::3', 5000), 'pa sees pb\'s own address');
    });

    test('NAT66 out, a published port over IPv6 from outside, and AAAA for names', async () => {
      assert.equal(await get(await ns('pb'), `http://[${WAN_PEER}]/cgi-bin/ip`), WAN_HOST, 'the outside sees the host address');
      assert.ok(await eventually(async () => (await get(wan.nsPath, `http://[${WAN_HOST}]:8090/cgi-bin/ip`)) === WAN_PEER, 5000), 'published on [::], the client keeps its address');
      assert.equal(await aaaa(await ns('pb'), '10.123.0.1', 'web'), 'fd23::2');
    });

    test('a deleted /128 route is restored by the reconciler', async () => {
      const pb = await ns('pb');
      must(await sb.inHost('ip', ['-6', 'route', 'del', 'fd23::2/128']), 'delete the route');
      assert.equal(await ping6(pb, 'fd23::2'), false, 'broken: the host has no route to pa');
      await sb.berthOk('system', 'reconcile');
      assert.ok(await eventually(() => ping6(pb, 'fd23::2'), 5000), 'restored');
    });

    test('IPv6 stays off on an IPv4-only ptp network', async () => {
      await sb.berthOk('network', 'create', '-d', 'ptp', '--subnet', '10.124.0.0/24', 'p4');
      await sb.berthOk('run', '-d', '--name', 'p4a', '--network', 'p4', '--', BUSYBOX, 'sleep', '3600');
      assert.equal((await sb.inNs(await ns('p4a'), 'cat', ['/proc/sys/net/ipv6/conf/eth0/disable_ipv6'])).stdout.trim(), '1');
      assert.equal((await sb.inNs(await ns('pa'), 'cat', ['/proc/sys/net/ipv6/conf/eth0/disable_ipv6'])).stdout.trim(), '0', 'positive control: on; the dual-stack one has it');
      await sb.berthOk('rm', '-f', 'p4a');
      await sb.berthOk('network', 'rm', 'p4');
    });
  });

  describe('macvlan', () => {
    test('bad input is refused and leaves nothing; the corrected command works', async () => {
      const noPrefix = await sb.berth('network', 'create', '-d', 'macvlan', '--ipv6', '--subnet', lan.subnet, '--gateway', '192.168.78.1', '-o', 'parent=lan0', 'mv6');
      assert.notEqual(noPrefix.code, 0);
      assert.match(noPrefix.stderr, /needs the LAN's IPv6 prefix: pass --subnet V6CIDR/);
      const shim = await sb.berth('network', 'create', '-d', 'macvlan', '--ipv6', '--subnet', lan.subnet, '--subnet', 'fd78::/64', '-o', 'parent=lan0', '-o', 'berth.host_access=true', 'mv6');
      assert.notEqual(shim.code, 0);
      assert.match(shim.stderr, /host_access=true is IPv4-only/);
      assert.equal((await sb.berth('network', 'inspect', 'mv6')).code, 1, 'nothing of the refused network');
      await sb.berthOk('network', 'create', '-d', 'macvlan', '--ipv6', '--subnet', lan.subnet, '--gateway', '192.168.78.1', '--subnet', 'fd78::/64', '--gateway', 'fd78::1', '-o', 'parent=lan0', 'mv6');
    });

    test('containers sit on the LAN at their own IPv6 addresses; the host\'s address is never handed out', async () => {
      await httpd('ma', 'mv6');
      await sb.berthOk('run', '-d', '--name', 'mb', '--network', 'mv6', '--', BUSYBOX, 'sleep', '3600');
      assert.equal(await ip6Of('ma', 'mv6'), 'fd78::3', 'fd78::1 is the gateway and fd78::2 the host\'s own');
      const n = await ns('ma');
      assert.match(must(await sb.inNs(n, 'ip', ['-6', 'addr', 'show', 'dev', 'eth0']), 'addr'), /inet6 fd78::3\/64 scope global/);
      assert.doesNotMatch((await sb.inNs(n, 'ip', ['-6', 'addr', 'show', 'dev', 'eth0'])).stdout, /tentative/, 'no DAD wait');
      assert.match(must(await sb.inNs(n, 'ip', ['-6', 'route', 'show', 'default']), 'route'), /default via fd78::1 dev eth0/);
      assert.ok(await eventually(async () => (await get(lanPeer.nsPath, 'http://[fd78::3]/cgi-bin/ip')) === 'fd78::10', 5000), 'a LAN peer reaches ma directly, unNATed');
      assert.equal(await get(n, 'http://[fd78::10]/cgi-bin/ip'), 'fd78::3', 'ma reaches the LAN peer at its own address');
      assert.ok(await ping6(await ns('mb'), 'fd78::3'), 'containers on one parent reach each other');
      assert.ok(await ping6(n, 'fd78::1'), 'the LAN router answers');
    });

    test('the in-sandbox resolver answers AAAA for names of the network', async () => {
      assert.equal(await aaaa(await ns('mb'), '127.0.0.11', 'ma'), 'fd78::3');
    });
  });
});
