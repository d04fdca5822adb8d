/**
 * §4 Data plane: iperf3 single TCP stream and a 1-byte TCP round trip over
 * - a bare veth pair between two namespaces (the limit),
 * - container → container on one berth network (the bridge),
 * - LAN peer → the host's published port → container (berth's DNAT),
 * - container → an "internet" namespace through berth's masquerade,
 * each also as a ratio to the limit. Servers run in the target namespace and are killed by PID.
 */
import type { BenchContext } from '../lib/context.js';
import { BerthHost } from '../lib/berth.js';
import { inNs } from '../lib/exec.js';
import { addPeer, vethPair } from '../lib/links.js';
import { runTool, startNodeServer, startServer } from '../lib/procs.js';
import { killChild, Scope } from '../lib/scope.js';
import { ratio } from '../lib/stats.js';

export interface PathResult {
  key: string;
  label: string;
  gbps?: number;
  retransmits?: number;
  rrP50us?: number;
  rrP95us?: number;
  gbpsRatio?: number;
  rrRatio?: number;
  error?: string;
}

export interface DataPlaneResult {
  seconds: number;
  paths: PathResult[];
}

const IPERF_PORT = 5201;
const ECHO_PORT = 7007;

interface PathSpec {
  key: string;
  label: string;
  serverNs: string;
  clientNs: string;
  /** Where the client connects for iperf3 and for the echo server. */
  target: string;
  iperfPort: number;
  echoPort: number;
}

async function iperf(scope: Scope, p: PathSpec, seconds: number): Promise<{ gbps: number; retransmits: number }> {
  const server = await startServer(scope, p.serverNs, 'iperf3', ['-s', '-1', '--forceflush', '-p', String(IPERF_PORT)], /Server listening/);
  try {
    const r = await inNs(p.clientNs, 'iperf3', ['-c', p.target, '-p', String(p.iperfPort), '-t', String(seconds), '-J'], { timeoutMs: (seconds + 20) * 1000 });
    const doc = JSON.parse(r.stdout || '{}') as { end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } }; error?: string };
    if (!doc.end?.sum_received) throw new Error(`iperf3 ${p.key}: ${doc.error ?? r.stderr.slice(0, 300)}`);
    return { gbps: Math.round(doc.end.sum_received.bits_per_second / 1e7) / 100, retransmits: doc.end.sum_sent?.retransmits ?? 0 };
  } finally {
    await killChild(server);
  }
}

async function roundTrip(scope: Scope, p: PathSpec, durationMs: number): Promise<{ p50us: number; p95us: number }> {
  const server = await startNodeServer(scope, p.serverNs, 'tcp-echo-server', ['--port', String(ECHO_PORT)]);
  try {
    const r = await runTool<{ count: number; p50us: number; p95us: number; error?: string }>(p.clientNs, 'tcp-rr', ['--host', p.target, '--port', String(p.echoPort), '--duration', String(durationMs)]);
    if (r.error || r.count === 0) throw new Error(`tcp-rr ${p.key}: ${r.error ?? 'no round trips'}`);
    return { p50us: r.p50us, p95us: r.p95us };
  } finally {
    await killChild(server);
  }
}

export async function dataPlane(ctx: BenchContext): Promise<DataPlaneResult> {
  const scope = new Scope('dataplane');
  const t0 = Date.now();
  try {
    const limit = await vethPair(scope, 'bb-dp-a', 'bb-dp-b', '10.253.0');
    const berth = await BerthHost.create(scope, 'bbd');
    await berth.createNetwork('bb-dp', '10.82.0.0/16');
    const lan = await addPeer(scope, berth.hostNsName, 'bb-lan-dp', '10.254.1');
    const inet = await addPeer(scope, berth.hostNsName, 'bb-inet-dp', '10.254.2');
    const a = await berth.setup({
      name: 'bb-dp-server',
      network: 'bb-dp',
      netOnly: true,
      ports: [
        { hostPort: 15201, containerPort: IPERF_PORT },
        { hostPort: 17007, containerPort: ECHO_PORT },
      ],
    });
    const b = await berth.setup({ name: 'bb-dp-client', network: 'bb-dp', netOnly: true });
    for (const id of [a.id, b.id]) await berth.adopt(id, berth.placeholderPid());
    const A = await berth.info(a.id);
    const B = await berth.info(b.id);

    const paths: PathSpec[] = [
      { key: 'limit', label: 'veth pair, namespace ↔ namespace (the limit)', serverNs: limit.a.nsPath, clientNs: limit.b.nsPath, target: limit.a.address, iperfPort: IPERF_PORT, echoPort: ECHO_PORT },
      { key: 'c2c', label: 'container → container (berth bridge)', serverNs: A.netns, clientNs: B.netns, target: A.ip, iperfPort: IPERF_PORT, echoPort: ECHO_PORT },
      { key: 'published', label: 'LAN peer → published port → container (berth DNAT)', serverNs: A.netns, clientNs: lan.nsPath, target: lan.hostAddress, iperfPort: 15201, echoPort: 17007 },
      { key: 'masquerade', label: 'container → "internet" namespace (berth masquerade)', serverNs: inet.nsPath, clientNs: B.netns, target: inet.address, iperfPort: IPERF_PORT, echoPort: ECHO_PORT },
    ];
    const seconds = ctx.quick ? 1 : 4;
    const rrMs = ctx.quick ? 500 : 2000;
    const results: PathResult[] = [];
    for (const p of paths) {
      const r: PathResult = { key: p.key, label: p.label };
      try {
        const t = await iperf(scope, p, seconds);
        r.gbps = t.gbps;
        r.retransmits = t.retransmits;
        const rr = await roundTrip(scope, p, rrMs);
        r.rrP50us = rr.p50us;
        r.rrP95us = rr.p95us;
      } catch (err) {
        r.error = (err as Error).message;
        ctx.log(`§4 ${p.key}: ${r.error}`);
      }
      results.push(r);
    }
    const lim = results.find((r) => r.key === 'limit');
    for (const r of results) {
      r.gbpsRatio = ratio(r.gbps, lim?.gbps);
      // Round trip: the limit's latency over this path's, so 1.0 means as fast as the limit.
      r.rrRatio = ratio(lim?.rrP50us, r.rrP50us);
    }
    return { seconds: Math.round((Date.now() - t0) / 100) / 10, paths: results };
  } finally {
    await scope.close();
  }
}
