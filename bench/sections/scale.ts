/**
 * §2 Scale, with §3 (published-port path) and the loaded half of §6 (daemon start-up with many
 * containers), which need the same crowded daemon:
 * - berth: network-only containers (start?detach=0), one published port each, on one /16, up to
 *   1,000; setup latency in windows around the 10th, 100th and last; nft rule and element counts,
 *   daemon RSS and processes in the host namespace at checkpoints. Beside it, the kernel floor's
 *   containers on a bridge of their own, each setup right after berth's; and, at the largest N,
 *   the RSS of a Node process with the daemon's threads and no berth code.
 * - TCP connections per second through a published port with 1 and with N other ports published,
 *   against container → container; and with 1 port over IPv6, on a dual-stack network of its own.
 * - daemon start-up with N containers.
 * - netavark and the CNI chain: the same loop up to 500 (or fewer when their time cap runs out).
 */
import * as fs from 'node:fs';
import type { BenchContext } from '../lib/context.js';
import { BerthHost } from '../lib/berth.js';
import { inNs } from '../lib/exec.js';
import { addPeer } from '../lib/links.js';
import { runTool, startNodeServer } from '../lib/procs.js';
import { countRules, type RuleCounts } from '../lib/ruleset.js';
import { Scope } from '../lib/scope.js';
import { round, summarize, windowOf, type Summary } from '../lib/stats.js';
import { CniChain, referenceChain } from '../peers/cni.js';
import { KernelFloor } from '../peers/kernel-floor.js';
import { Netavark } from '../peers/netavark.js';
import { connRate, publishedPortIpv6, publishedVsDirect, tuneClientNs, type ConnRate, type Ipv6ConnRuns } from './published-port.js';

export interface ScaleWindow {
  label: string;
  from: number;
  to: number;
  setup: Summary;
}

export interface Checkpoint extends RuleCounts {
  n: number;
  rssKb?: number;
  hostNsProcesses?: number;
}

export interface ScaleRun {
  key: string;
  label: string;
  target: number;
  reached: number;
  seconds: number;
  stoppedBecause?: string;
  windows: ScaleWindow[];
  checkpoints: Checkpoint[];
  error?: string;
}

export interface PublishedPortResult {
  otherPortsSmall: number;
  otherPortsLarge: number;
  /** small: 1 port; large: N ports, server = the bridge's oldest port; largeFresh: N ports, server made after them. */
  published: { small: ConnRate[]; large: ConnRate[]; largeFresh: ConnRate[] };
  direct: { small: ConnRate[]; large: ConnRate[]; largeFresh: ConnRate[] };
  hostNsProcesses: { small: number; large: number };
  /** With 1 port, over IPv6 (absent from results made before it existed). */
  ipv6?: Ipv6ConnRuns;
  /** What the bench saw when the published port stopped answering (undefined when it worked). */
  diagnostics?: Record<string, string>;
}

export interface ScaleResult {
  berth: ScaleRun;
  publishedPort?: PublishedPortResult;
  startupWithN?: { n: number; ms: Summary; rssKbAfter?: number };
  /** The kernel floor (one nftables element each) to the same N, its setups alternating with berth's. */
  floor?: ScaleRun;
  /** The same setups less making the namespace: what berth's starts with a namespace from its pool compare with. */
  floorAttach?: ScaleRun;
  /** The floor under the memory goal: tools/idle-isolates.ts, a Node process with the daemon's threads and no berth code. */
  idleIsolatesRssKb?: number;
  peers: ScaleRun[];
}

const SERVER_PORT = 7007;
const SERVER_HOST_PORT = 17007;

function windowsFor(samples: number[], target: number): ScaleWindow[] {
  const out: ScaleWindow[] = [];
  const add = (label: string, from: number, to: number) => {
    const w = windowOf(samples, from, to);
    if (w.length) out.push({ label, from, to: Math.min(to, samples.length), setup: summarize(w) });
  };
  add('~10th (6–15)', 6, 15);
  if (samples.length >= 110) add('~100th (91–110)', 91, 110);
  const n = samples.length;
  if (n > 110) add(`~${n === target ? `${n}th` : `${n}th (last reached)`} (${n - 19}–${n})`, n - 19, n);
  return out;
}

export async function scale(ctx: BenchContext): Promise<ScaleResult> {
  // First, while the kernel is not yet busy dropping the crowd's namespaces.
  ctx.log('§3 connections/s over IPv6 (dual-stack network, 1 published port)');
  const ipv6: Ipv6ConnRuns = await publishedPortIpv6(ctx).catch((err: Error) => ({ published: [], direct: [], error: err.message }));
  const perSecond = (runs: ConnRate[]) => runs.map((r) => r.perSecond).join(', ');
  ctx.log(ipv6.error ? `§3 IPv6 failed: ${ipv6.error}` : `§3 IPv6: published ${perSecond(ipv6.published)} conn/s, direct ${perSecond(ipv6.direct)} conn/s`);
  const scope = new Scope('scale');
  try {
    const berthPart = await berthScale(ctx, scope);
    if (berthPart.publishedPort) berthPart.publishedPort.ipv6 = ipv6;
    await scope.close();
    const peers: ScaleRun[] = [];
    for (const run of [netavarkScale, cniScale]) {
      const s = new Scope('scale-peer');
      try {
        peers.push(await run(ctx, s));
      } catch (err) {
        ctx.log(`§2 peer scale failed: ${(err as Error).message}`);
      } finally {
        await s.close();
      }
    }
    return { ...berthPart, peers };
  } finally {
    await scope.close();
  }
}

async function berthScale(ctx: BenchContext, scope: Scope): Promise<Omit<ScaleResult, 'peers'>> {
  const target = ctx.quick ? 120 : 1000;
  const berth = await BerthHost.create(scope, 'bbc');
  await berth.createNetwork('bb-scale', '10.96.0.0/16');
  const lan = await addPeer(scope, berth.hostNsName, 'bb-lan-sc', '10.254.1');
  await tuneClientNs(lan.nsPath);

  // The server and the client of §3 come first; the crowd comes after.
  const server = await berth.setup({ name: 'bb-srv', network: 'bb-scale', ports: [{ hostPort: SERVER_HOST_PORT, containerPort: SERVER_PORT }], netOnly: true });
  const serverInfo = await berth.info(server.id);
  const serverProc = await startNodeServer(scope, serverInfo.netns, 'tcp-echo-server', ['--port', String(SERVER_PORT)]);
  await berth.adopt(server.id, serverProc.pid!);
  const client = await berth.setup({ name: 'bb-cli', network: 'bb-scale', netOnly: true });
  const clientInfo = await berth.info(client.id);
  await berth.adopt(client.id, berth.placeholderPid());
  await tuneClientNs(clientInfo.netns);

  const measureConns = (serverIp: string, hostPort: number) =>
    publishedVsDirect(ctx, { ns: lan.nsPath, host: lan.hostAddress, port: hostPort }, { ns: clientInfo.netns, host: serverIp, port: SERVER_PORT });
  ctx.log('§3 connections/s with 1 published port');
  const small = await measureConns(serverInfo.ip, SERVER_HOST_PORT);
  const processesSmall = berth.processesInHostNs();

  ctx.log(`§2 berth: ${target} network-only containers with one published port each`);
  const samples: number[] = [];
  const checkpoints: Checkpoint[] = [];
  const checkpointAt = new Set([1, 10, 100, 500, target]);
  const placeholder = berth.placeholderPid();
  // The kernel floor's containers (namespace, veth, bridge port, address, route, one nftables
  // element: bench/peers/kernel-floor.ts, no daemon) grow to the same N on a bridge of their own,
  // each setup right after berth's, so the kernel's own growth is measured in the same conditions.
  const floor = new KernelFloor(scope, 'fsc', '10.74', true);
  await floor.init();
  const floorSamples: number[] = [];
  const floorAttach: number[] = [];
  let floorMs = 0;
  let floorError: string | undefined;
  const cap = ctx.quick ? 30_000 : Math.min(240_000, ctx.left() / 3);
  const t0 = Date.now();
  let stoppedBecause: string | undefined;
  let error: string | undefined;
  for (let i = 1; i <= target; i++) {
    if (Date.now() - t0 > cap) {
      stoppedBecause = `time cap of ${Math.round(cap / 1000)} s reached`;
      break;
    }
    try {
      const t = await berth.setup({ network: 'bb-scale', ports: [{ hostPort: 20000 + i, containerPort: 80 }], netOnly: true });
      samples.push(t.ms);
      await berth.adopt(t.id, placeholder);
    } catch (err) {
      error = (err as Error).message;
      stoppedBecause = `setup #${i} failed`;
      break;
    }
    if (checkpointAt.has(i)) {
      checkpoints.push({ n: i, rssKb: berth.rssKb(), hostNsProcesses: berth.processesInHostNs(), ...(await countRules(berth.hostNs)) });
    }
    if (floorError === undefined) {
      const f0 = Date.now();
      try {
        const r = await floor.setup(i);
        floorSamples.push(r.ms);
        floorAttach.push(r.ms - r.netnsMs);
      } catch (err) {
        floorError = (err as Error).message;
      }
      floorMs += Date.now() - f0;
    }
  }
  // berth's own time: the loop's, less the floor's setups between berth's.
  const seconds = round((Date.now() - t0 - floorMs) / 1000, 1);
  const reached = samples.length;
  ctx.log(`§2 berth reached ${reached} in ${seconds} s; the kernel floor ${floorSamples.length}`);
  await floor.close();
  const floorRun: ScaleRun = {
    key: 'floor',
    label: 'kernel floor + 1 nftables map element each (no daemon, no API), alternating with berth',
    target,
    reached: floorSamples.length,
    seconds: round(floorMs / 1000, 1),
    stoppedBecause: floorError ? `setup #${floorSamples.length + 1} failed` : stoppedBecause,
    error: floorError,
    windows: windowsFor(floorSamples, target),
    checkpoints: [],
  };
  // While the floor's setup runs, berth's pool makes its next namespace: berth's starts here take
  // one made ahead of time, so they compare with the floor's setups less making the namespace.
  const floorAttachRun: ScaleRun = {
    ...floorRun,
    key: 'floorAttach',
    label: 'the same kernel floor less making the namespace (berth\'s starts here take one from its pool)',
    windows: windowsFor(floorAttach, target),
  };
  // Measured now, beside the daemon at its largest: what Node alone takes laid out as the daemon is.
  const idleIsolates = await runTool<{ rssKb: number }>(berth.hostNs, 'idle-isolates', []);

  ctx.log(`§3 connections/s with ${reached + 1} published ports`);
  const large = await measureConns(serverInfo.ip, SERVER_HOST_PORT);
  const processesLarge = berth.processesInHostNs();
  let diagnostics = large.published.some((r) => r.count === 0) ? await diagnose(berth, serverInfo, SERVER_HOST_PORT, lan) : undefined;
  // The first server is the bridge's oldest port; a server made now is its newest: each of them
  // failed once at this scale (see diagnose()).
  const fresh = await berth.setup({ name: 'bb-srv-new', network: 'bb-scale', ports: [{ hostPort: SERVER_HOST_PORT + 1, containerPort: SERVER_PORT }], netOnly: true });
  const freshInfo = await berth.info(fresh.id);
  const freshProc = await startNodeServer(scope, freshInfo.netns, 'tcp-echo-server', ['--port', String(SERVER_PORT)]);
  await berth.adopt(fresh.id, freshProc.pid!);
  const largeFresh = await measureConns(freshInfo.ip, SERVER_HOST_PORT + 1);
  if (!diagnostics && largeFresh.published.some((r) => r.count === 0)) diagnostics = await diagnose(berth, freshInfo, SERVER_HOST_PORT + 1, lan);
  if (diagnostics) ctx.log(`§3 a published port stopped answering: ${JSON.stringify(diagnostics)}`);

  ctx.log(`§6 daemon start-up with ${reached + 2} containers`);
  const starts: number[] = [];
  for (let k = 0; k < (ctx.quick ? 1 : 3); k++) starts.push(await berth.restartTimed());
  const rssAfter = berth.rssKb();

  return {
    berth: {
      key: 'berth',
      label: 'berth API, start?detach=0, 1 port each',
      target,
      reached,
      seconds,
      stoppedBecause,
      error,
      windows: windowsFor(samples, target),
      checkpoints,
    },
    publishedPort: {
      otherPortsSmall: 0,
      otherPortsLarge: reached,
      published: { small: small.published, large: large.published, largeFresh: largeFresh.published },
      direct: { small: small.direct, large: large.direct, largeFresh: largeFresh.direct },
      hostNsProcesses: { small: processesSmall, large: processesLarge },
      diagnostics,
    },
    startupWithN: { n: reached + 2, ms: summarize(starts), rssKbAfter: rssAfter },
    floor: floorRun,
    floorAttach: floorAttachRun,
    idleIsolatesRssKb: idleIsolates.rssKb,
  };
}

/**
 * A published port that answers nothing (or only errors) with N ports, or over IPv6, is a defect,
 * not a slow figure: the section fails, so `--smoke` catches it. Undefined when every server answered.
 */
export function publishedPortFailure(pp: PublishedPortResult | undefined): string | undefined {
  if (!pp) return undefined;
  const n = pp.otherPortsLarge + 1;
  const dead = (runs: ConnRate[]) => runs.length > 0 && runs.every((r) => r.count === 0);
  const which = [dead(pp.published.large) && "the bridge's oldest container", dead(pp.published.largeFresh) && 'the newest container'].filter(Boolean);
  if (which.length) return `with ${n}+ ports published, the published port of ${which.join(' and ')} answered no connection (see §3 diagnostics)`;
  if (pp.ipv6?.error) return `§3 over IPv6 failed: ${pp.ipv6.error}`;
  if (pp.ipv6 && dead(pp.ipv6.published)) return 'the port published on a dual-stack network answered no connection over IPv6';
  return undefined;
}

/**
 * State worth reporting when the published path fails: the DNAT element, conntrack, the listener,
 * the neighbour entries on both sides, and the machine's softnet backlog drops during a retry.
 * (Seen at ~1,000 ports: an ARP broadcast is flooded by queueing one copy per bridge port on the
 * CPU's receive backlog, net.core.netdev_max_backlog = 1000 by default, a global sysctl the bench
 * must not change; the backlog is full when the unicast reply arrives behind the copies, and it is
 * dropped. A container that has to ARP for its gateway then never answers routed traffic. berth now
 * gives each container a permanent entry for its gateway, and the host one for each container.)
 */
async function diagnose(berth: BerthHost, server: { ip: string; netns: string }, hostPort: number, lan: { nsPath: string; hostAddress: string }): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const map = await inNs(berth.hostNs, 'nft', ['list', 'ruleset']);
  out.dnatElement = map.stdout.split('\n').filter((l) => l.includes(`${hostPort}`)).join(' | ').trim().slice(0, 300) || 'absent';
  out.hostConntrack = (await inNs(berth.hostNs, 'cat', ['/proc/sys/net/netfilter/nf_conntrack_count', '/proc/sys/net/netfilter/nf_conntrack_max'])).stdout.trim().replace(/\n/g, ' of ');
  out.serverListening = (await inNs(server.netns, 'ss', ['-Hltn', `sport = :${SERVER_PORT}`])).stdout.trim() || 'no listener';
  out.bridgePorts = (await inNs(berth.hostNs, 'sh', ['-c', 'bridge link show | wc -l'])).stdout.trim();
  const drops = () => fs.readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n').reduce((a, l) => a + parseInt(l.split(/\s+/)[1] ?? '0', 16), 0);
  const before = drops();
  out.retry = JSON.stringify(await connRate(lan.nsPath, lan.hostAddress, hostPort, 1000));
  out.softnetDropsDuringRetry = String(drops() - before);
  out.hostNeighbourOfServer = (await inNs(berth.hostNs, 'ip', ['neigh', 'show', server.ip])).stdout.trim() || 'none';
  out.serverNeighbours = (await inNs(server.netns, 'ip', ['-4', 'neigh', 'show'])).stdout.trim().replace(/\n/g, ' | ') || 'none';
  out.serverEth0 = (await inNs(server.netns, 'sh', ['-c', 'ip -s link show eth0 | tr -s " \\n" " "'])).stdout.trim().slice(0, 300);
  out.netdevMaxBacklog = fs.readFileSync('/proc/sys/net/core/netdev_max_backlog', 'utf8').trim();
  out.daemonWarnings = berth.sb.daemonLog.split('\n').filter((l) => /"level":"(warn|error)"/.test(l)).slice(-5).join(' | ').slice(0, 800);
  return out;
}

interface PeerLoop {
  createNetns(i: number): Promise<number>;
  setup(i: number): Promise<number>;
}

async function peerScale(ctx: BenchContext, key: string, label: string, hostNs: string, p: PeerLoop, capMs: number): Promise<ScaleRun> {
  const target = ctx.quick ? 20 : 500;
  const samples: number[] = [];
  const checkpoints: Checkpoint[] = [];
  const checkpointAt = new Set([1, 10, 100, 500, target]);
  const t0 = Date.now();
  let stoppedBecause: string | undefined;
  let error: string | undefined;
  for (let i = 1; i <= target; i++) {
    if (Date.now() - t0 > capMs) {
      stoppedBecause = `time cap of ${Math.round(capMs / 1000)} s reached`;
      break;
    }
    try {
      await p.createNetns(i);
      samples.push(await p.setup(i));
    } catch (err) {
      error = (err as Error).message;
      stoppedBecause = `setup #${i} failed`;
      break;
    }
    if (checkpointAt.has(i)) checkpoints.push({ n: i, ...(await countRules(hostNs)) });
  }
  const reached = samples.length;
  if (reached > 0 && !checkpointAt.has(reached)) checkpoints.push({ n: reached, ...(await countRules(hostNs)) });
  const seconds = round((Date.now() - t0) / 1000, 1);
  ctx.log(`§2 ${key} reached ${reached} in ${seconds} s`);
  return { key, label, target, reached, seconds, stoppedBecause, error, windows: windowsFor(samples, target), checkpoints };
}

function peerCap(ctx: BenchContext, fullMs: number): number {
  return ctx.quick ? 15_000 : Math.max(20_000, Math.min(fullMs, ctx.left() / 3));
}

async function netavarkScale(ctx: BenchContext, scope: Scope): Promise<ScaleRun> {
  const nv = new Netavark(scope, { tag: 'nv2', prefix2: '10.79', dns: true });
  await nv.init();
  return peerScale(ctx, 'netavark', 'netavark 1.4 + aardvark-dns, 1 port each', nv.hostNs, { createNetns: (i) => nv.createNetns(i), setup: (i) => nv.setup(i, 20000 + i) }, peerCap(ctx, 120_000));
}

async function cniScale(ctx: BenchContext, scope: Scope): Promise<ScaleRun> {
  const chain = new CniChain(scope, referenceChain('cni2', '10.76', scope.tempDir('cni2-ipam')));
  await chain.init();
  const hostNs = '/run/netns/bb-cni2-host';
  return peerScale(
    ctx,
    'cni',
    'CNI bridge + host-local + portmap + firewall, 1 port each',
    hostNs,
    { createNetns: (i) => chain.createNetns(i), setup: async (i) => (await chain.add(i, 20000 + i)).ms },
    peerCap(ctx, 200_000),
  );
}
