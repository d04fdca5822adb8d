/**
 * §3 The published-port path: TCP connections per second through a published port (a LAN-peer
 * namespace connecting to the host's address and port, DNAT to a server in a container) and,
 * for comparison, straight from another container on the same network. Each run is one bounded
 * client loop (sequential connect + 1-byte echo + close for a fixed time) started with nsenter.
 * The same comparison runs over IPv6 on a dual-stack network (publishedPortIpv6).
 */
import { BerthHost } from '../lib/berth.js';
import type { BenchContext } from '../lib/context.js';
import { inNsOk } from '../lib/exec.js';
import { addPeer } from '../lib/links.js';
import { runTool, startNodeServer } from '../lib/procs.js';
import { Scope } from '../lib/scope.js';

export interface ConnRate {
  count: number;
  errors: number;
  lastError?: string;
  seconds: number;
  perSecond: number;
  p50us: number;
  p95us: number;
}

/** Published and direct runs of one comparison, alternating. */
export interface ConnRuns {
  published: ConnRate[];
  direct: ConnRate[];
}

/** The IPv6 comparison; `error` when it could not run (the runs are then empty or partial). */
export interface Ipv6ConnRuns extends ConnRuns {
  error?: string;
}

export interface ConnTarget {
  ns: string;
  host: string;
  port: number;
}

/** Lets a client namespace reuse TIME_WAIT ports: thousands of short connections to one address. */
export async function tuneClientNs(nsPath: string): Promise<void> {
  await inNsOk(nsPath, 'sysctl', ['-q', '-w', 'net.ipv4.tcp_tw_reuse=1']);
  await inNsOk(nsPath, 'sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=10000 65000']);
}

export function connRate(clientNs: string, host: string, port: number, durationMs: number): Promise<ConnRate> {
  return runTool<ConnRate>(clientNs, 'tcp-connect-loop', ['--host', host, '--port', String(port), '--duration', String(durationMs), '--max', '200000'], durationMs + 30_000);
}

/**
 * Published and direct runs, alternating (ABBA: the order flips each pair), so both see the same
 * moments of this shared machine. Nine short pairs in a full run rather than three long ones:
 * single runs here differ by up to 30 %, and a median of three moved the ratio between 0.78× and
 * 1.04× from row to row, where twenty pairs gave 0.96× (IPv4) and 0.95× (IPv6).
 */
export async function publishedVsDirect(ctx: BenchContext, published: ConnTarget, direct: ConnTarget): Promise<ConnRuns> {
  const durationMs = 1000;
  const out: ConnRuns = { published: [], direct: [] };
  for (let k = 0; k < (ctx.quick ? 1 : 9); k++) {
    const runPublished = async () => out.published.push(await connRate(published.ns, published.host, published.port, durationMs));
    const runDirect = async () => out.direct.push(await connRate(direct.ns, direct.host, direct.port, durationMs));
    for (const run of k % 2 ? [runDirect, runPublished] : [runPublished, runDirect]) await run();
  }
  return out;
}

const SERVER_PORT = 7007;
const SERVER_HOST_PORT = 17007;

/**
 * §3 over IPv6: LAN peer → the host's IPv6 address and the port published on [::] → server,
 * against container → container over IPv6, on a dual-stack network with one published port. It
 * has a daemon of its own, so §2's crowd stays on an IPv4-only network as before.
 */
export async function publishedPortIpv6(ctx: BenchContext): Promise<ConnRuns> {
  const scope = new Scope('published6');
  try {
    const berth = await BerthHost.create(scope, 'bb6');
    await berth.createNetwork('bb-pp6', '10.97.0.0/16', { subnet6: 'fd97::/64' });
    const lan = await addPeer(scope, berth.hostNsName, 'bb-lan-pp6', '10.254.3', 'fd54:3::');
    await tuneClientNs(lan.nsPath);
    const server = await berth.setup({ name: 'bb-srv6', network: 'bb-pp6', ports: [{ hostPort: SERVER_HOST_PORT, containerPort: SERVER_PORT }], netOnly: true });
    const serverInfo = await berth.info(server.id);
    if (!serverInfo.ip6) throw new Error('the server on the dual-stack network has no IPv6 address');
    const serverProc = await startNodeServer(scope, serverInfo.netns, 'tcp-echo-server', ['--port', String(SERVER_PORT), '--host', '::']);
    await berth.adopt(server.id, serverProc.pid!);
    const client = await berth.setup({ name: 'bb-cli6', network: 'bb-pp6', netOnly: true });
    const clientInfo = await berth.info(client.id);
    await berth.adopt(client.id, berth.placeholderPid());
    await tuneClientNs(clientInfo.netns);
    return await publishedVsDirect(ctx, { ns: lan.nsPath, host: lan.hostAddress6!, port: SERVER_HOST_PORT }, { ns: clientInfo.netns, host: serverInfo.ip6, port: SERVER_PORT });
  } finally {
    await scope.close();
  }
}
