/**
 * BENCHMARKS.md from a results object: the goals with met / not met and the figure, then one
 * table per section (medians, p95, ratios), the profile, and the hand-written analysis
 * (bench/analysis.md) of the run it was written for.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from './lib/paths.js';
import { ratio, type Summary } from './lib/stats.js';
import type { BenchResults } from './results.js';
import type { SystemResult } from './lib/round-robin.js';
import type { ConnRate } from './sections/published-port.js';
import type { ScaleRun } from './sections/scale.js';

export interface Goal {
  goal: string;
  figure: string;
  met: boolean | undefined;
}

const f = (x: number | undefined, digits = 2): string => (x === undefined || !Number.isFinite(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(digits));
const ms = (s: Summary | undefined) => (s ? `${f(s.p50)} / ${f(s.p95)}` : '–');
const x = (r: number | undefined) => (r === undefined || !Number.isFinite(r) ? '–' : `${r.toFixed(2)}×`);
const verdict = (m: boolean | undefined) => (m === undefined ? 'not measured' : m ? '**met**' : '**not met**');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};
const rate = (runs: ConnRate[] | undefined) => median((runs ?? []).map((r) => r.perSecond));
/** An error message fit for a table cell. */
const oneLine = (err: string) => err.split('\n')[0]!.replace(/[|`]/g, "'").slice(0, 200);

function sys(r: BenchResults, key: string): SystemResult | undefined {
  return r.setup?.systems.find((s) => s.key === key);
}

function macvlanSys(r: BenchResults, key: string): SystemResult | undefined {
  return r.macvlan?.systems.find((s) => s.key === key);
}

/** The last window's setup p50 over the first's (NaN with fewer than two windows). */
function windowGrowth(run: ScaleRun): number {
  const first = run.windows[0];
  const last = run.windows[run.windows.length - 1];
  return first && last && last !== first ? ratio(last.setup.p50, first.setup.p50) : NaN;
}

export function goals(r: BenchResults): Goal[] {
  const out: Goal[] = [];
  const net = sys(r, 'berthNet');
  const proc = sys(r, 'berth');
  const floor = sys(r, 'floor');
  const nv = sys(r, 'netavark');
  const cni = sys(r, 'cni');
  const p50 = (s: SystemResult | undefined) => s?.setup?.p50;
  const t50 = (s: SystemResult | undefined) => s?.teardown?.p50;
  const le = (a: number | undefined, b: number) => (a === undefined || !Number.isFinite(a) ? undefined : a <= b);
  const ge = (a: number | undefined, b: number) => (a === undefined || !Number.isFinite(a) ? undefined : a >= b);

  out.push({ goal: 'setup p50 ≤ 3 ms through the API (network only, start?detach=0)', figure: `${f(p50(net))} ms`, met: le(p50(net), 3) });
  out.push({ goal: 'setup p50 ≤ 3 ms through the API (create + start spawning the process)', figure: `${f(p50(proc))} ms`, met: le(p50(proc), 3) });
  const vsFloor = ratio(p50(net), p50(floor));
  out.push({ goal: 'setup p50 ≤ 1.5× the kernel floor', figure: `${x(vsFloor)} (${f(p50(net))} vs ${f(p50(floor))} ms)`, met: le(vsFloor, 1.5) });
  // The floor makes its namespace in the timed setup; by default berth's start takes one made ahead of time.
  const noPool = sys(r, 'berthNetNoPool');
  const vsFloorNoPool = ratio(p50(noPool), p50(floor));
  out.push({ goal: 'the same without namespaces made ahead of time (--netns-pool 0), like for like with the floor', figure: `${x(vsFloorNoPool)} (${f(p50(noPool))} vs ${f(p50(floor))} ms)`, met: le(vsFloorNoPool, 1.5) });
  const vsNv = ratio(p50(nv), p50(net));
  const vsCni = ratio(p50(cni), p50(net));
  out.push({ goal: '≥ 15× faster than netavark (setup p50)', figure: `${x(vsNv)} (${f(p50(nv))} vs ${f(p50(net))} ms)`, met: ge(vsNv, 15) });
  out.push({ goal: '≥ 15× faster than the CNI chain (setup p50)', figure: `${x(vsCni)} (${f(p50(cni))} vs ${f(p50(net))} ms)`, met: ge(vsCni, 15) });
  const vsNvDown = ratio(t50(nv), t50(net));
  const vsCniDown = ratio(t50(cni), t50(net));
  out.push({ goal: '≥ 15× faster than netavark and CNI (teardown p50)', figure: `${x(vsNvDown)} vs netavark, ${x(vsCniDown)} vs CNI`, met: vsNvDown >= 15 && vsCniDown >= 15 ? true : Number.isFinite(vsNvDown) ? false : undefined });
  const net6 = sys(r, 'berthNet6');
  const dualCost = ratio(p50(net6), p50(net));
  out.push({ goal: 'dual-stack setup ≤ 1.2× IPv4-only (network only, one published port)', figure: `${x(dualCost)} (${f(p50(net6))} vs ${f(p50(net))} ms)`, met: le(dualCost, 1.2) });
  // Beside what a bare Node server behind the same socket costs the same client for the same request.
  const http = sys(r, 'httpFloor');
  const httpNote = http?.teardown ? ` (HTTP floor ${f(t50(http))})` : '';
  out.push({ goal: 'teardown ≤ 1 ms as the caller sees it (network only)', figure: `${f(t50(net))} ms p50${httpNote}`, met: le(t50(net), 1) });
  out.push({ goal: 'teardown ≤ 1 ms as the caller sees it (rm -f with a process)', figure: `${f(t50(proc))} ms p50${httpNote}`, met: le(t50(proc), 1) });
  const viaCni = sys(r, 'berthCni');
  out.push({ goal: 'CNI ADD ≤ 15 ms end to end (dist/bin/berth-cni exec\'d → daemon → result)', figure: viaCni?.setup ? `${f(p50(viaCni))} ms p50 (DEL ${f(t50(viaCni))})` : '–', met: le(p50(viaCni), 15) });

  const b = r.scale?.berth;
  if (b) {
    const first = b.windows[0];
    const last = b.windows[b.windows.length - 1];
    const growth = windowGrowth(b);
    // Beside the kernel floor's own growth over the same N (its bridge, sysctls and namespaces).
    const floorGrowth = r.scale?.floor?.reached === b.target ? windowGrowth(r.scale.floor) : NaN;
    const attachGrowth = r.scale?.floorAttach?.reached === b.target ? windowGrowth(r.scale.floorAttach) : NaN;
    out.push({
      goal: `the ${b.target}th container's setup ≤ 1.2× the 10th`,
      figure: `${x(growth)} (${f(last?.setup.p50)} ms at ${last?.label ?? '–'} vs ${f(first?.setup.p50)} ms at ~10th; reached ${b.reached}${Number.isFinite(floorGrowth) ? `; the kernel floor ${x(floorGrowth)}, ${x(attachGrowth)} less making the namespace` : ''})`,
      met: b.reached < b.target ? false : le(growth, 1.2),
    });
  } else out.push({ goal: "the 1,000th container's setup ≤ 1.2× the 10th", figure: '–', met: undefined });
  const atTarget = b?.checkpoints.find((c) => c.n === b.target);
  out.push({
    goal: `daemon memory ≤ 80 MB RSS at ${b?.target ?? 1000} containers (one published port each)`,
    figure: atTarget?.rssKb
      ? `${f(atTarget.rssKb / 1024, 1)} MB (${f((b!.checkpoints[0]?.rssKb ?? NaN) / 1024, 1)} MB at ${b!.checkpoints[0]?.n ?? '–'}${r.scale?.idleIsolatesRssKb ? `; Node with the daemon's three threads and no berth code: ${f(r.scale.idleIsolatesRssKb / 1024, 1)} MB` : ''})`
      : '–',
    met: atTarget?.rssKb ? atTarget.rssKb / 1024 <= 80 : undefined,
  });

  const pp = r.scale?.publishedPort;
  if (pp) {
    const extra = pp.hostNsProcesses.large - pp.hostNsProcesses.small;
    out.push({
      goal: 'zero extra processes per published port',
      figure: `${pp.hostNsProcesses.small} processes in the host namespace with 1 port, ${pp.hostNsProcesses.large} with ${pp.otherPortsLarge + 1}`,
      met: extra <= 0,
    });
  }
  const dp = r.dataPlane?.paths;
  const pub = dp?.find((p) => p.key === 'published');
  const c2c = dp?.find((p) => p.key === 'c2c');
  const tp = ratio(pub?.gbps, c2c?.gbps);
  out.push({ goal: 'published-port throughput ≥ 0.95 of container↔container (iperf3)', figure: `${x(tp)} (${f(pub?.gbps)} vs ${f(c2c?.gbps)} Gbit/s)`, met: ge(tp, 0.95) });
  if (pp) {
    const cr = ratio(rate(pp.published.small), rate(pp.direct.small));
    out.push({ goal: 'published-port connections/s ≥ 0.95 of container↔container (same goal, per connection)', figure: `${x(cr)} (${f(rate(pp.published.small))} vs ${f(rate(pp.direct.small))} conn/s)`, met: ge(cr, 0.95) });
    // With ~1,000 ports, both the bridge's oldest and its newest port: each failed once at this scale.
    const n = pp.otherPortsLarge + 1;
    const oldest = ratio(rate(pp.published.large), rate(pp.direct.large));
    const newest = ratio(rate(pp.published.largeFresh), rate(pp.direct.largeFresh));
    out.push({
      goal: `published-port connections/s ≥ 0.9 of container↔container with ${n}+ ports published (oldest and newest server)`,
      figure: `oldest ${x(oldest)} (${f(rate(pp.published.large))} vs ${f(rate(pp.direct.large))}), newest ${x(newest)} (${f(rate(pp.published.largeFresh))} vs ${f(rate(pp.direct.largeFresh))} conn/s)`,
      met: ge(Math.min(oldest, newest), 0.9),
    });
  }
  const v6 = pp?.ipv6;
  const cr6 = ratio(rate(v6?.published), rate(v6?.direct));
  out.push({
    goal: 'IPv6 published-port connections/s ≥ 0.9 of IPv6 container↔container (dual-stack network, 1 port)',
    figure: v6?.error ? `failed: ${oneLine(v6.error)}` : `${x(cr6)} (${f(rate(v6?.published))} vs ${f(rate(v6?.direct))} conn/s)`,
    met: v6?.error ? false : ge(cr6, 0.9),
  });
  // The floor's qps over aardvark's: the most any resolver could show here beside the same client.
  const aardvarkNames = r.dns?.cases.find((c) => c.system === 'aardvark' && c.kind === 'container name');
  const floorRuns = r.dns?.floor?.throughput ?? [];
  const floorOverAardvark = floorRuns.length && aardvarkNames ? ratio(median(floorRuns.map((x1) => x1.qps)), median(aardvarkNames.throughput.map((x1) => x1.qps))) : NaN;
  for (const kind of ['container name', 'forwarded name']) {
    const q = r.dns?.qpsRatio[kind];
    const floorNote = kind === 'container name' && Number.isFinite(floorOverAardvark) ? ` (a canned-answer C responder on the same path: ${x(floorOverAardvark)})` : '';
    out.push({ goal: `DNS ≥ 2× aardvark-dns qps (${kind})`, figure: `${x(q)}${floorNote}`, met: ge(q, 2) });
  }

  const mv = macvlanSys(r, 'berth');
  const mvNv = macvlanSys(r, 'netavark');
  const mvCni = macvlanSys(r, 'cni');
  const mvRatios = [ratio(p50(mvNv), p50(mv)), ratio(p50(mvCni), p50(mv)), ratio(t50(mvNv), t50(mv)), ratio(t50(mvCni), t50(mv))];
  const [mvNvUp, mvCniUp, mvNvDown, mvCniDown] = mvRatios;
  out.push({
    goal: "macvlan setup and teardown ≥ 10× faster than netavark's macvlan driver and the CNI macvlan plugin (p50)",
    figure: `setup ${x(mvNvUp)} vs netavark, ${x(mvCniUp)} vs CNI; teardown ${x(mvNvDown)} vs netavark, ${x(mvCniDown)} vs CNI (berth ${f(p50(mv))} / ${f(t50(mv))} ms)`,
    met: mvRatios.some((q) => Number.isFinite(q) && q < 10) ? false : mvRatios.every(Number.isFinite) ? true : undefined,
  });
  const ov = r.overlay;
  const conv = ov?.convergence.find((c) => c.client === 'fresh' && c.trigger === 'return');
  const c50 = conv?.summary.pingMs;
  out.push({
    goal: "overlay convergence p50 ≤ 5 ms (A's run returns → first ping reply in B's container; anchor 15.7 ms for an agent shelling out to ip)",
    figure: c50 ? `${f(c50.p50)} ms p50, ${f(c50.p95)} p95 (${c50.n} samples${conv!.failures ? `, ${conv!.failures} failed` : ''})` : '–',
    met: conv && conv.failures > 0 ? false : le(c50?.p50, 5),
  });
  const fromAnnounce = ov?.convergence.find((c) => c.client === 'fresh' && c.trigger === 'announce');
  const a50 = fromAnnounce?.summary.pingMs;
  out.push({
    goal: "the same from the announcement reaching an etcd watcher → first ping reply in B's container (nearest to the anchor's put → ping; leaves out etcd's put → watch delivery)",
    figure: a50 ? `${f(a50.p50)} ms p50, ${f(a50.p95)} p95 (${a50.n} samples${fromAnnounce!.failures ? `, ${fromAnnounce!.failures} failed` : ''})` : '–',
    met: fromAnnounce && fromAnnounce.failures > 0 ? false : le(a50?.p50, 5),
  });
  const tput = ov?.throughput;
  const tp50 = (k: string) => tput?.paths.find((p) => p.key === k)?.median;
  out.push({ goal: 'VXLAN overlay throughput ≥ 0.9 of the bare underlay (iperf3, one TCP stream)', figure: `${x(tput?.ratio)} (${f(tp50('overlay'))} vs ${f(tp50('underlay'))} Gbit/s)`, met: ge(tput?.ratio, 0.9) });
  return out;
}

function setupTable(r: BenchResults): string[] {
  const s = r.setup;
  if (!s) return ['Not run.'];
  const net = sys(r, 'berthNet');
  const lines = [
    `${s.rounds} recorded rounds after ${s.warmup} warm-up rounds; each round runs every system once (setup, then teardown), the order rotating by one each round.`,
    '',
    '| system | setup p50 / p95 ms | teardown p50 / p95 ms | setup ÷ berth (network only) | teardown ÷ berth (network only) | setup ÷ kernel floor |',
    '|---|---|---|---|---|---|',
  ];
  const floor = sys(r, 'floor');
  for (const x1 of s.systems) {
    if (!x1.setup) {
      lines.push(`| ${x1.label} | ${x1.note ?? x1.error ?? '–'} | | | | |`);
      continue;
    }
    lines.push(
      `| ${x1.label} | ${ms(x1.setup)} | ${ms(x1.teardown)} | ${x(ratio(x1.setup.p50, net?.setup?.p50))} | ${x(ratio(x1.teardown?.p50, net?.teardown?.p50))} | ${x(ratio(x1.setup.p50, floor?.setup?.p50))} |`,
    );
  }
  if (!s.systems.some((x1) => x1.key === 'berthCni')) lines.push('| berth via CNI | not yet measured (plugin not built) | | | | |');
  const errs = s.systems.filter((x1) => x1.error);
  if (errs.length) lines.push('', ...errs.map((e) => `- ${e.key} stopped with an error: \`${e.error}\``));
  lines.push(...partsLines(s.systems), ...daemonSideLines(s.daemonSide));
  if (s.netnsPool) {
    const { hits, misses } = s.netnsPool;
    lines.push('', `The berth daemon's starts (its three systems, warm-up included) took a namespace made ahead of time in ${hits} of ${hits + misses} (berth_netns_pool_takes_total); the \`--netns-pool 0\` row is a second daemon whose starts make their own, as the floor does.`);
  }
  return lines;
}

function partsLines(systems: SystemResult[]): string[] {
  const lines = ['', 'Phases and parts (p50 / p95 ms):', '', '| system | part | p50 / p95 ms |', '|---|---|---|'];
  for (const x1 of systems) for (const [k, v] of Object.entries(x1.extra)) lines.push(`| ${x1.key} | ${k} | ${ms(v)} |`);
  return lines;
}

function daemonSideLines(daemonSide: Record<string, Summary>): string[] {
  if (!Object.keys(daemonSide).length) return [];
  const lines = ['', "The daemon's own time for the same berth operations (its per-operation log), p50 / p95 ms:", '', '| operation | daemon-side p50 / p95 ms |', '|---|---|'];
  for (const [k, v] of Object.entries(daemonSide)) lines.push(`| ${k} | ${ms(v)} |`);
  return lines;
}

function macvlanTable(r: BenchResults): string[] {
  const m = r.macvlan;
  if (!m) return ['Not run.'];
  const base = macvlanSys(r, 'berth');
  const lines = [
    `${m.rounds} recorded rounds after ${m.warmup} warm-up rounds, interleaved as in §1. Each system runs in a sandbox host namespace of its own whose NIC (a veth pair inside it, both ends up, the host's own address .2) is the parent of a macvlan network (mode bridge) on ${m.subnet}, gateway .1; no published port; berth's figures include the resolver it opens inside each container (the peers have no DNS on macvlan). Each keeps one anchor container on the parent throughout.`,
    '',
    '| system | setup p50 / p95 ms | teardown p50 / p95 ms | setup ÷ berth | teardown ÷ berth |',
    '|---|---|---|---|---|',
  ];
  for (const x1 of m.systems) {
    if (!x1.setup) {
      lines.push(`| ${x1.label} | ${x1.note ?? x1.error ?? '–'} | | | |`);
      continue;
    }
    lines.push(`| ${x1.label} | ${ms(x1.setup)} | ${ms(x1.teardown)} | ${x(ratio(x1.setup.p50, base?.setup?.p50))} | ${x(ratio(x1.teardown?.p50, base?.teardown?.p50))} |`);
  }
  const errs = m.systems.filter((x1) => x1.error);
  if (errs.length) lines.push('', ...errs.map((e) => `- ${e.key} stopped with an error: \`${e.error}\``));
  lines.push(
    '',
    "berth's network reserves the host's own address on the parent, so no container is handed it; the peers hand out addresses from .10 (netavark's static IPs, host-local's rangeStart). The peers' container namespaces are made before the timed setup, as in §1 (`netnsAddMs`).",
    ...partsLines(m.systems),
    ...daemonSideLines(m.daemonSide),
  );
  return lines;
}

function hostSubnetsTable(r: BenchResults): string[] {
  const hs = r.hostSubnets;
  if (!hs) return ['Not run.'];
  const lines = [
    `For each backend, ${hs.hosts} simulated hosts on an underlay bridge (one etcd member, daemons started with \`--cluster-cidr\` and \`--backend\`), containers on each host's default bridge (its leased /24). Round trip: ${hs.rounds} rounds of ${hs.pingsPerRound} echoes 20 ms apart, container on host 0 → container on host 1, alternating with host 0 → host 1 on the bare underlay (per-packet times). Throughput: iperf3, one TCP stream for ${hs.iperfSeconds} s, container → container across the hosts, alternating with host → host. Convergence: a host joins while a container on host 0 pings its bridge gateway every 10 ms; from its lease appearing in etcd to the first reply (hosts 1 and 2 join in turn: two samples). The fan row: two hosts with no etcd, \`-d fan -o underlay=192.168.0.0/16 -o overlay=250.0.0.0/8\` on each; its convergence has no lease: from \`berth run\` returning on host 1 to the first reply to a container on host 0 pinging the new container every 10 ms (one sample per new container).`,
    '',
    '| backend | container MTU | RTT p50 / p95 ms (container ↔ container) | underlay RTT p50 ms | RTT ÷ underlay | throughput Gbit/s (median) | underlay Gbit/s | throughput ÷ underlay | convergence ms (each sample) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const b of hs.backends) {
    lines.push(
      `| ${b.backend} | ${b.mtu ?? '–'} | ${f(b.rttMs.container.p50)} / ${f(b.rttMs.container.p95)} | ${f(b.rttMs.underlay.p50)} | ${x(b.rttMs.ratio)} | ${f(b.throughput.containerMedian)} | ${f(b.throughput.underlayMedian)} | ${x(b.throughput.ratio)} | ${b.firstPacketMs.length ? b.firstPacketMs.map((m) => f(m)).join(', ') : '–'} |`,
    );
  }
  const errors = hs.backends.flatMap((b) => b.errors.map((e) => `${b.backend}: ${e}`));
  if (errors.length) lines.push('', `Errors: ${errors.map((e) => `\`${oneLine(e)}\``).join('; ')}`);
  return lines;
}

function routedTable(r: BenchResults): string[] {
  const rt = r.routed;
  if (!rt) return ['Not run.'];
  const lines = [
    'Two simulated hosts (one etcd member, daemons with `--bgp-asn 64512 --bgp-peer 192.168.90.1:65000`) and a router namespace on the underlay running its own BIRD (AS 65000). Setup: create + start through the API (detached), a routed network\'s container alternating with a bridge network\'s on the same host. Convergence: a fresh routed network\'s first container on host 1 (which claims a block there); from the API call returning to the router\'s `birdc show route` listing the block (polled every 5 ms). Throughput: iperf3, one TCP stream, container → container across the hosts (routed, no encapsulation), alternating with host → host on the bare underlay.',
    '',
    '| figure | routed | beside it | ratio |',
    '|---|---|---|---|',
    `| setup p50 / p95 ms (API, detached) | ${f(rt.setupMs.routed.p50)} / ${f(rt.setupMs.routed.p95)} | bridge ${f(rt.setupMs.bridge.p50)} / ${f(rt.setupMs.bridge.p95)} | ${x(rt.setupMs.ratio)} |`,
    `| throughput Gbit/s (median) | ${f(rt.throughput.routedMedian)} | underlay ${f(rt.throughput.underlayMedian)} | ${x(rt.throughput.ratio)} |`,
    `| route convergence ms (run → router has the block; each sample) | ${rt.convergenceMs.length ? rt.convergenceMs.map((m) => f(m)).join(', ') : '–'} | | |`,
  ];
  if (rt.errors.length) lines.push('', `Errors: ${rt.errors.map((e) => `\`${oneLine(e)}\``).join('; ')}`);
  return lines;
}

function overlayTable(r: BenchResults): string[] {
  const o = r.overlay;
  if (!o) return ['Not run.'];
  const runs = o.convergence;
  const head = (c: (typeof runs)[number]) => `${c.client === 'fresh' ? 'fresh client' : 'kernel-ARP client'}, from ${c.trigger === 'return' ? "A's run returning" : 'the announcement'}`;
  const lines = [
    `${o.hosts} sandbox hosts on one underlay bridge (eth0 MTU 1500; containers get ${o.mtu ?? '–'}), a ${o.etcdMembers}-member etcd in the hosts' namespaces, a daemon per host with \`--cluster-store\`. A container is started on host A (create + start through A's API, as \`berth run -d\`, with its address given so the prober knows it at once). A prober already running in a container on host B starts either the moment A's call returns, or the moment the announcement reaches a watcher (\`etcdctl watch\` in host C, read by the bench); the first echo reply ends the sample. Each sample uses a fresh address and MAC; samples rotate through the four probers; ${o.warmup} warm-up round(s) dropped. All timestamps are CLOCK_MONOTONIC, taken in the bench, the prober and a netlink listener in B's host namespace.`,
    '',
    '### Convergence, ms (p50 / p95)',
    '',
    `| figure | ${runs.map(head).join(' | ')} |`,
    `|---|${runs.map(() => '---|').join('')}`,
  ];
  const row = (label: string, key: string) => `| ${label} | ${runs.map((c) => ms(c.summary[key])).join(' | ')} |`;
  lines.push(
    row("A: create + start through the API (the caller's `berth run`)", 'runMs'),
    row('A: daemon-side `container run` (its log)', 'daemonRunMs'),
    row("announcement reaches the watcher, from A's run returning (negative: before)", 'watchMs'),
    row("B's kernel has all three entries, from A's run returning (netlink listener)", 'programmedMs'),
    row("B's agent: announcement at the watcher → B's kernel has the entries", 'agentMs'),
    row("prober's first attempt, from its trigger", 'wakeMs'),
    row("B's ARP proxy answers the prober's own ARP request, from its trigger", 'arpMs'),
    `| **first echo reply in B's container, from the prober's trigger** | ${runs.map((c) => `**${ms(c.summary.pingMs)}**`).join(' | ')} |`,
    `| first echo reply, the slowest sample | ${runs.map((c) => f(c.summary.pingMs?.max)).join(' | ')} |`,
    row("first echo reply, from A's run starting", 'fromStartMs'),
    `| samples (failed) | ${runs.map((c) => `${c.summary.pingMs?.n ?? 0}${c.failures ? ` (${c.failures})` : ''}`).join(' | ')} |`,
    `| B had the entries before A's run returned | ${runs.map((c) => `${c.programmedBeforeReturn} of ${c.summary.pingMs?.n ?? 0}`).join(' | ')} |`,
    '',
    "Fresh client: the prober does its own ARP from user space (a request every 1 ms on a packet socket, so it never waits on the kernel's 1 s ARP retransmit timer), then sends ICMP echo requests through the kernel every 2 ms until one is answered: the earliest moment a client starting then could reach the endpoint, ±1 ms. Kernel-ARP client: echo requests every 1 ms from the first instant, ARP left to the kernel, as an ordinary program does; if its first ARP goes out before B has the neighbour entry, the answer waits for the interface's ARP retransmit (berth sets 100 ms on overlay interfaces; the kernel's default is 1 s). The goal's figure is the fresh client's, from A's run returning.",
    '',
    '### Throughput',
    '',
    `iperf3, one TCP stream, ${o.throughput.seconds} s, ${o.throughput.runs} run(s) per path, the order rotating; servers bound to the target address in its namespace. All hosts share the same 2 cores, so this is CPU cost on one kernel, not a NIC's line rate.`,
    '',
    '| path | Gbit/s median | runs | retransmits | ÷ underlay |',
    '|---|---|---|---|---|',
  );
  const under = o.throughput.paths.find((p) => p.key === 'underlay')?.median;
  for (const p of o.throughput.paths) {
    lines.push(`| ${p.label} | ${f(p.median)} | ${p.gbps.join(', ') || '–'} | ${p.retransmits.join(', ') || '–'} | ${x(ratio(p.median, under))} |${p.errors.length ? ` ${p.errors[0]}` : ''}`);
  }
  lines.push('');
  if (o.encrypted.available) {
    const med = (k: string) => o.throughput.paths.find((p) => p.key === k)?.median;
    lines.push(`Encrypted overlay (\`-o encrypted\`, container MTU ${o.encrypted.mtu ?? '–'}): ${x(o.throughput.encryptedRatio)} of the plain overlay, ${x(ratio(med('encrypted'), med('tunnel')))} of the WireGuard tunnel alone.`);
  } else {
    lines.push(`**Encrypted overlay: not measured in this run.** \`berth network create -d overlay -o encrypted\` on this build: ${o.encrypted.reason ? `\`${o.encrypted.reason.replace(/`/g, "'")}\`` : 'not attempted'}.`);
  }
  lines.push('', `Load average (1/5/15 min): ${o.loadAvg.start.join(' / ')} at the start of the section, ${o.loadAvg.end.join(' / ')} at its end.`);
  if (o.daemonProblems.length) lines.push('', 'Warnings and errors the daemons logged during the section:', '', ...o.daemonProblems.map((p) => `- \`${p.replace(/`/g, "'")}\``));
  return lines;
}

function scaleRunRows(run: ScaleRun): string[] {
  return run.windows.map((w) => `| ${run.label} | ${w.label} | ${ms(w.setup)} |`);
}

function scaleTable(r: BenchResults): string[] {
  const s = r.scale;
  if (!s) return ['Not run.'];
  const runs = [s.berth, ...(s.floor ? [s.floor] : []), ...(s.floorAttach ? [s.floorAttach] : []), ...s.peers];
  const lines = ['| system | window | setup p50 / p95 ms |', '|---|---|---|'];
  for (const run of runs) lines.push(...scaleRunRows(run));
  lines.push('');
  for (const run of runs) {
    lines.push(`- ${run.label}: reached **${run.reached}/${run.target}** in ${f(run.seconds, 1)} s${run.stoppedBecause ? ` (stopped: ${run.stoppedBecause}${run.error ? `: \`${run.error.slice(0, 200)}\`` : ''})` : ''}.`);
  }
  lines.push('', 'Rules and state at checkpoints (`nft -j list ruleset` in the system\'s host namespace; iptables-nft rules included):', '');
  lines.push('| system | containers | tables | chains | rules | set/map elements | `nft list` ms | daemon RSS MB | processes in host ns |', '|---|---|---|---|---|---|---|---|---|');
  for (const run of runs) {
    for (const c of run.checkpoints) {
      lines.push(`| ${run.key} | ${c.n} | ${c.tables} | ${c.chains} | ${c.rules} | ${c.elements} | ${f(c.listMs, 1)} | ${c.rssKb ? f(c.rssKb / 1024, 1) : '–'} | ${c.hostNsProcesses ?? '–'} |`);
    }
  }
  return lines;
}

function publishedTable(r: BenchResults): string[] {
  const pp = r.scale?.publishedPort;
  if (!pp) return ['Not run.'];
  const n = pp.otherPortsLarge + 1;
  const row = (label: string, runs: ConnRate[]) =>
    `| ${label} | ${f(rate(runs), 0)} | ${runs.map((x1) => x1.perSecond).join(', ')} | ${f(median(runs.map((x1) => x1.p50us)), 0)} | ${runs.reduce((a, x1) => a + x1.errors, 0)}${runs.find((x1) => x1.lastError)?.lastError ? ` (${runs.find((x1) => x1.lastError)!.lastError})` : ''} |`;
  const lines = [
    'Sequential connect + 1-byte echo + close for 1 s, one client process per run (Node on both ends); published and direct runs alternate, the order flipping each pair; median of the runs. The server runs in a berth container; the LAN peer connects to the sandbox host\'s address. ' +
      'The IPv6 rows run on a dual-stack network (the port published on [::] as well) in a daemon of their own, before §2 starts; the LAN peer connects to the host\'s IPv6 address.',
    '',
    '| path | conn/s (median) | runs | connection p50 µs | errors |',
    '|---|---|---|---|---|',
    row('LAN peer → published port, 1 port published', pp.published.small),
    row('container → container (direct), same time', pp.direct.small),
    row(`LAN peer → published port, ${n} ports published, server = the bridge's oldest port`, pp.published.large),
    row(`container → container (direct), same server`, pp.direct.large),
    row(`LAN peer → published port, ${n + 1} ports published, server created after the others`, pp.published.largeFresh ?? []),
    row(`container → container (direct), same server`, pp.direct.largeFresh ?? []),
    row('LAN peer → published port over IPv6, 1 port published (dual-stack network)', pp.ipv6?.published ?? []),
    row('container → container over IPv6 (direct), same time', pp.ipv6?.direct ?? []),
    '',
    `Published ÷ direct: ${x(ratio(rate(pp.published.small), rate(pp.direct.small)))} with 1 port, ${x(ratio(rate(pp.published.largeFresh), rate(pp.direct.largeFresh)))} with ${n + 1} (new server). ` +
      `${n + 1} ports ÷ 1 port (published path, new server): ${x(ratio(rate(pp.published.largeFresh), rate(pp.published.small)))}. ` +
      `Processes in the sandbox host namespace: ${pp.hostNsProcesses.small} with 1 port, ${pp.hostNsProcesses.large} with ${n}. ` +
      `Over IPv6: published ÷ direct ${pp.ipv6?.error ? `not measured (\`${oneLine(pp.ipv6.error)}\`)` : x(ratio(rate(pp.ipv6?.published), rate(pp.ipv6?.direct)))}.`,
  ];
  if (pp.diagnostics) {
    lines.push('', `**A published port stopped answering with ${n}+ ports.** What the bench saw:`, '');
    for (const [k, v] of Object.entries(pp.diagnostics)) lines.push(`- ${k}: \`${v.replace(/`/g, "'").replace(/\|/g, '/')}\``);
  }
  return lines;
}

function dataPlaneTable(r: BenchResults): string[] {
  const d = r.dataPlane;
  if (!d) return ['Not run.'];
  const lines = ['| path | iperf3 Gbit/s | ÷ limit | TCP round trip p50 / p95 µs | limit ÷ path (RR) |', '|---|---|---|---|---|'];
  for (const p of d.paths) {
    lines.push(`| ${p.label} | ${f(p.gbps)} | ${x(p.gbpsRatio)} | ${f(p.rrP50us, 0)} / ${f(p.rrP95us, 0)} | ${x(p.rrRatio)} |${p.error ? ` ${p.error}` : ''}`);
  }
  lines.push('', 'iperf3: one TCP stream, client and server on the same 2 cores. Round trip: 1 byte each way over one connection, Node on both ends (its event loop adds a fixed cost; compare rows with each other).');
  return lines;
}

function dnsTable(r: BenchResults): string[] {
  const d = r.dns;
  if (!d) return ['Not run.'];
  const lines = [
    `Sequential loop (Node client) for latency; ${d.window} queries in flight for throughput, from dnsperf (C) and, for comparison, from the Node client the bench used before (it costs 18–30 µs of CPU per query on the 2 cores the resolver uses too); median over rounds.`,
    '',
    '| resolver | name | qps, dnsperf (median) | qps, Node client (median) | p50 / p95 µs (sequential) | lost / failed |',
    '|---|---|---|---|---|---|',
  ];
  for (const c of d.cases) {
    const runs = [...c.latency, ...c.throughput, ...(c.throughputNode ?? [])];
    const lost = runs.reduce((a, x1) => a + x1.lost, 0);
    const failed = runs.reduce((a, x1) => a + x1.failed, 0);
    lines.push(`| ${c.system} | ${c.kind} | ${f(median(c.throughput.map((x1) => x1.qps)), 0)} | ${f(median((c.throughputNode ?? []).map((x1) => x1.qps)), 0)} | ${f(median(c.latency.map((x1) => x1.p50us)), 0)} / ${f(median(c.latency.map((x1) => x1.p95us)), 0)} | ${lost} / ${failed} |`);
  }
  const fl = d.floor;
  if (fl) {
    const runs = fl.throughput;
    const cell = runs.length ? f(median(runs.map((x1) => x1.qps)), 0) : fl.note ?? '–';
    lines.push(`| floor: a C responder with a canned answer (no lookup), on the gateway's address, port 5353 (no redirect) | container name | ${cell} | – | – | ${runs.reduce((a, x1) => a + x1.lost, 0)} / ${runs.reduce((a, x1) => a + x1.failed, 0)} |`);
  }
  lines.push('', `berth ÷ aardvark qps (dnsperf): ${Object.entries(d.qpsRatio).map(([k, v]) => `${k} ${x(v)}`).join(', ')}${d.qpsRatioNode ? `; with the Node client: ${Object.entries(d.qpsRatioNode).map(([k, v]) => `${k} ${x(v)}`).join(', ')}` : ''}. aardvark ÷ berth p50 latency: ${Object.entries(d.latencyRatio).map(([k, v]) => `${k} ${x(v)}`).join(', ')}.`);
  return lines;
}

function startupTable(r: BenchResults): string[] {
  const lines = ['| daemon state | spawn → /_ping answers p50 / p95 ms | runs | RSS after MB |', '|---|---|---|---|'];
  if (r.startup) {
    lines.push(`| empty root, first start (creates the store) | ${f(r.startup.firstMs)} | 1 | – |`);
    lines.push(`| 0 containers, restart | ${ms(r.startup.ms)} | ${r.startup.ms.n} | ${r.startup.rssKb ? f(r.startup.rssKb / 1024, 1) : '–'} |`);
  }
  const w = r.scale?.startupWithN;
  if (w) lines.push(`| ${w.n} containers (1 port each), restart | ${ms(w.ms)} | ${w.ms.n} | ${w.rssKbAfter ? f(w.rssKbAfter / 1024, 1) : '–'} |`);
  return lines;
}

function profileSection(r: BenchResults): string[] {
  const p = r.profile;
  if (!p) return ['Not run.'];
  const lines = [`CPU profiles of the daemon's main thread (sampling every 250 µs) are in \`${p.dir}\`. The profiler slows the daemon somewhat.`, ''];
  for (const ph of p.phases) {
    lines.push(`### ${ph.name}: ${ph.ops} × ${ph.opLabel}, ${ph.others} other containers`, '');
    const parts: string[] = [];
    if (ph.client) parts.push(`Client: setup ${ms(ph.client.setup)} ms, teardown ${ms(ph.client.teardown)} ms (p50 / p95).`);
    if (ph.daemon) parts.push(`Daemon-side: ${Object.entries(ph.daemon).map(([k, v]) => `${k} ${ms(v)}`).join('; ')}.`);
    if (ph.dns) parts.push(`${ph.dns.qps} qps, p50 ${f(ph.dns.p50us, 0)} µs with ${32} in flight.`);
    parts.push(`Daemon main-thread CPU per ${ph.opLabel}: ${f(ph.busyMsPerOp, 3)} ms.`);
    lines.push(parts.join(' '), '');
    if (!ph.profile) continue;
    lines.push('| where (main thread, idle excluded) | ms | % |', '|---|---|---|');
    for (const k of ph.profile.byKind.slice(0, 10)) lines.push(`| ${k.fn} | ${f(k.ms, 1)} | ${f(k.pct, 1)} |`);
    lines.push('', '| berth function (inclusive; dist/ line numbers) | ms | % |', '|---|---|---|');
    for (const k of ph.profile.topBerthInclusive.slice(0, 12)) lines.push(`| \`${k.fn}\` | ${f(k.ms, 1)} | ${f(k.pct, 1)} |`);
    lines.push('', '| function (self) | ms | % |', '|---|---|---|');
    for (const k of ph.profile.topSelf.slice(0, 10)) lines.push(`| \`${k.fn}\` | ${f(k.ms, 1)} | ${f(k.pct, 1)} |`);
    lines.push('');
  }
  return lines;
}

export function renderReport(r: BenchResults): string {
  const m = r.machine;
  const analysisFile = path.join(REPO, 'bench/analysis.md');
  const analysis = fs.existsSync(analysisFile) ? fs.readFileSync(analysisFile, 'utf8').trim() : '';
  const lines = [
    '# berth benchmarks',
    '',
    `Generated by \`npm run bench${r.mode === 'quick' ? ' -- --quick' : ''}\` (${r.mode} run) on ${r.started}, in ${f(r.durationS, 0)} s. Raw figures: \`bench/results/latest.json\`.`,
    '',
    `Machine: ${m.nproc} × ${m.cpuModel}, ${m.memGb} GB, kernel ${m.kernel}, Node ${m.node}; load average at start ${m.loadAvgAtStart.join(' / ')}. ` +
      'The machine is shared and noisy (other work runs at the same time): treat single figures as ±20–30 %. ' +
      `1-minute load average when each section started: ${Object.entries(r.load ?? {}).map(([k, v]) => `${k} ${v[0]}`).join(', ') || '–'}.`,
    '',
    ...(r.rerun ?? []).flatMap((rr) => [`Re-run since with \`--only ${rr.sections.join(',')}\`${rr.mode === 'quick' ? ' --quick' : ''} on ${rr.started} (load average at start ${rr.loadAvgAtStart.join(' / ')}): those sections' figures are from that run.`, '']),
    'Peers: ' + Object.entries(m.peers).map(([k, v]) => `${k} ${v}`).join('; ') + '.',
    '',
    'Everything runs inside sandbox network namespaces; nothing touches the machine\'s own namespace. berth runs as its daemon in a test Sandbox, driven through its HTTP API on the unix socket from the bench process (no CLI start-up measured). netavark, the CNI plugins and berth\'s CNI shim run in their own sandbox host namespaces, exec\'d by a helper process already inside that namespace as Go runtimes (containerd, CRI-O, Podman) start plugins (posix_spawn: a vfork-style start that copies none of the parent), timed from spawn to exit as a runtime sees them. Runs up to 2026-12-06 22:14 UTC started them through Node\'s child_process, whose fork cost ~5 ms more per exec here; §1 shows both for /bin/true in every round (`execTrueMs`, `execTrueNodeMs`).',
    '',
    '## Goals',
    '',
    '| goal | figure | verdict |',
    '|---|---|---|',
    ...goals(r).map((g) => `| ${g.goal} | ${g.figure} | ${verdict(g.met)} |`),
    '',
    '## 1. Setup and teardown (bridge network, one published port, DNS on)',
    '',
    ...setupTable(r),
    '',
    "Peers' container namespaces are created with `ip netns add` before the timed setup (as Podman does) and deleted after teardown; that cost is the `netnsAddMs` part, not in their setup figure. berth's figure includes making the namespace. The CNI chain has no DNS (CNI has no DNS plugin); netavark's includes aardvark-dns's reload.",
    '',
    '## 2. Scale (one network, one published port per container)',
    '',
    ...scaleTable(r),
    '',
    '## 3. Published-port path',
    '',
    ...publishedTable(r),
    '',
    '## 4. Data plane',
    '',
    ...dataPlaneTable(r),
    '',
    '## 5. DNS (berth vs aardvark-dns)',
    '',
    ...dnsTable(r),
    '',
    '## 6. Daemon start-up',
    '',
    ...startupTable(r),
    '',
    '## 7. Macvlan setup and teardown',
    '',
    ...macvlanTable(r),
    '',
    '## 8. Overlay across hosts (VXLAN, etcd)',
    '',
    ...overlayTable(r),
    '',
    '## 9. Per-host subnets across hosts (Flannel-style backends, and the fan)',
    '',
    ...hostSubnetsTable(r),
    '',
    '## 10. Routed networks (/32 per container, BGP through bird2)',
    '',
    ...routedTable(r),
    '',
    '## Profile',
    '',
    ...profileSection(r),
  ];
  if (Object.keys(r.errors).length) {
    lines.push('', '## Sections that failed', '');
    for (const [k, v] of Object.entries(r.errors)) lines.push(`- **${k}**: \`${v.split('\n')[0]}\``);
  }
  if (analysis) lines.push('', analysis);
  lines.push(
    '',
    '## How to run',
    '',
    '```sh',
    'npm run bench                  # full run, under 15 minutes; writes bench/results/latest.json and BENCHMARKS.md',
    'npm run bench -- --quick       # a few samples of everything, under 2 minutes (CI smoke run)',
    'npm run bench -- --only setup,dns   # sections: setup, dataplane, dns, startup, macvlan, overlay, hostsubnets, routed, scale, profile',
    'node dist/bench/run.js --render     # rewrite BENCHMARKS.md from the last results (after editing bench/analysis.md)',
    '```',
    '',
    'Needs root, Debian\'s `netavark`, `aardvark-dns`, `containernetworking-plugins`, `iperf3` and `iproute2`/`nftables`, and `etcd` for §8. ' +
      'Every namespace the bench makes is named `bb-…` (berth\'s own test Sandbox names its host namespace `bt…`), every process it starts is killed by its PID, ' +
      'and all of it is removed at the end of each section, also after a failure. Sections run in this order: setup, dataplane, dns, startup, macvlan, overlay, hostsubnets, routed, scale, profile ' +
      '(scale late, because dropping hundreds of namespaces keeps the kernel busy for a while).',
  );
  return `${lines.join('\n')}\n`;
}
