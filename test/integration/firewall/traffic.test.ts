/**
 * berth's firewall judged by real packets, on the ruleset a running daemon applies for real
 * networks and containers (no hand-made topology, no ruleset built by the test):
 *
 *   lan (10.78.0.2) ── 10.78.0.1 ┐
 *                                 sandbox host (berth daemon) ── n0 10.77.0.0/24 (icc on):  c1 .2, c2 .3
 *                                                             ── n1 10.77.1.0/24 (icc off): c3 .2, c4 .3
 *                                                             ── n2 10.77.2.0/24 (internal): c5 .2
 *
 * Every server answers with the client address it saw, so the tests check NAT, not just
 * reachability; every negative check has a positive control through the same path. The suite runs
 * twice: with bridged IPv4 passed to the ip hooks (br_netfilter's bridge-nf-call-iptables=1, per
 * namespace) and without, since berth must not depend on either. Without the br_netfilter module
 * (no /proc/sys/net/bridge in the namespace) the "on" suite is skipped with that reason: loading a
 * module would change the machine.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, eventually, must, type Peer } from '../../helpers/sandbox.js';

const CONNECT_TIMEOUT_MS = 1500;
const NODE = process.execPath;

/** Serves each `tcp:addr:port` / `udp:addr:port` spec, answering with the client address it sees. */
const SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
for (const spec of process.argv.slice(1)) {
  const [proto, host, port] = spec.split(':');
  if (proto === 'tcp') {
    net.createServer((s) => { s.on('error', () => {}); s.end(s.remoteAddress + '\\n'); }).listen(+port, host);
  } else {
    const u = dgram.createSocket('udp4');
    u.on('message', (m, r) => u.send(r.address + '\\n', r.port, r.address));
    u.bind(+port, host);
  }
}`;

/** One request; prints {ok, peer} or {ok:false, error} and always exits by itself. */
const CLIENT = `
const net = require('node:net'), dgram = require('node:dgram');
const [proto, host, port, ms] = process.argv.slice(1);
const done = (r) => { process.stdout.write(JSON.stringify(r)); process.exit(0); };
setTimeout(() => done({ ok: false, error: 'timeout' }), +ms);
if (proto === 'tcp') {
  const s = net.connect({ host, port: +port });
  let data = '';
  s.on('data', (c) => { data += c; });
  s.on('end', () => done({ ok: true, peer: data.trim() }));
  s.on('error', (e) => done({ ok: false, error: e.code || String(e) }));
} else {
  const s = dgram.createSocket('udp4');
  s.on('message', (m) => done({ ok: true, peer: String(m).trim() }));
  s.on('error', (e) => done({ ok: false, error: e.code || String(e) }));
  s.send('x', +port, host);
}`;

interface Reply {
  ok: boolean;
  peer?: string;
  error?: string;
}

type Place = 'host' | 'lan' | 'c1' | 'c2' | 'c3' | 'c4' | 'c5';

/** The br_netfilter sysctl of the sandbox host's namespace, or why the test cannot set it. */
async function brNetfilterState(sb: Sandbox): Promise<{ available: true } | { available: false; reason: string }> {
  if ((await sb.inHost('test', ['-d', '/proc/sys/net/bridge'])).code !== 0) {
    return { available: false, reason: 'br_netfilter is not loaded (no /proc/sys/net/bridge in the namespace), and loading a module would change the machine' };
  }
  const [major = 0, minor = 0] = (await sb.inHost('uname', ['-r'])).stdout.split('.').map(Number);
  if (major < 5 || (major === 5 && minor < 3)) {
    return { available: false, reason: 'bridge-nf-call-iptables is per namespace only from Linux 5.3: setting it here would change the machine' };
  }
  return { available: true };
}

let sb: Sandbox;
let lan: Peer;
const ns = {} as Record<Place, string>;
let brNetfilter: { available: true } | { available: false; reason: string } = { available: false, reason: 'not probed yet' };

async function request(from: Place, proto: 'tcp' | 'udp', host: string, port: number): Promise<Reply> {
  const r = await sb.inNs(ns[from], NODE, ['-e', CLIENT, proto, host, String(port), String(CONNECT_TIMEOUT_MS)], CONNECT_TIMEOUT_MS + 10_000);
  return JSON.parse(r.stdout) as Reply;
}
const reaches = async (from: Place, proto: 'tcp' | 'udp', host: string, p: number, peer: string) => {
  assert.deepEqual(await request(from, proto, host, p), { ok: true, peer }, `${from} -> ${proto} ${host}:${p}`);
};
const dropped = async (from: Place, proto: 'tcp' | 'udp', host: string, p: number) => {
  assert.deepEqual(await request(from, proto, host, p), { ok: false, error: 'timeout' }, `${from} -> ${proto} ${host}:${p} must be dropped`);
};
const refused = async (from: Place, host: string, p: number) => {
  assert.deepEqual(await request(from, 'tcp', host, p), { ok: false, error: 'ECONNREFUSED' }, `${from} -> ${host}:${p} must be refused`);
};

before(async () => {
  sb = await Sandbox.create('f');
  lan = await sb.addPeer('l', '10.78.0');
  brNetfilter = await brNetfilterState(sb);
  await sb.berthOk('network', 'create', '--subnet', '10.77.0.0/24', 'n0');
  await sb.berthOk('network', 'create', '--subnet', '10.77.1.0/24', '-o', 'com.docker.network.bridge.enable_icc=false', 'n1');
  await sb.berthOk('network', 'create', '--subnet', '10.77.2.0/24', '--internal', 'n2');
  const serve = (...specs: string[]) => ['--', NODE, '-e', SERVER, ...specs];
  await sb.berthOk('run', '-d', '--name', 'c1', '--network', 'n0', '-p', '8080:80', '-p', '127.0.0.1:8081:80', '-p', `${lan.hostAddress}:8082:80`, '-p', '5353:81/udp', ...serve('tcp:0.0.0.0:80', 'udp:0.0.0.0:81'));
  await sb.berthOk('run', '-d', '--name', 'c2', '--network', 'n0', '--', BUSYBOX, 'sleep', '3600');
  await sb.berthOk('run', '-d', '--name', 'c3', '--network', 'n1', '-p', '8083:80', ...serve('tcp:0.0.0.0:80'));
  await sb.berthOk('run', '-d', '--name', 'c4', '--network', 'n1', '--', BUSYBOX, 'sleep', '3600');
  await sb.berthOk('run', '-d', '--name', 'c5', '--network', 'n2', '-p', '8090:80', ...serve('tcp:0.0.0.0:80'));
  ns.host = sb.hostNs;
  ns.lan = lan.nsPath;
  for (const c of ['c1', 'c2', 'c3', 'c4', 'c5'] as const) ns[c] = await sb.netnsOf(c);
  for (const [c, ip] of [['c1', '10.77.0.2'], ['c2', '10.77.0.3'], ['c3', '10.77.1.2'], ['c4', '10.77.1.3'], ['c5', '10.77.2.2']] as const) {
    assert.equal((await sb.inspect(c)).NetworkSettings.IPAddress, ip, `${c}'s address, as the tests expect it`);
  }
  // Whatever route an internal network gives, a process in the container may set one itself:
  // only the firewall may keep it in.
  must(await sb.inNs(ns.c5, 'ip', ['route', 'replace', 'default', 'via', '10.77.2.1']), 'default route in c5');
  must(await sb.inNs(ns.lan, 'ip', ['route', 'add', '10.77.0.0/16', 'via', lan.hostAddress]), 'LAN route to the container subnets');
  sb.spawnIn(ns.lan, NODE, ['-e', SERVER, 'tcp:0.0.0.0:7000']);
  // A host-only service, and one containers may use on their gateway.
  sb.spawnIn(ns.host, NODE, ['-e', SERVER, 'tcp:127.0.0.1:9000', 'tcp:0.0.0.0:9001']);
  for (const [from, host, port] of [['host', '10.77.0.2', 80], ['host', '10.77.1.2', 80], ['host', '10.77.2.2', 80], ['lan', '10.78.0.2', 7000], ['host', '127.0.0.1', 9000]] as const) {
    assert.ok(await eventually(async () => (await request(from, 'tcp', host, port)).ok, 10_000, 200), `server ${host}:${port} is up`);
  }
});

after(async () => {
  await sb?.destroy();
});

for (const mode of ['off', 'on'] as const) {
  // Decided when the suite runs, after before() has probed the namespace.
  const skipReason = () => (mode === 'on' && !brNetfilter.available ? brNetfilter.reason : undefined);

  describe(`berth's ruleset with real traffic (bridged IPv4 through the ip hooks: ${mode})`, () => {
    before(async () => {
      if (skipReason()) return;
      // Off: nothing to do without the module (bridged traffic never reaches the ip hooks then).
      if (brNetfilter.available) must(await sb.inHost('sysctl', ['-qw', `net.bridge.bridge-nf-call-iptables=${mode === 'on' ? 1 : 0}`]), 'bridge-nf-call-iptables');
      // Flows tracked under the other mode must not decide this one.
      await sb.inHost('conntrack', ['-F']);
    });

    const it = (name: string, fn: () => Promise<void>) =>
      test(name, async (t) => {
        const reason = skipReason();
        if (reason) return t.skip(reason);
        await fn();
      });

    it('a LAN peer reaches published ports and the container sees its real address', async () => {
      await Promise.all([
        reaches('lan', 'tcp', lan.hostAddress, 8080, lan.address),
        reaches('lan', 'udp', lan.hostAddress, 5353, lan.address),
        reaches('lan', 'tcp', lan.hostAddress, 8082, lan.address),
      ]);
    });

    it('a port bound to one host address is not published on the others', async () => {
      await Promise.all([refused('lan', '10.77.0.1', 8082), reaches('lan', 'tcp', '10.77.0.1', 8080, lan.address)]);
    });

    it('a LAN peer cannot reach container addresses directly, only their published ports', async () => {
      await Promise.all([dropped('lan', 'tcp', '10.77.0.2', 80), reaches('lan', 'tcp', lan.hostAddress, 8080, lan.address)]);
    });

    it('a 127.0.0.1-only port is published for the host alone', async () => {
      await Promise.all([refused('lan', lan.hostAddress, 8081), reaches('host', 'tcp', '127.0.0.1', 8081, '10.77.0.1')]);
    });

    it('the host reaches published ports on 127.0.0.1 and on its own addresses', async () => {
      await Promise.all([
        reaches('host', 'tcp', '127.0.0.1', 8080, '10.77.0.1'),
        reaches('host', 'tcp', lan.hostAddress, 8080, lan.hostAddress),
      ]);
    });

    it('hairpin: containers reach published ports via a host address, from the same network, another one, and itself', async () => {
      await Promise.all([
        reaches('c2', 'tcp', lan.hostAddress, 8080, '10.77.0.1'),
        // Masquerade takes the address of the bridge the packet leaves by.
        reaches('c3', 'tcp', lan.hostAddress, 8080, '10.77.0.1'),
        reaches('c1', 'tcp', lan.hostAddress, 8080, '10.77.0.1'),
      ]);
    });

    it('networks are isolated from each other', async () => {
      await Promise.all([dropped('c3', 'tcp', '10.77.0.2', 80), reaches('c2', 'tcp', '10.77.0.2', 80, '10.77.0.3')]);
    });

    it('icc=false isolates containers of a network, also through published ports, but not from the gateway or the LAN', async () => {
      await Promise.all([
        dropped('c4', 'tcp', '10.77.1.2', 80),
        dropped('c4', 'tcp', lan.hostAddress, 8083),
        dropped('c3', 'tcp', lan.hostAddress, 8083),
        reaches('c4', 'tcp', '10.77.1.1', 9001, '10.77.1.3'),
        reaches('lan', 'tcp', lan.hostAddress, 8083, lan.address),
      ]);
    });

    it('containers reach beyond the host masqueraded', async () => {
      await reaches('c1', 'tcp', lan.address, 7000, lan.hostAddress);
    });

    it('an internal network cannot leave the host and gets no published ports', async () => {
      await Promise.all([
        dropped('c5', 'tcp', lan.address, 7000),
        reaches('c1', 'tcp', lan.address, 7000, lan.hostAddress),
        dropped('lan', 'tcp', lan.hostAddress, 8090),
        dropped('host', 'tcp', '127.0.0.1', 8090),
        reaches('c5', 'tcp', '10.77.2.1', 9001, '10.77.2.2'),
        reaches('host', 'tcp', '10.77.2.2', 80, '10.77.2.1'),
      ]);
    });

    it("the user's chain judges published-port traffic and survives a rebuild of berth's ruleset", async () => {
      must(
        await sb.inHost('nft', ['add', 'rule', 'ip', 'berth', 'user-forward', 'ip', 'saddr', lan.address, 'meta', 'l4proto', 'tcp', 'ct', 'original', 'proto-dst', '8080', 'drop']),
        'a user rule',
      );
      try {
        await dropped('lan', 'tcp', lan.hostAddress, 8080);
        await sb.berthOk('system', 'reconcile');
        await Promise.all([
          dropped('lan', 'tcp', lan.hostAddress, 8080),
          reaches('lan', 'tcp', lan.hostAddress, 8082, lan.address),
          reaches('c2', 'tcp', lan.hostAddress, 8080, '10.77.0.1'),
        ]);
      } finally {
        must(await sb.inHost('nft', ['flush', 'chain', 'ip', 'berth', 'user-forward']), 'remove the user rule');
      }
      await reaches('lan', 'tcp', lan.hostAddress, 8080, lan.address);
    });
  });
}
