/**
 * §5 DNS: queries per second and latency for a container name and for a forwarded name, berth's
 * embedded resolver against aardvark-dns (spawned by netavark with DNS on). The forwarded names go
 * to a fake upstream resolver in a test namespace linked to each host namespace; neither resolver
 * ever sees the machine's real ones (berth gets --resolv-conf, aardvark a private /etc/resolv.conf).
 * Queries come from inside a container's namespace, the systems alternating: a sequential loop
 * (latency, tools/dns-load.ts) and dnsperf keeping 32 queries in flight (throughput), each bounded
 * in time. dnsperf is the throughput client because the client shares the machine's 2 cores with
 * the resolver: Node's dns-load costs 18-30 µs of CPU per query and so caps what it can measure,
 * dnsperf far less. dns-load's own 32-in-flight figure is still taken in the same rounds
 * (`throughputNode`), to compare the clients.
 */
import * as fs from 'node:fs';
import type { BenchContext } from '../lib/context.js';
import { BerthHost } from '../lib/berth.js';
import { dnsperfInput, runDnsperf } from '../lib/dnsperf.js';
import { addPeer } from '../lib/links.js';
import { DNS_FLOOR } from '../lib/paths.js';
import { runTool, startNodeServer, startServer } from '../lib/procs.js';
import { Scope } from '../lib/scope.js';
import { ratio } from '../lib/stats.js';
import { Netavark } from '../peers/netavark.js';

export interface DnsRun {
  sent: number;
  answered: number;
  failed: number;
  lost: number;
  firstFailure?: string;
  seconds: number;
  qps: number;
  p50us: number;
  p95us: number;
}

export interface DnsCase {
  system: 'berth' | 'aardvark';
  kind: 'container name' | 'forwarded name';
  latency: DnsRun[];
  /** dnsperf, WINDOW in flight. */
  throughput: DnsRun[];
  /** tools/dns-load.ts, WINDOW in flight: the client the throughput loop used before dnsperf. */
  throughputNode: DnsRun[];
}

export interface DnsResult {
  window: number;
  cases: DnsCase[];
  /** Which client the throughput loop used. */
  client: 'dnsperf';
  /** berth qps over aardvark qps (throughput loop, dnsperf), per kind. */
  qpsRatio: Record<string, number>;
  /** The same with dns-load as the client, from the same rounds. */
  qpsRatioNode: Record<string, number>;
  /** aardvark p50 over berth p50 (sequential loop), per kind: >1 means berth answers faster. */
  latencyRatio: Record<string, number>;
  /**
   * The floor: bench/tools/c/dns-floor.c (a canned answer, no lookup) in berth's host namespace,
   * asked by the same dnsperf from the same container over the same bridge, once per round.
   */
  floor?: { throughput: DnsRun[]; note?: string };
}

const FORWARDED = 'fwd.bench.test';
const FLOOR_PORT = 5353;
const WINDOW = 32;

/** Starts the DNS floor on `address`:FLOOR_PORT in `nsPath`; undefined once it listens, else why it is not measured. */
async function startDnsFloor(scope: Scope, nsPath: string, address: string): Promise<string | undefined> {
  if (!fs.existsSync(DNS_FLOOR)) return `not measured: ${DNS_FLOOR} was not built (scripts/bench.sh compiles it when a C compiler is installed)`;
  try {
    await startServer(scope, nsPath, DNS_FLOOR, [address, String(FLOOR_PORT), '900'], /"listening"/);
    return undefined;
  } catch (err) {
    return `not measured: ${(err as Error).message.slice(0, 200)}`;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

export async function dnsBench(ctx: BenchContext): Promise<DnsResult> {
  const scope = new Scope('dns');
  try {
    // berth: fake upstream on a peer of the sandbox host, named in the daemon's --resolv-conf.
    let upBerthNs = '';
    const berth = await BerthHost.create(scope, 'bbn', async (sb) => {
      const up = await addPeer(scope, sb.name, 'bb-up-dns', '10.254.3');
      upBerthNs = up.nsPath;
      await startNodeServer(scope, up.nsPath, 'fake-resolver', ['--address', up.address]);
      fs.writeFileSync(sb.resolvConf, `nameserver ${up.address}\n`);
    });
    if (!upBerthNs) throw new Error('no upstream namespace for berth');
    await berth.createNetwork('bb-dns', '10.83.0.0/16');
    const target = await berth.setup({ name: 'bb-dns-target', network: 'bb-dns', netOnly: true });
    const asker = await berth.setup({ name: 'bb-dns-client', network: 'bb-dns', netOnly: true });
    for (const id of [target.id, asker.id]) await berth.adopt(id, berth.placeholderPid());
    const berthClientNs = (await berth.info(asker.id)).netns;

    // aardvark: the same arrangement around netavark's host namespace.
    const nv = new Netavark(scope, { tag: 'nvd', prefix2: '10.84', dns: true, upstream: '10.254.13.2' });
    await nv.init();
    const upNv = await addPeer(scope, nv.hostNsName, 'bb-up-nvd', '10.254.13');
    await startNodeServer(scope, upNv.nsPath, 'fake-resolver', ['--address', upNv.address]);
    for (const i of [1, 2]) {
      await nv.createNetns(i);
      await nv.setup(i, 9000 + i);
    }

    // The floor listens on the gateway's address beside berth's resolver, on a port of its own
    // (berth redirects only port 53 to its resolver): the same bridge, veth and conntrack.
    const floorNote = await startDnsFloor(scope, berth.hostNs, '10.83.0.1');
    const floor: NonNullable<DnsResult['floor']> = { throughput: [], note: floorNote };
    const floorUp = floorNote === undefined;

    const systems = {
      berth: { clientNs: berthClientNs, server: '10.83.0.1', names: { 'container name': 'bb-dns-target', 'forwarded name': FORWARDED } },
      aardvark: { clientNs: nv.netnsPath(2), server: nv.gateway, names: { 'container name': nv.containerName(1), 'forwarded name': FORWARDED } },
    } as const;
    const cases: DnsCase[] = [];
    for (const system of ['berth', 'aardvark'] as const) {
      for (const kind of ['container name', 'forwarded name'] as const) cases.push({ system, kind, latency: [], throughput: [], throughputNode: [] });
    }
    const rounds = ctx.quick ? 1 : 3;
    const latMs = ctx.quick ? 500 : 1500;
    const qpsMs = ctx.quick ? 700 : 2000;
    const inputDir = scope.tempDir('dnsperf');
    const inputs = new Map(cases.map((c) => [c, dnsperfInput(inputDir, systems[c.system].names[c.kind])]));
    // Warm both resolvers up (JIT, caches, first forwards) before anything is recorded.
    for (const c of cases) {
      const s = systems[c.system];
      await runTool<DnsRun>(s.clientNs, 'dns-load', ['--server', s.server, '--name', s.names[c.kind], '--window', String(WINDOW), '--duration', '300']);
      await runDnsperf(s.clientNs, s.server, inputs.get(c)!, WINDOW, 300);
    }
    const floorInput = dnsperfInput(inputDir, systems.berth.names['container name']);
    if (floorUp) await runDnsperf(berthClientNs, '10.83.0.1', floorInput, WINDOW, 300, FLOOR_PORT);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? cases : [...cases].reverse();
      for (const c of order) {
        const s = systems[c.system];
        const args = (window: number, duration: number) => ['--server', s.server, '--name', s.names[c.kind], '--window', String(window), '--duration', String(duration)];
        c.latency.push(await runTool<DnsRun>(s.clientNs, 'dns-load', args(1, latMs)));
        c.throughput.push(await runDnsperf(s.clientNs, s.server, inputs.get(c)!, WINDOW, qpsMs));
        c.throughputNode.push(await runTool<DnsRun>(s.clientNs, 'dns-load', args(WINDOW, qpsMs)));
      }
      if (floorUp) floor.throughput.push(await runDnsperf(berthClientNs, '10.83.0.1', floorInput, WINDOW, qpsMs, FLOOR_PORT));
    }
    const pick = (system: string, kind: string) => cases.find((c) => c.system === system && c.kind === kind)!;
    const qpsRatio: Record<string, number> = {};
    const qpsRatioNode: Record<string, number> = {};
    const latencyRatio: Record<string, number> = {};
    for (const kind of ['container name', 'forwarded name']) {
      const b = pick('berth', kind);
      const a = pick('aardvark', kind);
      qpsRatio[kind] = ratio(median(b.throughput.map((x) => x.qps)), median(a.throughput.map((x) => x.qps)));
      qpsRatioNode[kind] = ratio(median(b.throughputNode.map((x) => x.qps)), median(a.throughputNode.map((x) => x.qps)));
      latencyRatio[kind] = ratio(median(a.latency.map((x) => x.p50us)), median(b.latency.map((x) => x.p50us)));
    }
    return { window: WINDOW, client: 'dnsperf', cases, qpsRatio, qpsRatioNode, latencyRatio, floor };
  } finally {
    await scope.close();
  }
}

