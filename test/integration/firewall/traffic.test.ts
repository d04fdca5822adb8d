/**
 * berth's ruleset judged by real packets. Every namespace here is the test's own (`bfw-` prefix):
 *
 *   lan (10.78.0.2) ── lan0 10.78.0.1 ┐
 *                                      host ── bfw-br0 10.77.0.1/24  (icc on):  c1 .2, c2 .3
 *                                           ── bfw-br1 10.77.1.1/24  (icc off): c3 .2, c4 .3
 *                                           ── bfw-br2 10.77.2.1/24  (internal): c5 .2
 *
 * The host namespace gets what the engine must set on a real host (ip_forward=1, route_localnet=1
 * on berth bridges) plus route_localnet=1 on its LAN link, as kube-proxy sets it on every interface:
 * the kernel then no longer drops 127/8 from the LAN as martian, so only berth's rules keep ports
 * bound to 127.0.0.1 host-only. `lan` and `c2` route 127.0.0.0/8 to the host (their lo is down) to
 * play the attacker of Docker 20.10's test 9 and of CVE-2020-8558.
 *
 * The suite runs twice: with br_netfilter passing bridged IPv4 to the ip hooks (the default in a new
 * namespace when the module is loaded) and without, since berth must not depend on either. With
 * br_netfilter, the ports are in hairpin mode, as the engine must set them then (see below).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import type { FirewallNetwork, FirewallState, PublishedPort } from '../../../src/firewall/model.js';
import { IP_CHAINS, TABLE } from '../../../src/firewall/names.js';
import { buildRuleset } from '../../../src/firewall/ruleset.js';
import { createNamespace, deleteNamespace, inNs, nftLoad, skipReason } from './netns.js';

const execFileAsync = promisify(execFile);

const CONNECT_TIMEOUT_MS = 1500;
const SERVER_READY_TIMEOUT_MS = 10_000;

/** Serves each `tcp:addr:port` / `udp:addr:port` spec, answering with the client address it sees. */
const SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
const specs = process.argv.slice(1);
let pending = specs.length;
const ready = () => { if (--pending === 0) process.stdout.write('ready\\n'); };
for (const spec of specs) {
  const [proto, host, port] = spec.split(':');
  if (proto === 'tcp') {
    net.createServer((s) => { s.on('error', () => {}); s.end(s.remoteAddress + '\\n'); }).listen(+port, host, ready);
  } else {
    const u = dgram.createSocket('udp4');
    u.on('message', (m, r) => u.send(r.address + '\\n', r.port, r.address));
    u.bind(+port, host, ready);
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

const NODE = process.execPath;

async function request(ns: string, proto: 'tcp' | 'udp', host: string, port: number): Promise<Reply> {
  const { stdout } = await execFileAsync(
    'ip',
    ['netns', 'exec', ns, NODE, '-e', CLIENT, proto, host, String(port), String(CONNECT_TIMEOUT_MS)],
    { timeout: CONNECT_TIMEOUT_MS + 10_000 },
  );
  return JSON.parse(stdout) as Reply;
}

/** Starts a server in a namespace and resolves once it listens; the caller kills it by PID. */
function startServer(ns: string, specs: string[], started: ChildProcess[]): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns, NODE, '-e', SERVER, ...specs], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server in ${ns} not ready: ${err}`)), SERVER_READY_TIMEOUT_MS);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server in ${ns} exited with ${code}: ${err}`));
    });
  });
}

const ipCmd = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const sysctl = (ns: string, ...settings: string[]) => inNs(ns, 'sysctl', ['-qw', ...settings]);

const net = (id: string, n: number, options: Partial<FirewallNetwork>): FirewallNetwork => ({
  id,
  bridge: `bfw-br${n}`,
  subnet: `10.77.${n}.0/24`,
  gateway: `10.77.${n}.1`,
  internal: false,
  icc: true,
  masquerade: true,
  ...options,
});

const port = (containerId: string, protocol: 'tcp' | 'udp', hostIp: string, hostPort: number, containerIp: string, containerPort: number): PublishedPort => ({
  containerId,
  protocol,
  hostIp,
  hostPort,
  containerIp,
  containerPort,
});

const STATE: FirewallState = {
  networks: [net('n0', 0, {}), net('n1', 1, { icc: false }), net('n2', 2, { internal: true })],
  ports: [
    port('c1', 'tcp', '0.0.0.0', 8080, '10.77.0.2', 80),
    port('c1', 'tcp', '127.0.0.1', 8081, '10.77.0.2', 80),
    port('c1', 'tcp', '10.78.0.1', 8082, '10.77.0.2', 80),
    port('c1', 'udp', '0.0.0.0', 5353, '10.77.0.2', 81),
    port('c3', 'tcp', '0.0.0.0', 8083, '10.77.1.2', 80),
    port('c5', 'tcp', '0.0.0.0', 8090, '10.77.2.2', 80),
  ],
};

const skip = skipReason() ?? (existsSync('/proc/sys/net/bridge') ? undefined : 'needs br_netfilter sysctls to pick a mode');

for (const brNetfilter of [true, false]) {
  describe(`berth ruleset with real traffic (br_netfilter ${brNetfilter ? 'on' : 'off'})`, { skip }, () => {
    const namespaces: string[] = [];
    const servers: ChildProcess[] = [];
    const ns: Record<'host' | 'lan' | 'c1' | 'c2' | 'c3' | 'c4' | 'c5', string> = {
      host: '', lan: '', c1: '', c2: '', c3: '', c4: '', c5: '',
    };

    before(async () => {
      for (const key of Object.keys(ns) as Array<keyof typeof ns>) {
        ns[key] = createNamespace(key);
        namespaces.push(ns[key]);
      }
      const H = ns.host;
      for (const n of [ns.host, ns.c1, ns.c3, ns.c4, ns.c5]) ipCmd(['-n', n, 'link', 'set', 'lo', 'up']);
      sysctl(H, 'net.ipv4.ip_forward=1', `net.bridge.bridge-nf-call-iptables=${brNetfilter ? 1 : 0}`);
      for (let b = 0; b < 3; b++) {
        ipCmd(['-n', H, 'link', 'add', `bfw-br${b}`, 'type', 'bridge']);
        ipCmd(['-n', H, 'addr', 'add', `10.77.${b}.1/24`, 'dev', `bfw-br${b}`]);
        ipCmd(['-n', H, 'link', 'set', `bfw-br${b}`, 'up']);
        // What the engine sets on its bridges: host -> 127.0.0.1:PORT is routed out of them.
        sysctl(H, `net.ipv4.conf.bfw-br${b}.route_localnet=1`);
      }
      const containers: Array<[string, number, string]> = [
        [ns.c1, 0, '10.77.0.2'], [ns.c2, 0, '10.77.0.3'], [ns.c3, 1, '10.77.1.2'], [ns.c4, 1, '10.77.1.3'], [ns.c5, 2, '10.77.2.2'],
      ];
      containers.forEach(([c, b, ip], i) => {
        ipCmd(['-n', H, 'link', 'add', `vc${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c]);
        ipCmd(['-n', H, 'link', 'set', `vc${i}`, 'master', `bfw-br${b}`, 'up']);
        // With br_netfilter active, a DNAT back to the sender's own address is bridged out of the port
        // it came in by, which a bridge does only in hairpin mode: the engine must set it then.
        if (brNetfilter) ipCmd(['-n', H, 'link', 'set', 'dev', `vc${i}`, 'type', 'bridge_slave', 'hairpin', 'on']);
        ipCmd(['-n', c, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
        ipCmd(['-n', c, 'link', 'set', 'eth0', 'up']);
        ipCmd(['-n', c, 'route', 'add', 'default', 'via', `10.77.${b}.1`]);
      });
      ipCmd(['-n', H, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.lan]);
      ipCmd(['-n', H, 'addr', 'add', '10.78.0.1/24', 'dev', 'lan0']);
      ipCmd(['-n', H, 'link', 'set', 'lan0', 'up']);
      sysctl(H, 'net.ipv4.conf.lan0.route_localnet=1');
      ipCmd(['-n', ns.lan, 'addr', 'add', '10.78.0.2/24', 'dev', 'eth0']);
      ipCmd(['-n', ns.lan, 'link', 'set', 'eth0', 'up']);
      ipCmd(['-n', ns.lan, 'route', 'add', '10.77.0.0/16', 'via', '10.78.0.1']);
      // The attackers: send 127/8 to the host.
      for (const [attacker, gw] of [[ns.lan, '10.78.0.1'], [ns.c2, '10.77.0.1']] as const) {
        ipCmd(['-n', attacker, 'route', 'add', '127.0.0.0/8', 'via', gw]);
        sysctl(attacker, 'net.ipv4.conf.all.route_localnet=1', 'net.ipv4.conf.eth0.route_localnet=1');
      }

      nftLoad(H, buildRuleset(STATE));

      await Promise.all([
        startServer(ns.c1, ['tcp:0.0.0.0:80', 'udp:0.0.0.0:81'], servers),
        startServer(ns.c3, ['tcp:0.0.0.0:80'], servers),
        startServer(ns.c5, ['tcp:0.0.0.0:80'], servers),
        startServer(ns.lan, ['tcp:0.0.0.0:7000'], servers),
        // A host-only service, and one containers may use on their gateway.
        startServer(H, ['tcp:127.0.0.1:9000', 'tcp:0.0.0.0:9001'], servers),
      ]);
    });

    after(() => {
      for (const child of servers) if (child.exitCode === null) child.kill('SIGKILL');
      const errors = namespaces.map(deleteNamespace).filter((e) => e !== undefined);
      if (errors.length > 0) throw new AggregateError(errors, 'could not delete every test namespace');
    });

    const reaches = async (from: () => string, proto: 'tcp' | 'udp', host: string, p: number, peer: string) => {
      assert.deepEqual(await request(from(), proto, host, p), { ok: true, peer });
    };
    const dropped = async (from: () => string, proto: 'tcp' | 'udp', host: string, p: number) => {
      assert.deepEqual(await request(from(), proto, host, p), { ok: false, error: 'timeout' });
    };
    const refused = async (from: () => string, host: string, p: number) => {
      assert.deepEqual(await request(from(), 'tcp', host, p), { ok: false, error: 'ECONNREFUSED' });
    };

    test('a LAN peer reaches published ports and the container sees its real address', async () => {
      await Promise.all([
        reaches(() => ns.lan, 'tcp', '10.78.0.1', 8080, '10.78.0.2'),
        reaches(() => ns.lan, 'udp', '10.78.0.1', 5353, '10.78.0.2'),
        reaches(() => ns.lan, 'tcp', '10.78.0.1', 8082, '10.78.0.2'),
      ]);
    });

    test('a port bound to one host address is not published on the others', async () => {
      await refused(() => ns.lan, '10.77.0.1', 8082);
    });

    test('a LAN peer cannot reach container addresses directly', async () => {
      await dropped(() => ns.lan, 'tcp', '10.77.0.2', 80);
    });

    test('a 127.0.0.1-only port and the host loopback are unreachable from the LAN and from containers', async () => {
      await Promise.all([
        refused(() => ns.lan, '10.78.0.1', 8081),
        dropped(() => ns.lan, 'tcp', '127.0.0.1', 8081),
        dropped(() => ns.lan, 'tcp', '127.0.0.1', 9000),
        dropped(() => ns.c2, 'tcp', '127.0.0.1', 8081),
        dropped(() => ns.c2, 'tcp', '127.0.0.1', 9000),
      ]);
    });

    test('the host reaches published ports on 127.0.0.1 and on its own addresses', async () => {
      await Promise.all([
        reaches(() => ns.host, 'tcp', '127.0.0.1', 8081, '10.77.0.1'),
        reaches(() => ns.host, 'tcp', '127.0.0.1', 8080, '10.77.0.1'),
        reaches(() => ns.host, 'tcp', '10.78.0.1', 8080, '10.78.0.1'),
      ]);
    });

    test('hairpin: containers reach published ports via a host address, from the same and another network', async () => {
      await Promise.all([
        reaches(() => ns.c2, 'tcp', '10.78.0.1', 8080, '10.77.0.1'),
        // Masquerade takes the address of the bridge the packet leaves by.
        reaches(() => ns.c3, 'tcp', '10.78.0.1', 8080, '10.77.0.1'),
      ]);
    });

    test('hairpin: a container reaches its own published port via a host address', async () => {
      await reaches(() => ns.c1, 'tcp', '10.78.0.1', 8080, '10.77.0.1');
    });

    test('networks are isolated from each other', async () => {
      await Promise.all([
        dropped(() => ns.c3, 'tcp', '10.77.0.2', 80),
        reaches(() => ns.c2, 'tcp', '10.77.0.2', 80, '10.77.0.3'),
      ]);
    });

    test('icc=false isolates containers of a network, also through published ports, but not the gateway', async () => {
      await Promise.all([
        dropped(() => ns.c4, 'tcp', '10.77.1.2', 80),
        dropped(() => ns.c4, 'tcp', '10.78.0.1', 8083),
        dropped(() => ns.c3, 'tcp', '10.78.0.1', 8083),
        reaches(() => ns.c4, 'tcp', '10.77.1.1', 9001, '10.77.1.3'),
        reaches(() => ns.lan, 'tcp', '10.78.0.1', 8083, '10.78.0.2'),
      ]);
    });

    test('containers reach beyond the host masqueraded', async () => {
      await reaches(() => ns.c1, 'tcp', '10.78.0.2', 7000, '10.78.0.1');
    });

    test('an internal network cannot leave the host and gets no published ports', async () => {
      await Promise.all([
        dropped(() => ns.c5, 'tcp', '10.78.0.2', 7000),
        dropped(() => ns.lan, 'tcp', '10.78.0.1', 8090),
        dropped(() => ns.host, 'tcp', '127.0.0.1', 8090),
        reaches(() => ns.c5, 'tcp', '10.77.2.1', 9001, '10.77.2.2'),
      ]);
    });

    test("the user's chain judges published-port traffic and survives a reload", async () => {
      const H = ns.host;
      inNs(H, 'nft', ['add', 'rule', 'ip', TABLE, IP_CHAINS.userForward, 'ip', 'saddr', '10.78.0.2', 'meta', 'l4proto', 'tcp', 'ct', 'original', 'proto-dst', '8080', 'drop']);
      try {
        await dropped(() => ns.lan, 'tcp', '10.78.0.1', 8080);
        nftLoad(H, buildRuleset(STATE));
        await Promise.all([
          dropped(() => ns.lan, 'tcp', '10.78.0.1', 8080),
          reaches(() => ns.lan, 'tcp', '10.78.0.1', 8082, '10.78.0.2'),
          reaches(() => ns.c2, 'tcp', '10.78.0.1', 8080, '10.77.0.1'),
        ]);
      } finally {
        inNs(H, 'nft', ['flush', 'chain', 'ip', TABLE, IP_CHAINS.userForward]);
      }
      await reaches(() => ns.lan, 'tcp', '10.78.0.1', 8080, '10.78.0.2');
    });
  });
}
