/**
 * Who the embedded DNS answers (issue 10, items 4 and 10): only containers of the network, never
 * a LAN peer that routes the gateway address to the host (no names, no PTR sweep, no internal
 * names, no forwarding: not an open resolver); and berth works beside a host DNS server that
 * listens on *:53, which keeps answering the host and the LAN as before.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { BUSYBOX, Sandbox, eventually, must, run, type Peer } from '../../helpers/sandbox.js';

interface DigResult {
  /** dig's status (NOERROR, NXDOMAIN…), or 'timeout' when nothing answered. */
  status: string;
  answers: string[];
}

async function dig(sb: Sandbox, ns: string, server: string, args: string[], port = 53): Promise<DigResult> {
  const r = await sb.inNs(ns, 'dig', [`@${server}`, '-p', String(port), '+tries=1', '+time=2', ...args], 10_000);
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? 'timeout';
  const answers = r.stdout
    .split('\n')
    .filter((l) => l && !l.startsWith(';') && /\sIN\s/.test(l))
    .map((l) => l.trim().split(/\s+/).pop()!);
  return { status, answers };
}

/** The port the daemon's resolver for `gateway` really listens on (UDP), read from the host's sockets. */
async function resolverPort(sb: Sandbox, gateway: string): Promise<number> {
  const lines = (await sb.inHost('ss', ['-Hlun', 'src', gateway])).stdout.trim().split('\n');
  const m = lines.map((l) => new RegExp(`${gateway.replace(/\./g, '\\.')}:(\\d+)`).exec(l)).find(Boolean);
  assert.ok(m, `a resolver socket on ${gateway}: ${lines.join(' | ')}`);
  return Number(m[1]);
}

const gatewayOf = async (sb: Sandbox, net: string): Promise<string> => JSON.parse(await sb.berthOk('network', 'inspect', net))[0].IPAM.Config[0].Gateway;

describe('the embedded DNS answers only its own network', () => {
  let sb: Sandbox;
  let lan: Peer;
  let upstream: Peer;
  let gw: string;
  let vaultGw: string;
  let webIp: string;

  before(async () => {
    sb = await Sandbox.create('da', { startDaemon: false });
    upstream = await sb.addPeer('u', '10.214.0');
    lan = await sb.addPeer('l', '10.213.0');
    sb.serveZone(upstream.nsPath, '10.214.0.77 www.example.test\n', '10.214.0.2');
    fs.writeFileSync(sb.resolvConf, `nameserver ${upstream.address}\n`);
    await sb.startDaemon();
    await sb.berthOk('network', 'create', '--subnet', '10.160.0.0/24', 'named');
    await sb.berthOk('network', 'create', '--internal', '--subnet', '10.161.0.0/24', 'vault');
    await sb.berthOk('run', '-d', '--name', 'web', '--network', 'named', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'cli', '--network', 'named', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'secret', '--network', 'vault', '--', BUSYBOX, 'sleep', '3600');
    gw = await gatewayOf(sb, 'named');
    vaultGw = await gatewayOf(sb, 'vault');
    webIp = (await sb.inspect('web')).NetworkSettings.Networks.named!.IPAddress;
    // The LAN peer routes the container subnets to the host, as a curious neighbour would.
    for (const net of ['10.160.0.0/24', '10.161.0.0/24']) must(await run('ip', ['-n', lan.name, 'route', 'add', net, 'via', lan.hostAddress]), 'route');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('containers of the network get names, PTR and forwarded names from their gateway', async () => {
    const cli = await sb.netnsOf('cli');
    assert.deepEqual((await dig(sb, cli, gw, ['web'])).answers, [webIp]);
    assert.deepEqual((await dig(sb, cli, gw, ['-x', webIp])).answers, ['web.named.']);
    assert.deepEqual((await dig(sb, cli, gw, ['www.example.test'])).answers, ['10.214.0.77']);
    const secret = await sb.netnsOf('secret');
    assert.equal((await dig(sb, secret, vaultGw, ['secret'])).answers.length, 1, 'an internal network resolves its own names');
  });

  test('a LAN peer that routes the gateway to the host gets nothing: no names, no PTR, no internal names, no forwarding', async () => {
    // Positive control through the same route: the LAN peer does reach the gateway address itself.
    assert.equal((await sb.inNs(lan.nsPath, BUSYBOX, ['ping', '-c', '1', '-W', '2', gw])).code, 0, 'the gateway answers ping from the LAN');
    for (const [server, args] of [[gw, ['web']], [gw, ['-x', webIp]], [gw, ['www.example.test']], [vaultGw, ['secret']]] as const) {
      assert.equal((await dig(sb, lan.nsPath, server, [...args])).status, 'timeout', `${server} ${args.join(' ')}`);
    }
    const port = await resolverPort(sb, gw);
    assert.notEqual(port, 53);
    assert.equal((await dig(sb, lan.nsPath, gw, ['web'], port)).status, 'timeout', "nor at the resolver's own port");
    const tcp = await sb.inNs(lan.nsPath, 'dig', [`@${gw}`, '+tcp', '+tries=1', '+time=2', 'web'], 10_000);
    assert.doesNotMatch(tcp.stdout, /status: NOERROR/, 'nor over TCP');
  });

  test("--hostname cannot take another container's name", async () => {
    await sb.berthOk('run', '-d', '--name', 'impostor', '--hostname', 'web', '--network', 'named', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'own-host', '--hostname', 'unclaimed', '--network', 'named', '--', BUSYBOX, 'sleep', '3600');
    const cli = await sb.netnsOf('cli');
    assert.deepEqual((await dig(sb, cli, gw, ['web'])).answers, [webIp], 'web still resolves to the container named web');
    const own = (await sb.inspect('own-host')).NetworkSettings.Networks.named!.IPAddress;
    assert.deepEqual((await dig(sb, cli, gw, ['unclaimed'])).answers, [own], 'a hostname nobody else holds still resolves');
  });

  test('a container of another network gets none of this network\'s names, even at its gateway', async () => {
    const secret = await sb.netnsOf('secret');
    const r = await dig(sb, secret, gw, ['web']);
    assert.deepEqual(r.answers, [], JSON.stringify(r));
    assert.equal((await dig(sb, secret, gw, ['web'], await resolverPort(sb, gw))).status, 'timeout');
  });

  test('a client that keeps its UDP source port still gets answers after a daemon restart', async () => {
    // Resolver libraries with a long-lived socket (c-ares, Go, Java) query from one port; their
    // tracked flow must not keep pointing at the old daemon's resolver port.
    const cli = await sb.netnsOf('cli');
    const fixed = ['-b', '0.0.0.0#45353'];
    assert.deepEqual((await dig(sb, cli, gw, [...fixed, 'web'])).answers, [webIp], 'before the restart');
    await sb.stopDaemon('SIGKILL');
    await sb.startDaemon();
    assert.ok(await eventually(async () => (await dig(sb, cli, gw, [...fixed, 'web'])).answers[0] === webIp, 4000, 200), 'after the restart, same source port');
  });

  test('the host itself gets nothing from a resolver socket', async () => {
    assert.equal((await dig(sb, sb.hostNs, gw, ['web'], await resolverPort(sb, gw))).status, 'timeout');
  });
});

describe('berth beside a host DNS server on *:53', () => {
  let sb: Sandbox;
  let lan: Peer;
  before(async () => {
    sb = await Sandbox.create('dh', { startDaemon: false });
    lan = await sb.addPeer('l', '10.215.0');

    // The host's own dnsmasq on the wildcard address, as on many desktops and small routers.
    sb.serveZone(sb.hostNs, '10.215.0.99 printer.lan.test\n');
    assert.ok(await eventually(async () => /0\.0\.0\.0:53\s/.test((await sb.inHost('ss', ['-Hlun'])).stdout), 5000), 'host dnsmasq listening on *:53');
    fs.writeFileSync(sb.resolvConf, 'nameserver 127.0.0.1\n');
    await sb.startDaemon();
  });
  after(async () => {
    await sb?.destroy();
  });

  test('networks are created and containers resolve each other and the host resolver\'s names', async () => {
    await sb.berthOk('network', 'create', 'beside');
    await sb.berthOk('run', '-d', '--name', 'alpha', '--network', 'beside', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'bravo', '--network', 'beside', '--', BUSYBOX, 'sleep', '3600');
    const gw = await gatewayOf(sb, 'beside');
    const bravo = await sb.netnsOf('bravo');
    const aIp = (await sb.inspect('alpha')).NetworkSettings.Networks.beside!.IPAddress;
    assert.deepEqual((await dig(sb, bravo, gw, ['alpha'])).answers, [aIp], 'berth answers container names');
    assert.deepEqual((await dig(sb, bravo, gw, ['printer.lan.test'])).answers, ['10.215.0.99'], 'and forwards to the host resolver');
    const tcp = await sb.inNs(bravo, 'dig', [`@${gw}`, '+tcp', '+short', '+tries=1', '+time=2', 'alpha'], 10_000);
    assert.equal(tcp.stdout.trim(), aIp, 'over TCP too');
  });

  test('the host resolver keeps answering the host and the LAN, and the daemon restarts fine', async () => {
    assert.deepEqual((await dig(sb, sb.hostNs, '127.0.0.1', ['printer.lan.test'])).answers, ['10.215.0.99']);
    assert.deepEqual((await dig(sb, lan.nsPath, lan.hostAddress, ['printer.lan.test'])).answers, ['10.215.0.99']);
    await sb.stopDaemon('SIGTERM');
    await sb.startDaemon();
    const gw = await gatewayOf(sb, 'beside');
    assert.ok(await eventually(async () => (await dig(sb, await sb.netnsOf('bravo'), gw, ['alpha'])).answers.length === 1, 5000), 'names after a restart');
  });
});
