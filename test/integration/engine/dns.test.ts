/**
 * Issue 4 with real queries from inside containers: names, aliases, PTR, AAAA, scoping, the
 * default bridge, forwarding to a resolver that runs in a test namespace (never the machine's),
 * a dead upstream, /etc files, and changes visible within 10 ms.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { BUSYBOX, Sandbox, eventually, type Peer } from '../../helpers/sandbox.js';

/** dig, run in a container's namespace, against `server`; returns the answer section's data. */
async function dig(sb: Sandbox, ns: string, server: string, name: string, type = 'A'): Promise<{ status: string; answers: string[] }> {
  const r = await sb.inNs(ns, 'dig', [`@${server}`, '+tries=1', '+time=3', type, name]);
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? `no answer (${r.code}: ${r.stdout.slice(-200)})`;
  const short = await sb.inNs(ns, 'dig', [`@${server}`, '+tries=1', '+time=3', '+short', type, name]);
  // dig prints problems (";; communications error …") among +short answers: keep only the data.
  return { status, answers: short.stdout.trim().split('\n').filter((l) => l && !l.startsWith(';')) };
}

/**
 * A resolver whose upstreams are dead must say so: SERVFAIL within a bound (one 2 s try per
 * upstream, two upstreams, plus slack), so that clients fail fast instead of into their own timeouts.
 */
const SERVFAIL_BOUND_MS = 7000;
const DIG_WAIT_S = 12;

describe('embedded DNS', () => {
  let sb: Sandbox;
  let upstream: Peer;
  let gw: string;
  let ns: (c: string) => Promise<string>;

  before(async () => {
    sb = await Sandbox.create('d', { startDaemon: false });
    // The "internet" resolver: a peer namespace answering example.test from a zone file.
    upstream = await sb.addPeer('u', '10.203.0');
    sb.serveZone(upstream.nsPath, '10.203.0.77 www.example.test\n', '10.203.0.2');
    fs.writeFileSync(sb.resolvConf, `nameserver ${upstream.address}\nsearch sandbox.test\n`);
    await sb.startDaemon();
    await sb.berthOk('network', 'create', 'dnsnet');
    await sb.berthOk('network', 'create', 'othernet');
    gw = JSON.parse(await sb.berthOk('network', 'inspect', 'dnsnet'))[0].IPAM.Config[0].Gateway;
    await sb.berthOk('run', '-d', '--name', 'web1', '--network', 'dnsnet', '--network-alias', 'web', '--hostname', 'webhost', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'web2', '--network', 'dnsnet', '--network-alias', 'web', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'cli', '--network', 'dnsnet', '--add-host', 'extra.test:10.9.9.9', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'stranger', '--network', 'othernet', '--', BUSYBOX, 'sleep', '3600');
    ns = (c) => sb.netnsOf(c);
    // The resolver listens on a port of its own on the gateway; queries to gateway:53 are redirected there.
    assert.ok(await eventually(async () => (await sb.inHost('ss', ['-Hlun', 'src', gw])).stdout.includes(`${gw}:`), 5000), 'resolver listening');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('container names, hostnames and short ids resolve to their address on the network', async () => {
    const cli = await ns('cli');
    const web1 = (await sb.inspect('web1')).NetworkSettings.Networks.dnsnet!.IPAddress;
    assert.deepEqual((await dig(sb, cli, gw, 'web1')).answers, [web1]);
    assert.deepEqual((await dig(sb, cli, gw, 'webhost')).answers, [web1]);
    const id = (await sb.inspect('web1')).Id.slice(0, 12);
    assert.deepEqual((await dig(sb, cli, gw, id)).answers, [web1]);
    // And through the container's own resolv.conf with busybox nslookup and ping.
    const ping = await sb.berth('exec', 'cli', '--', BUSYBOX, 'ping', '-c', '1', '-W', '2', 'web1');
    assert.equal(ping.code, 0, ping.stderr);
  });

  test('a shared alias returns every address, in varying order', async () => {
    const cli = await ns('cli');
    const first = new Set<string>();
    for (let i = 0; i < 30 && first.size < 2; i++) {
      const { answers } = await dig(sb, cli, gw, 'web');
      assert.equal(answers.length, 2);
      first.add(answers[0]!);
    }
    assert.equal(first.size, 2, 'both addresses came first at least once');
  });

  test('PTR of a container address gives name.network; AAAA of a known name is NOERROR and empty', async () => {
    const cli = await ns('cli');
    const web1 = (await sb.inspect('web1')).NetworkSettings.Networks.dnsnet!.IPAddress;
    assert.deepEqual((await dig(sb, cli, gw, web1, '-x')).answers.map((a) => a.toLowerCase()), ['web1.dnsnet.']);
    const aaaa = await dig(sb, cli, gw, 'web1', 'AAAA');
    assert.equal(aaaa.status, 'NOERROR');
    assert.deepEqual(aaaa.answers, []);
  });

  test('names are scoped to their network', async () => {
    const stranger = await ns('stranger');
    const otherGw = JSON.parse(await sb.berthOk('network', 'inspect', 'othernet'))[0].IPAM.Config[0].Gateway;
    const r = await dig(sb, stranger, otherGw, 'web1');
    assert.deepEqual(r.answers, [], 'othernet does not see dnsnet containers');
    assert.equal(r.status, 'NXDOMAIN', 'the query was forwarded upstream, which does not know it');
  });

  test('other names are forwarded to the upstream from the host resolv.conf', async () => {
    const cli = await ns('cli');
    assert.deepEqual((await dig(sb, cli, gw, 'www.example.test')).answers, ['10.203.0.77']);
    assert.equal((await dig(sb, cli, gw, 'nosuch.example.test')).status, 'NXDOMAIN');
  });

  test("each container sees its own /etc/hosts, /etc/resolv.conf and /etc/hostname; the host's are untouched", async () => {
    const hostsBefore = fs.readFileSync('/etc/hosts', 'utf8');
    const resolvBefore = fs.readFileSync('/etc/resolv.conf', 'utf8');
    const cliIp = (await sb.inspect('cli')).NetworkSettings.Networks.dnsnet!.IPAddress;
    const hosts = await sb.berthOk('exec', 'cli', '--', BUSYBOX, 'cat', '/etc/hosts');
    assert.match(hosts, /^127\.0\.0\.1\tlocalhost$/m);
    assert.match(hosts, /^10\.9\.9\.9\textra\.test$/m);
    const id = (await sb.inspect('cli')).Id.slice(0, 12);
    assert.match(hosts, new RegExp(`^${cliIp.replace(/\./g, '\\.')}\\t${id}$`, 'm'));
    const resolv = await sb.berthOk('exec', 'cli', '--', BUSYBOX, 'cat', '/etc/resolv.conf');
    assert.match(resolv, new RegExp(`^nameserver ${gw.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(resolv, /^search sandbox\.test$/m);
    assert.match(resolv, /^options ndots:0$/m);
    assert.equal((await sb.berthOk('exec', 'web1', '--', BUSYBOX, 'cat', '/etc/hostname')).trim(), 'webhost');
    assert.equal((await sb.berthOk('exec', 'web1', '--', BUSYBOX, 'hostname')).trim(), 'webhost');
    assert.equal(fs.readFileSync('/etc/hosts', 'utf8'), hostsBefore);
    assert.equal(fs.readFileSync('/etc/resolv.conf', 'utf8'), resolvBefore);
  });

  test('the default bridge: no name resolution between containers, the host resolvers minus loopback', async () => {
    fs.writeFileSync(sb.resolvConf, `nameserver 127.0.0.53\nnameserver ${upstream.address}\nsearch sandbox.test\n`);
    await sb.berthOk('run', '-d', '--name', 'b1', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'b2', '--', BUSYBOX, 'sleep', '3600');
    const resolv = await sb.berthOk('exec', 'b1', '--', BUSYBOX, 'cat', '/etc/resolv.conf');
    assert.doesNotMatch(resolv, /127\.0\.0\.53/);
    assert.match(resolv, new RegExp(`nameserver ${upstream.address.replace(/\./g, '\\.')}`));
    const r = await dig(sb, await ns('b1'), upstream.address, 'b2');
    assert.deepEqual(r.answers, [], 'b2 is unknown to DNS on the default bridge');
    const byName = await sb.berth('exec', 'b1', '--', BUSYBOX, 'ping', '-c', '1', '-W', '1', 'b2');
    assert.notEqual(byName.code, 0);
    fs.writeFileSync(sb.resolvConf, `nameserver ${upstream.address}\nsearch sandbox.test\n`);
  });

  test('--dns sets a container its own upstream; a dead upstream never delays container names', async () => {
    // 10.203.0.9 and .10 are on the upstream link but nothing answers there: two tries of 2 s.
    await sb.berthOk('run', '-d', '--name', 'deaddns', '--network', 'dnsnet', '--dns', '10.203.0.9', '--dns', '10.203.0.10', '--', BUSYBOX, 'sleep', '3600');
    const dead = await ns('deaddns');
    // dig waits longer than the bound, so a resolver that never answers shows up as a timeout here.
    const forwardStarted = Date.now();
    const forwarded = sb.inNs(dead, 'dig', [`@${gw}`, '+tries=1', `+time=${DIG_WAIT_S}`, 'www.example.test'], 30_000);
    const started = Date.now();
    const local = await dig(sb, dead, gw, 'web1');
    const localMs = Date.now() - started;
    assert.equal(local.answers.length, 1, 'container name answered while the forward hangs');
    assert.ok(localMs < 2000, `container name answered in ${localMs} ms, before the forward timed out`);
    const slow = await forwarded;
    const forwardMs = Date.now() - forwardStarted;
    assert.match(slow.stdout, /status: SERVFAIL/, `the resolver answers SERVFAIL for a dead upstream, not silence: ${slow.stdout.slice(-300)}`);
    assert.ok(forwardMs <= SERVFAIL_BOUND_MS, `SERVFAIL came after ${forwardMs} ms (bound ${SERVFAIL_BOUND_MS} ms)`);
  });

  test('internal networks do not forward', async () => {
    await sb.berthOk('network', 'create', '--internal', 'sealed');
    await sb.berthOk('run', '-d', '--name', 'inside', '--network', 'sealed', '--', BUSYBOX, 'sleep', '3600');
    const sealedGw = JSON.parse(await sb.berthOk('network', 'inspect', 'sealed'))[0].IPAM.Config[0].Gateway;
    const inside = await ns('inside');
    assert.deepEqual((await dig(sb, inside, sealedGw, 'inside')).answers.length, 1);
    assert.equal((await dig(sb, inside, sealedGw, 'www.example.test')).status, 'SERVFAIL');
  });

  test('connect, disconnect and remove are visible to DNS at once', async () => {
    // The directory is updated inside the operation, before the daemon answers: so the very first
    // query after the command returns must see the change (no retry, no waiting).
    await sb.berthOk('run', '-d', '--name', 'late', '--network', 'othernet', '--', BUSYBOX, 'sleep', '3600');
    const cli = await ns('cli');
    assert.deepEqual((await dig(sb, cli, gw, 'late')).answers, []);
    await sb.berthOk('network', 'connect', 'dnsnet', 'late');
    const lateIp = (await sb.inspect('late')).NetworkSettings.Networks.dnsnet!.IPAddress;
    const afterConnect = await dig(sb, cli, gw, 'late');
    assert.deepEqual(afterConnect.answers, [lateIp], `resolvable right after connect (${afterConnect.status})`);
    await sb.berthOk('network', 'disconnect', 'dnsnet', 'late');
    assert.deepEqual((await dig(sb, cli, gw, 'late')).answers, [], 'gone right after disconnect');
    await sb.berthOk('run', '-d', '--name', 'later', '--network', 'dnsnet', '--', BUSYBOX, 'sleep', '3600');
    assert.equal((await dig(sb, cli, gw, 'later')).answers.length, 1, 'resolvable right after start');
    await sb.berthOk('rm', '-f', 'later');
    assert.deepEqual((await dig(sb, cli, gw, 'later')).answers, [], 'gone right after rm');
  });
});
