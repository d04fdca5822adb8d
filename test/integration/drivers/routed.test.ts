/**
 * Routed networks on one host (Calico's model) with real packets: /32 addresses, 169.254.1.1 as
 * the gateway answered by proxy ARP on a host end without address, a /32 host route per container;
 * masquerade to the outside, a LAN that is allowed (-o berth.allow_from) reaching containers
 * directly and one that is not refused, isolation from a bridge network, names, repair, bad input.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, eventually, type Peer } from '../../helpers/sandbox.js';

describe('routed networks on one host', () => {
  let sb: Sandbox;
  let lan: Peer;
  const ping = async (ns: string, ip: string) => (await sb.inNs(ns, BUSYBOX, ['ping', '-c', '1', '-W', '2', ip])).code === 0;
  const ipOf = async (name: string, net: string) => (await sb.inspect(name)).NetworkSettings.Networks[net]!.IPAddress;

  before(async () => {
    sb = await Sandbox.create('r');
    lan = await sb.addPeer('l', '10.208.0');
    // The LAN routes the pool to the host (as a router that learned it would); nothing else back.
    await sb.inNs(lan.nsPath, 'ip', ['route', 'del', 'default']);
    await sb.inNs(lan.nsPath, 'ip', ['route', 'add', '10.130.0.0/16', 'via', lan.hostAddress]);
    // A host's default route, as real hosts have: proxy ARP answers for 169.254.1.1 because of it.
    await sb.inHost('ip', ['route', 'add', 'default', 'via', lan.address]);
    await sb.berthOk('network', 'create', '-d', 'routed', '--subnet', '10.130.0.0/24', '-o', 'berth.allow_from=10.208.0.0/24', 'rnet');
    await sb.berthOk('run', '-d', '--name', 'ra', '--network', 'rnet', '--network-alias', 'web', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', '/');
    await sb.berthOk('run', '-d', '--name', 'rb', '--network', 'rnet', 'sleep', '600');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('a /32 per container, 169.254.1.1 answered by proxy ARP, no address on the host end, a /32 host route', async () => {
    const raNs = await sb.netnsOf('ra');
    const ra = await ipOf('ra', 'rnet');
    assert.match((await sb.inNs(raNs, 'ip', ['-o', 'addr', 'show', 'eth0'])).stdout, new RegExp(`inet ${ra.replace(/\./g, '\\.')}/32`));
    const routes = (await sb.inNs(raNs, 'ip', ['route'])).stdout;
    assert.match(routes, /default via 169\.254\.1\.1 dev eth0/);
    assert.match(routes, /169\.254\.1\.1 dev eth0 scope link/);
    const hostRoute = (await sb.inHost('ip', ['route', 'show', `${ra}/32`])).stdout;
    const veth = /dev (brt[0-9a-f]{12})/.exec(hostRoute)?.[1];
    assert.ok(veth, `the host routes to ra through its veth: ${hostRoute}`);
    assert.doesNotMatch((await sb.inHost('ip', ['-o', '-4', 'addr', 'show', 'dev', veth])).stdout, /inet /, 'no address on the host end');
    assert.equal((await sb.inHost('cat', [`/proc/sys/net/ipv4/conf/${veth}/proxy_arp`])).stdout.trim(), '1');
    assert.ok(await ping(await sb.netnsOf('rb'), ra), 'rb reaches ra through the host');
    const mac = /link\/ether (\S+)/.exec((await sb.inHost('ip', ['-o', 'link', 'show', veth])).stdout)![1]!;
    const arp = await sb.inNs(raNs, BUSYBOX, ['arping', '-I', 'eth0', '-c', '1', '-w', '2', '169.254.1.1']);
    assert.match(arp.stdout, new RegExp(`\\[${mac}\\]`, 'i'), `the host end answers ARP for 169.254.1.1 with its MAC: ${arp.stdout}${arp.stderr}`);
    const unanswered = await sb.inNs(raNs, BUSYBOX, ['arping', '-I', 'eth0', '-c', '1', '-w', '2', ra]);
    assert.doesNotMatch(unanswered.stdout, new RegExp(`\\[${mac}\\]`, 'i'), 'control: it does not answer for the container’s own address');
  });

  test('outbound is masqueraded except to an allowed LAN, which reaches containers directly; names resolve', async () => {
    const rbNs = await sb.netnsOf('rb');
    const ra = await ipOf('ra', 'rnet');
    assert.ok(await eventually(async () => (await sb.inNs(lan.nsPath, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', `http://${ra}/`])).stdout.match(/^[1-5]\d\d$/) !== null, 5000), 'the allowed LAN reaches ra by its own address');
    await sb.berthOk('network', 'create', '-d', 'routed', '--subnet', '10.130.1.0/24', 'closed');
    await sb.berthOk('run', '-d', '--name', 'rc', '--network', 'closed', 'sleep', '600');
    const rc = await ipOf('rc', 'closed');
    assert.equal(await ping(lan.nsPath, rc), false, 'a network that does not allow the LAN is not reached from it');
    assert.equal(await ping(await sb.netnsOf('rc'), ra), false, 'nor from another routed network');
    // Without its route to the pools, the LAN answers only what was masqueraded.
    await sb.inNs(lan.nsPath, 'ip', ['route', 'del', '10.130.0.0/16']);
    assert.ok(await ping(await sb.netnsOf('rc'), lan.address), 'rc reaches the LAN, masqueraded');
    assert.equal(await ping(await sb.netnsOf('ra'), lan.address), false, 'ra reaches the allowed LAN un-NATed (no answer without the LAN’s route)');
    await sb.inNs(lan.nsPath, 'ip', ['route', 'add', '10.130.0.0/16', 'via', lan.hostAddress]);
    assert.ok(await ping(await sb.netnsOf('ra'), lan.address), 'with it, the LAN answers ra');
    const answer = (await sb.inNs(rbNs, 'dig', ['@127.0.0.11', '+tries=1', '+time=3', '+short', 'web'])).stdout.trim();
    assert.equal(answer, ra, 'names resolve from the resolver in the sandbox');
    await sb.berthOk('rm', '-f', 'rc');
    await sb.berthOk('network', 'rm', 'closed');
  });

  test('a deleted host route is restored by the reconciler', async () => {
    const ra = await ipOf('ra', 'rnet');
    const rbNs = await sb.netnsOf('rb');
    assert.equal((await sb.inHost('ip', ['route', 'del', `${ra}/32`])).code, 0);
    assert.equal(await ping(rbNs, ra), false, 'broken: the host has no route to ra');
    await sb.berthOk('system', 'reconcile');
    assert.ok(await ping(rbNs, ra), 'restored');
  });

  test('bad input: block size, a pool smaller than a block, allow_from', async () => {
    const refused = async (args: string[], pattern: RegExp) => {
      const r = await sb.berth('network', 'create', '-d', 'routed', ...args, 'bad');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, pattern);
    };
    await refused(['--subnet', '10.131.0.0/16', '-o', 'block_size=19'], /block_size=19 is out of range: .*20 to 32/);
    await refused(['--subnet', '10.131.0.0/16', '-o', 'block_size=33'], /out of range/);
    await refused(['--subnet', '10.131.0.0/28'], /pool 10\.131\.0\.0\/28 is smaller than one block \(\/26\)/);
    await refused(['--subnet', '10.131.0.0/24', '-o', 'berth.allow_from=nope'], /"nope" is not an IPv4 CIDR/);
    await refused(['--subnet', '10.131.0.0/24', '-o', 'berth.allow_from=0.0.0.0/0'], /every address/);
    assert.doesNotMatch(await sb.berthOk('network', 'ls'), /\bbad\b/, 'nothing half-made');
    await sb.berthOk('network', 'create', '-d', 'routed', '--subnet', '10.131.0.0/28', '-o', 'block_size=28', 'good');
    await sb.berthOk('network', 'rm', 'good');
  });
});
