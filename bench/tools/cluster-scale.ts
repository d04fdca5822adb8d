/**
 * The cluster store at scale, by simulation: N simulated hosts (watchers and leases, no data
 * plane) against one real etcd, for a curve of N. Each simulated host does what
 * src/cluster/agent.ts does: its own EtcdClient (so its own keep-alive connection for unary calls,
 * plus one streaming HTTP connection for its watch), its own lease renewed every TTL/3, its host
 * key and a few endpoint keys on that lease, one list and then one watch on /berth/v1/. Per N it
 * measures the fan-out of one endpoint change to every watcher, etcd's CPU and memory, the lease
 * renewal load, the time to set the watchers up, and two storms in which every watch ends at once
 * (as when a member restarts): a resume storm (every host watches again from the last revision it
 * saw, as the agent does since 6d2106d) and a relist storm (every host lists and watches again, as
 * the agent does after a compaction, and did after any end before 6d2106d; `--legacy-agent`
 * brings back that agent's fixed back-offs and uncapped renewals). A step stops early, reporting
 * where and why, when its budget runs out, etcd's RSS passes a limit, or the store stops keeping
 * up: where it breaks is a result.
 *
 * etcd runs in a network namespace of its own on its loopback only; the measuring half of this
 * script re-executes itself inside that namespace (`nsenter --net`), so nothing is sent anywhere
 * else and the machine's own namespace is never touched. A fresh etcd (new data dir) serves each
 * N, so its memory is measured from the same baseline every time; it is killed by PID after each
 * step, and the namespace and temporary files are removed at the end, on failure and on signals.
 *
 *   sudo node dist/bench/tools/cluster-scale.js [--hosts 10,100,300,500,1000] [--endpoints 3]
 *        [--changes 20] [--ttl 10] [--idle 10] [--concurrency 32] [--list-concurrency 8]
 *        [--deadline 2000] [--storm-budget 60] [--storm-spread 0] [--no-storm] [--no-relist-storm] [--no-list]
 *        [--legacy-agent] [--max-etcd-rss 3072] [--step-budget 240] [--budget 600] [--out FILE]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EtcdClient, prefixEnd, type WatchEvent } from '../../src/cluster/etcd.js';
import * as K from '../../src/cluster/keys.js';
import { num, parseArgs, str } from './args.js';

const args = parseArgs(process.argv.slice(2));
const PORT_CLIENT = 23790;
const PORT_PEER = 23800;
const URL_CLIENT = `http://127.0.0.1:${PORT_CLIENT}`;
const NETWORK_ID = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9';
/** A change not seen by every watcher within this long ends the step: the store no longer keeps up. */
const CHANGE_TIMEOUT_MS = 10_000;

interface Quantiles {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function quantiles(xs: readonly number[]): Quantiles {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]! : NaN);
  const r = (x: number) => Math.round(x * 100) / 100;
  return { n: s.length, p50: r(at(0.5)), p99: r(at(0.99)), max: r(s[s.length - 1] ?? NaN) };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const secondsSince = (t0: number) => Math.round((nowMs() - t0) / 10) / 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

export interface StepResult {
  hosts: number;
  endpointsPerHost: number;
  keys: number;
  /** Steady state: 'broke' when a phase up to the fan-out ran out of time or the store stopped keeping up. */
  status: 'ok' | 'broke';
  broke?: { phase: string; reason: string };
  elapsedS: number;
  setup: {
    joinS: number;
    joinMs: Quantiles;
    /** Lists that failed (the 2 s deadline) and were tried again, as the agent does. */
    listRetries: number;
    listMs: Quantiles;
    /** CPU while the hosts listed and started watching (`list-concurrency` at a time). */
    listEtcdCpuPct: number;
    listSimCpuPct: number;
    /** CPU over the whole setup: join, list, watch, first change. */
    etcdCpuPct: number;
    simCpuPct: number;
    listBytes: number;
    /** From the first list to the moment every watcher had delivered a marker put after the last one. */
    watchersReadyS: number;
  };
  fanout: {
    changes: number;
    /** Per change: until the last watcher delivered it. */
    allHostsMs: Quantiles;
    /** Per watcher and change: until that watcher delivered it. */
    perHostMs: Quantiles;
    /** Per change: from the first watcher's delivery to the last one's, i.e. the fan-out without the commit. */
    spreadMs: Quantiles;
    /** Per change: the put's round trip (etcd commits it, fsync included, before any watcher sees it). */
    putMs: Quantiles;
    undelivered: number;
  };
  etcd: {
    cpuIdlePct: number;
    cpuChangingPct: number;
    /** etcd CPU per change beyond the idle rate: the cost of one fan-out to N watchers. */
    cpuMsPerChange: number;
    rssBaseMB: number;
    /** After the fan-out, before the storm. */
    rssMB: number;
    /** (RSS after the fan-out − RSS of the empty etcd) / N. */
    kbPerHost: number;
    heapInuseMB: number;
    heapKbPerHost: number;
    goroutines: number;
    goroutinesPerHost: number;
    watchers: number;
    slowWatchers: number;
    openFds: number;
    /** VmHWM at the end of the step (the storm included). */
    rssPeakMB: number;
  };
  keepalive: {
    expectedPerS: number;
    perS: number;
    idleMs: Quantiles;
    changingMs: Quantiles;
    /** During the idle and change windows: any is a break. */
    failed: number;
    expired: number;
    /** While the hosts joined, listed and started watching: failed renewals are retried (a lease lives 3 periods); an expired lease is a break. */
    setupFailed: number;
    setupExpired: number;
    setupMs: Quantiles;
    /** Over the whole step, the storm included. */
    maxInFlight: number;
    /** Renewals not sent because the host's previous one was still in flight (the agent sends one at a time). */
    skipped: number;
  };
  simulator: { cpuIdlePct: number; cpuChangingPct: number; cpuMsPerChange: number; rssMB: number };
  /** Both cores together, in % of one core (200 = the machine is saturated); `others` is what neither etcd nor the simulator used. */
  machine: { busyIdlePct: number; busyChangingPct: number; othersIdlePct: number; othersChangingPct: number };
  /** Every watch ends at once (a member restarted) and every host watches again from the last revision it saw, as the agent does. */
  resumeStorm?: StormResult;
  /** Every watch ends at once and every host lists and watches again: the agent after a compaction (and before 6d2106d, after any end). */
  relistStorm?: StormResult;
  watchesLost: number;
  /** Events the watchers delivered in the idle window (nothing changes then: 0 expected). */
  idleEvents: number;
}

export interface StormResult {
  converged: boolean;
  /** Until every host watched again and had delivered a change put during the storm (resume) or after it (relist). */
  s: number;
  lists: number;
  listFailures: number;
  listMs: Quantiles;
  etcdCpuPct: number;
  simCpuPct: number;
  /** Renewals that failed, and leases found expired, during the storm. */
  keepalivesFailed: number;
  leasesExpired: number;
  keepaliveMs: Quantiles;
  etcdRssPeakMB: number;
  reason?: string;
}

/* ---------------------------------------------------------------- measuring (inside the namespace) */

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function procTicks(pid: number | 'self'): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function procMem(pid: number | 'self'): { rssMB: number; hwmMB: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMB: round1(kb('VmRSS') / 1024), hwmMB: round1(kb('VmHWM') / 1024) };
}

function machineTicks(): { busy: number; total: number } {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - cpu[3]! - cpu[4]!, total };
}

interface Snap {
  t: number;
  etcd: number;
  sim: number;
  machine: number;
}

function snap(etcdPid: number): Snap {
  return { t: nowMs(), etcd: procTicks(etcdPid), sim: procTicks('self'), machine: machineTicks().busy };
}

/** CPU between two snapshots, in % of one core, and in CPU-ms. */
function cpuBetween(a: Snap, b: Snap): { ms: number; etcdPct: number; simPct: number; machinePct: number; etcdMs: number; simMs: number } {
  const ms = b.t - a.t;
  const tickMs = 1000 / CLK_TCK;
  const etcdMs = (b.etcd - a.etcd) * tickMs;
  const simMs = (b.sim - a.sim) * tickMs;
  const machineMs = (b.machine - a.machine) * tickMs;
  return { ms, etcdMs, simMs, etcdPct: round1((100 * etcdMs) / ms), simPct: round1((100 * simMs) / ms), machinePct: round1((100 * machineMs) / ms) };
}

async function etcdMetrics(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const text = await (await fetch(`${URL_CLIENT}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+) ([0-9.e+-]+)$/.exec(line);
      if (m) out.set(m[1]!, Number(m[2]));
    }
  } catch {
    /* an overloaded etcd: the figures stay NaN */
  }
  return out;
}

/** The size of one full listing of berth's prefix as the gateway sends it: what every relist costs. */
async function listBytes(): Promise<number> {
  try {
    const body = JSON.stringify({ key: Buffer.from(K.ROOT).toString('base64'), range_end: prefixEnd(K.ROOT) });
    const r = await fetch(`${URL_CLIENT}/v3/kv/range`, { method: 'POST', body, signal: AbortSignal.timeout(10_000) });
    return (await r.arrayBuffer()).byteLength;
  } catch {
    return NaN;
  }
}

interface SimHost {
  i: number;
  id: string;
  etcd: EtcdClient;
  lease: string;
  phase?: NodeJS.Timeout;
  renewal?: NodeJS.Timeout;
  watch?: { cancel(): void };
  /** The store revision this host's cache reflects: where its watch resumes. */
  revision: number;
  renewing: boolean;
}

const hostId = (i: number) => i.toString(16).padStart(16, '0');
const vtepOf = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

function endpointRecord(host: number, n: number): string {
  const id = `${hostId(host)}${n.toString(16).padStart(8, '0')}`.padEnd(64, '0');
  const ep: K.AnnouncedEndpoint = {
    id,
    networkId: NETWORK_ID,
    containerId: id.split('').reverse().join(''),
    name: `web-${host}-${n}`,
    aliases: [`web-${host}-${n}`, 'web'],
    ip: `10.${(host >> 8) & 255}.${host & 255}.${(n % 250) + 2}`,
    mac: `02:42:0a:${((host >> 8) & 255).toString(16).padStart(2, '0')}:${(host & 255).toString(16).padStart(2, '0')}:${((n % 250) + 2).toString(16).padStart(2, '0')}`,
    hostId: hostId(host),
    vtep: vtepOf(host),
  };
  return JSON.stringify(ep);
}

/** Runs fn(0…count−1), `limit` at a time, taking no new item once `stop()` says so. */
async function pool(count: number, limit: number, stop: () => boolean, fn: (i: number) => Promise<void>): Promise<boolean> {
  let next = 0;
  const worker = async () => {
    while (next < count && !stop()) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return next >= count;
}

async function measureStep(): Promise<StepResult> {
  const N = num(args, 'step', 10);
  const E = num(args, 'endpoints', 3);
  const CHANGES = num(args, 'changes', 20);
  const TTL = num(args, 'ttl', 10);
  const IDLE_S = num(args, 'idle', 10);
  const CONCURRENCY = num(args, 'concurrency', 32);
  const LIST_CONCURRENCY = num(args, 'list-concurrency', 8);
  // The agent's own: EtcdClient's default deadline, its relist back-offs.
  const DEADLINE_MS = num(args, 'deadline', 2000);
  // The agent since 6d2106d waits a random 0.5–2.5 s before resuming, relisting or retrying a list, and
  // renews one lease at a time; before it (--legacy-agent) it relisted 500 ms after any end and retried every 1 s.
  const LEGACY = args.has('legacy-agent');
  const backoff = (first: boolean) => (LEGACY ? (first ? 500 : 1000) : 500 * (1 + Math.random() * 4));
  const STORM_BUDGET_MS = num(args, 'storm-budget', 60) * 1000;
  // Not the agent: watchers start at the current revision without listing, for curves past what N lists of N hosts allow in the budget.
  const NO_LIST = args.has('no-list');
  // 0 is the agent. More spreads the storms' first attempts over that many more ms.
  const STORM_SPREAD_MS = num(args, 'storm-spread', 0);
  const MAX_ETCD_RSS_MB = num(args, 'max-etcd-rss', 3072);
  const etcdPid = num(args, 'etcd-pid', 0);
  const started = Date.now();
  const stepBudgetS = num(args, 'step-budget', 240);
  const deadline = started + stepBudgetS * 1000;
  const periodMs = (TTL * 1000) / 3;
  const log = (msg: string) => process.stderr.write(`[N=${N} +${round1((Date.now() - started) / 1000)}s] ${msg}\n`);

  const r: StepResult = {
    hosts: N,
    endpointsPerHost: E,
    keys: N * (1 + E) + 1,
    status: 'ok',
    elapsedS: NaN,
    setup: { joinS: NaN, joinMs: quantiles([]), listRetries: 0, listMs: quantiles([]), listEtcdCpuPct: NaN, listSimCpuPct: NaN, etcdCpuPct: NaN, simCpuPct: NaN, listBytes: NaN, watchersReadyS: NaN },
    fanout: { changes: 0, allHostsMs: quantiles([]), perHostMs: quantiles([]), spreadMs: quantiles([]), putMs: quantiles([]), undelivered: 0 },
    etcd: { cpuIdlePct: NaN, cpuChangingPct: NaN, cpuMsPerChange: NaN, rssBaseMB: NaN, rssMB: NaN, kbPerHost: NaN, heapInuseMB: NaN, heapKbPerHost: NaN, goroutines: NaN, goroutinesPerHost: NaN, watchers: NaN, slowWatchers: NaN, openFds: NaN, rssPeakMB: NaN },
    keepalive: { expectedPerS: round1(N / (periodMs / 1000)), perS: NaN, idleMs: quantiles([]), changingMs: quantiles([]), failed: 0, expired: 0, setupFailed: 0, setupExpired: 0, setupMs: quantiles([]), maxInFlight: 0, skipped: 0 },
    simulator: { cpuIdlePct: NaN, cpuChangingPct: NaN, cpuMsPerChange: NaN, rssMB: NaN },
    machine: { busyIdlePct: NaN, busyChangingPct: NaN, othersIdlePct: NaN, othersChangingPct: NaN },
    watchesLost: 0,
    idleEvents: 0,
  };
  const broke = (phase: string, reason: string) => {
    if (!r.broke) r.broke = { phase, reason };
    r.status = 'broke';
    log(`broke in ${phase}: ${reason}`);
  };
  // etcd's memory is watched throughout: past the limit every phase stops (this machine is shared).
  let abort: string | undefined;
  let etcdRssMaxMB = 0;
  const guard = setInterval(() => {
    const { rssMB } = procMem(etcdPid);
    etcdRssMaxMB = Math.max(etcdRssMaxMB, rssMB);
    if (rssMB > MAX_ETCD_RSS_MB && !abort) {
      abort = `etcd's RSS passed ${MAX_ETCD_RSS_MB} MB (${rssMB} MB)`;
      log(`stopping: ${abort}`);
    }
  }, 250);
  const stopped = (until: number) => abort !== undefined || Date.now() >= until;
  /** Sleeps `ms`, cut short when the phase stops, so a stopped step ends (and etcd is killed) at once. */
  const pause = async (ms: number, until: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end && !stopped(until)) await sleep(Math.min(100, end - Date.now()));
  };
  const outOfTime = (phase: string) => {
    if (!stopped(deadline)) return false;
    broke(phase, abort ?? `the step's budget (${stepBudgetS} s) ran out`);
    return true;
  };

  const probe = new EtcdClient([URL_CLIENT], { deadlineMs: 5000 });
  for (let i = 0; ; i++) {
    try {
      await probe.status();
      break;
    } catch (err) {
      if (i > 150) throw new Error(`etcd did not answer within 15 s: ${(err as Error).message}`);
      await sleep(100);
    }
  }
  r.etcd.rssBaseMB = procMem(etcdPid).rssMB;
  const base = await etcdMetrics();
  await probe.put(K.networkKey('sim'), JSON.stringify({ id: NETWORK_ID, name: 'sim', driver: 'overlay', subnet: '10.0.0.0/8', vni: 4097 }));

  const hosts: SimHost[] = [];
  let kaSamples: number[] = [];
  let kaInFlight = 0;
  let kaDone = 0;
  const renew = async (h: SimHost) => {
    if (h.renewing && !LEGACY) {
      r.keepalive.skipped++;
      return;
    }
    h.renewing = true;
    kaInFlight++;
    r.keepalive.maxInFlight = Math.max(r.keepalive.maxInFlight, kaInFlight);
    const t0 = nowMs();
    try {
      const ttl = await h.etcd.keepAlive(h.lease);
      kaSamples.push(nowMs() - t0);
      kaDone++;
      if (ttl <= 0) r.keepalive.expired++;
    } catch {
      r.keepalive.failed++;
    } finally {
      kaInFlight--;
      h.renewing = false;
    }
  };

  // The change being timed: which watchers have delivered it, and when.
  let pending: { key: string; t0: number; seen: Uint8Array; count: number; times: number[]; done: () => void } | undefined;
  let delivered = 0;
  const onEvents = (h: SimHost, events: WatchEvent[]) => {
    delivered += events.length;
    for (const ev of events) {
      h.revision = Math.max(h.revision, ev.kv.modRevision);
      // What the agent does with every event before it looks further: parse the key and the record.
      K.parseKey(ev.kv.key);
      if (ev.type === 'put') {
        try {
          JSON.parse(ev.kv.value);
        } catch {
          /* not a record */
        }
      }
      if (pending && ev.kv.key === pending.key && !pending.seen[h.i]) {
        pending.seen[h.i] = 1;
        pending.times.push(nowMs() - pending.t0);
        if (++pending.count === N) pending.done();
      }
    }
  };
  /** Puts `key` from host 0 and waits until every watcher delivered it (or the time-out): the per-watcher latencies. */
  const fanOut = async (key: string, value: string, timeoutMs: number): Promise<{ times: number[]; putMs: number; missing: number; error?: string }> => {
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    pending = { key, t0: nowMs(), seen: new Uint8Array(N), count: 0, times: [], done };
    const p = pending;
    try {
      await hosts[0]!.etcd.put(key, value, hosts[0]!.lease);
    } catch (err) {
      pending = undefined;
      return { times: p.times, putMs: NaN, missing: N - p.count, error: (err as Error).message };
    }
    const putMs = nowMs() - p.t0;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, timeoutMs - putMs))))]);
    clearTimeout(timer);
    pending = undefined;
    return { times: p.times, putMs, missing: N - p.count };
  };
  let markers = 0;
  const marker = (timeoutMs: number) => fanOut(`${K.ROOT}sim/marker`, String(++markers), timeoutMs);

  /** The agent's relist: list, apply, watch from the revision after; a failed list is tried again after a pause. */
  const watchFrom = (h: SimHost, revision: number) => {
    h.watch = h.etcd.watch(
      K.ROOT,
      revision,
      (events) => onEvents(h, events),
      (reason) => {
        if (reason.error === 'canceled') return;
        r.watchesLost++;
        if (r.watchesLost === 1) log(`a watch ended: ${JSON.stringify(reason)}`);
      },
    );
  };
  const listAndWatch = async (h: SimHost, until: number, stats: { ms: number[]; failures: number }): Promise<boolean> => {
    for (;;) {
      if (stopped(until)) return false;
      const s = nowMs();
      try {
        const { kvs, revision } = await h.etcd.list(K.ROOT);
        stats.ms.push(nowMs() - s);
        onEvents(
          h,
          kvs.map((kv) => ({ type: 'put', kv })),
        );
        h.revision = Math.max(h.revision, revision);
        watchFrom(h, revision + 1);
        return true;
      } catch {
        stats.failures++;
        await pause(backoff(false), until);
      }
    }
  };

  try {
    // Join: a lease, the host key and the endpoint keys on it, then renewals every TTL/3 from a random phase.
    log(`joining ${N} hosts (${E} endpoints each, ${CONCURRENCY} at a time)`);
    const joinMs: number[] = [];
    let joinErrors = 0;
    let firstJoinError = '';
    const t0 = nowMs();
    const setupStart = snap(etcdPid);
    const joined = await pool(N, CONCURRENCY, () => stopped(deadline), async (i) => {
      const h: SimHost = { i, id: hostId(i), etcd: new EtcdClient([URL_CLIENT], { deadlineMs: DEADLINE_MS }), lease: '0', revision: 0, renewing: false };
      hosts.push(h);
      const s = nowMs();
      try {
        h.lease = (await h.etcd.grantLease(TTL)).id;
        const record: K.AnnouncedHost = { id: h.id, hostname: `sim-${i}`, address: vtepOf(i), started: new Date().toISOString() };
        await h.etcd.put(K.hostKey(h.id), JSON.stringify(record), h.lease);
        for (let e = 0; e < E; e++) await h.etcd.put(K.endpointKey(NETWORK_ID, `${h.id}-${e}`), endpointRecord(i, e), h.lease);
        joinMs.push(nowMs() - s);
        h.phase = setTimeout(() => {
          void renew(h);
          h.renewal = setInterval(() => void renew(h), periodMs);
        }, Math.random() * periodMs);
      } catch (err) {
        joinErrors++;
        firstJoinError ||= (err as Error).message;
      }
    });
    hosts.sort((a, b) => a.i - b.i);
    const joinedAt = nowMs();
    r.setup.joinS = secondsSince(t0);
    r.setup.joinMs = quantiles(joinMs);
    if (joinErrors) broke('join', `${joinErrors} of ${N} hosts could not join: ${firstJoinError}`);
    else if (!joined) outOfTime('join');

    // List, then watch from the revision after it: what each agent does when it starts.
    if (r.status === 'ok') {
      log(NO_LIST ? 'watching (no lists)' : `listing and watching (${LIST_CONCURRENCY} at a time)`);
      const stats = { ms: [] as number[], failures: 0 };
      const t1 = nowMs();
      const a = snap(etcdPid);
      let unlisted = 0;
      let listed = true;
      if (NO_LIST) {
        const { revision } = await probe.list(`${K.ROOT}sim/`);
        for (const h of hosts) {
          h.revision = revision;
          watchFrom(h, revision + 1);
        }
      } else {
        listed = await pool(N, LIST_CONCURRENCY, () => stopped(deadline), async (i) => {
          if (!(await listAndWatch(hosts[i]!, deadline, stats))) unlisted++;
        });
      }
      if (!NO_LIST) {
        const cpu = cpuBetween(a, snap(etcdPid));
        r.setup.listEtcdCpuPct = cpu.etcdPct;
        r.setup.listSimCpuPct = cpu.simPct;
      }
      r.setup.listMs = quantiles(stats.ms);
      r.setup.listRetries = stats.failures;
      if (unlisted || !listed) outOfTime('list+watch');
      else {
        const m = await marker(Math.max(1000, deadline - Date.now()));
        r.setup.watchersReadyS = secondsSince(t1);
        if (m.missing) broke('list+watch', m.error ? `the first change failed: ${m.error}` : `${m.missing} of ${N} watchers never delivered the first change`);
      }
      r.setup.listBytes = await listBytes();
    }

    const setupCpu = cpuBetween(setupStart, snap(etcdPid));
    r.setup.etcdCpuPct = setupCpu.etcdPct;
    r.setup.simCpuPct = setupCpu.simPct;
    r.keepalive.setupFailed = r.keepalive.failed;
    r.keepalive.setupExpired = r.keepalive.expired;
    r.keepalive.setupMs = quantiles(kaSamples);
    r.keepalive.failed = r.keepalive.expired = 0;
    if (r.keepalive.setupExpired) broke('list+watch', `${r.keepalive.setupExpired} leases expired while the hosts joined and listed`);

    // Idle: only renewals. Starts after a full renewal period, so every host's timer is running.
    let idle: ReturnType<typeof cpuBetween> | undefined;
    if (r.status === 'ok' && !outOfTime('idle')) {
      log(`idle window (${IDLE_S} s)`);
      await sleep(Math.max(0, periodMs - (nowMs() - joinedAt)));
      kaSamples = [];
      kaDone = 0;
      const before = delivered;
      const a = snap(etcdPid);
      await sleep(IDLE_S * 1000);
      const b = snap(etcdPid);
      r.idleEvents = delivered - before;
      idle = cpuBetween(a, b);
      r.keepalive.perS = round1((kaDone * 1000) / idle.ms);
      r.keepalive.idleMs = quantiles(kaSamples);
      r.etcd.cpuIdlePct = idle.etcdPct;
      r.simulator.cpuIdlePct = idle.simPct;
      r.machine.busyIdlePct = idle.machinePct;
      r.machine.othersIdlePct = round1(idle.machinePct - idle.etcdPct - idle.simPct);
      if (r.keepalive.expired || r.keepalive.failed) broke('idle', `${r.keepalive.expired} leases expired and ${r.keepalive.failed} renewals failed`);
    }

    // Changes: one endpoint put at a time from host 0, each timed until every watcher has it.
    if (r.status === 'ok' && !outOfTime('fan-out')) {
      log(`${CHANGES} changes`);
      kaSamples = [];
      const perHost: number[] = [];
      const allHosts: number[] = [];
      const spreads: number[] = [];
      const puts: number[] = [];
      const a = snap(etcdPid);
      for (let k = 0; k < CHANGES; k++) {
        if (outOfTime('fan-out')) break;
        const f = await fanOut(K.endpointKey(NETWORK_ID, `change-${k}`), endpointRecord(0, 1000 + k), CHANGE_TIMEOUT_MS);
        perHost.push(...f.times);
        puts.push(f.putMs);
        r.fanout.changes++;
        if (f.missing) {
          r.fanout.undelivered += f.missing;
          broke('fan-out', f.error ? `change ${k}: the put failed: ${f.error}` : `change ${k}: ${f.missing} of ${N} watchers had not delivered it after ${CHANGE_TIMEOUT_MS} ms`);
          break;
        }
        allHosts.push(Math.max(...f.times));
        spreads.push(Math.max(...f.times) - Math.min(...f.times));
        // Apart, so each change is timed alone; jittered, so changes do not lock onto the renewals' rhythm.
        await sleep(200 + Math.random() * 300);
      }
      const b = snap(etcdPid);
      const changing = cpuBetween(a, b);
      r.fanout.allHostsMs = quantiles(allHosts);
      r.fanout.perHostMs = quantiles(perHost);
      r.fanout.spreadMs = quantiles(spreads);
      r.fanout.putMs = quantiles(puts);
      r.keepalive.changingMs = quantiles(kaSamples);
      r.etcd.cpuChangingPct = changing.etcdPct;
      r.simulator.cpuChangingPct = changing.simPct;
      r.machine.busyChangingPct = changing.machinePct;
      r.machine.othersChangingPct = round1(changing.machinePct - changing.etcdPct - changing.simPct);
      if (idle && r.fanout.changes) {
        r.etcd.cpuMsPerChange = round1((changing.etcdMs - (idle.etcdMs * changing.ms) / idle.ms) / r.fanout.changes);
        r.simulator.cpuMsPerChange = round1((changing.simMs - (idle.simMs * changing.ms) / idle.ms) / r.fanout.changes);
      }
      if (r.keepalive.expired || r.keepalive.failed) broke('fan-out', `${r.keepalive.expired} leases expired and ${r.keepalive.failed} renewals failed`);
    }
    if (r.watchesLost) broke(r.broke?.phase ?? 'watch', `${r.watchesLost} watches ended`);

    const steady = procMem(etcdPid);
    r.etcd.rssMB = steady.rssMB;
    r.etcd.kbPerHost = round1(((steady.rssMB - r.etcd.rssBaseMB) * 1024) / N);
    const m = await etcdMetrics();
    const heap = m.get('go_memstats_heap_inuse_bytes') ?? NaN;
    r.etcd.heapInuseMB = round1(heap / 2 ** 20);
    r.etcd.heapKbPerHost = round1((heap - (base.get('go_memstats_heap_inuse_bytes') ?? NaN)) / 1024 / N);
    r.etcd.goroutines = m.get('go_goroutines') ?? NaN;
    r.etcd.goroutinesPerHost = round1((r.etcd.goroutines - (base.get('go_goroutines') ?? NaN)) / N);
    r.etcd.watchers = m.get('etcd_debugging_mvcc_watcher_total') ?? NaN;
    r.etcd.slowWatchers = m.get('etcd_debugging_mvcc_slow_watcher_total') ?? NaN;
    r.etcd.openFds = m.get('process_open_fds') ?? NaN;
    r.simulator.rssMB = procMem('self').rssMB;

    /** Ends every watch at once and brings the hosts back with `comeBack`; what it cost and whether every host caught up. */
    const storm = async (name: string, comeBack: (h: SimHost, until: number, stats: { ms: number[]; failures: number }) => Promise<boolean>, changeDuring: boolean): Promise<StormResult | undefined> => {
      const until = Math.min(deadline, Date.now() + STORM_BUDGET_MS);
      if (r.status !== 'ok' || abort || until - Date.now() < 20_000 || args.has('no-storm')) return undefined;
      log(`${name} storm (${N} hosts at once, ${Math.round((until - Date.now()) / 1000)} s at most)`);
      for (const h of hosts) h.watch?.cancel();
      const stats = { ms: [] as number[], failures: 0 };
      const before = { failed: r.keepalive.failed, expired: r.keepalive.expired };
      kaSamples = [];
      etcdRssMaxMB = 0;
      const a = snap(etcdPid);
      const t2 = nowMs();
      // A change made while every watch is down must reach every host once it is back (from etcd's history).
      const during = changeDuring ? marker(Math.max(1000, until - Date.now())) : undefined;
      const back = await Promise.all(
        hosts.map(async (h) => {
          await pause(backoff(true) + Math.random() * STORM_SPREAD_MS, until);
          return comeBack(h, until, stats);
        }),
      );
      const behind = back.filter((ok) => !ok).length;
      let reason: string | undefined;
      if (behind) reason = `${behind} of ${N} hosts were still not watching when ${abort ?? "the storm's budget ran out"}`;
      const mk = await (during ?? (behind ? undefined : marker(Math.max(1000, until - Date.now()))));
      if (!reason && mk?.missing) reason = mk.error ? `the storm's change failed: ${mk.error}` : `${mk.missing} of ${N} watchers never delivered the storm's change`;
      const cpu = cpuBetween(a, snap(etcdPid));
      const result: StormResult = {
        converged: !reason,
        s: secondsSince(t2),
        lists: stats.ms.length + stats.failures,
        listFailures: stats.failures,
        listMs: quantiles(stats.ms),
        etcdCpuPct: cpu.etcdPct,
        simCpuPct: cpu.simPct,
        keepalivesFailed: r.keepalive.failed - before.failed,
        leasesExpired: r.keepalive.expired - before.expired,
        keepaliveMs: quantiles(kaSamples),
        etcdRssPeakMB: etcdRssMaxMB,
        ...(reason ? { reason } : {}),
      };
      r.keepalive.failed = before.failed;
      r.keepalive.expired = before.expired;
      if (reason) log(`${name} storm: ${reason}`);
      return result;
    };
    if (!LEGACY) {
      r.resumeStorm = await storm(
        'resume',
        async (h) => {
          watchFrom(h, h.revision + 1);
          return true;
        },
        true,
      );
    }
    if (!args.has('no-relist-storm')) r.relistStorm = await storm('relist', listAndWatch, false);
    r.etcd.rssPeakMB = procMem(etcdPid).hwmMB;
  } finally {
    clearInterval(guard);
    for (const h of hosts) {
      clearTimeout(h.phase);
      clearInterval(h.renewal);
      h.watch?.cancel();
      h.etcd.close();
    }
    probe.close();
  }
  r.elapsedS = round1((Date.now() - started) / 1000);
  log(`done: ${r.status}`);
  return r;
}

/* ---------------------------------------------------------------- orchestrating (the machine's namespace) */

const children = new Set<ChildProcess>();
let nsName = '';
let tmpDir = '';

/** Kills what this script started (by PID), removes the namespace and the files; safe to call twice. */
function cleanup(): void {
  for (const c of children) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  children.clear();
  if (nsName) spawnSync('ip', ['netns', 'del', nsName]);
  nsName = '';
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  tmpDir = '';
}

function must(cmd: string, argv: string[]): void {
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

function exited(c: ChildProcess): Promise<void> {
  return c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', () => r()));
}

async function startEtcd(dataDir: string, logFile: string): Promise<ChildProcess> {
  const out = fs.openSync(logFile, 'w');
  // nsenter --net execs etcd in place: the child's PID is etcd's, the one whose /proc we read.
  const etcd = spawn(
    'nsenter',
    [
      `--net=/run/netns/${nsName}`,
      '--',
      '/usr/bin/etcd',
      '--name', 'scale',
      '--data-dir', dataDir,
      '--listen-client-urls', URL_CLIENT,
      '--advertise-client-urls', URL_CLIENT,
      '--listen-peer-urls', `http://127.0.0.1:${PORT_PEER}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${PORT_PEER}`,
      '--initial-cluster', `scale=http://127.0.0.1:${PORT_PEER}`,
    ],
    { stdio: ['ignore', out, out] },
  );
  fs.closeSync(out);
  children.add(etcd);
  for (let i = 0; i < 100; i++) {
    if (etcd.pid !== undefined && fs.existsSync(`/proc/${etcd.pid}/comm`) && fs.readFileSync(`/proc/${etcd.pid}/comm`, 'utf8').trim() === 'etcd') return etcd;
    if (etcd.exitCode !== null) break;
    await sleep(20);
  }
  throw new Error(`etcd did not start: ${fs.readFileSync(logFile, 'utf8').slice(-1000)}`);
}

/** Runs one step's measuring half inside the namespace; its result, or why there is none. */
async function runStep(n: number, etcdPid: number, budgetS: number): Promise<StepResult | string> {
  const passOn = ['endpoints', 'changes', 'ttl', 'idle', 'concurrency', 'list-concurrency', 'deadline', 'storm-budget', 'storm-spread', 'max-etcd-rss', 'no-storm', 'no-list', 'legacy-agent', 'no-relist-storm'].flatMap((k) => (args.has(k) ? [`--${k}`, args.get(k)!] : []));
  const client = spawn('nsenter', [`--net=/run/netns/${nsName}`, '--', process.execPath, process.argv[1]!, '--measure', '--step', String(n), '--etcd-pid', String(etcdPid), '--step-budget', String(budgetS), ...passOn], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(client);
  let stdout = '';
  client.stdout!.on('data', (d: Buffer) => (stdout += String(d)));
  // A backstop past the step's own budget, for a measuring half that hangs.
  const timer = setTimeout(() => client.kill('SIGKILL'), (budgetS + 60) * 1000);
  await exited(client);
  clearTimeout(timer);
  children.delete(client);
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as StepResult;
  } catch {
    return `the measuring process exited (${client.exitCode ?? client.signalCode}) without a result: ${stdout.slice(-300)}`;
  }
}

function table(steps: StepResult[]): string {
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const rows = [
    '| hosts | keys | join s | list+watch s (list p50/p99 ms, list retries, failed renewals) | fan-out to all hosts p50/p99 ms | of which put (commit) p50/p99 ms | spread first→last watcher p50/p99 ms | etcd CPU idle/changing % | etcd ms/change | etcd RSS MB (KB/host) | keepalives/s (p50/p99 ms) | simulator CPU idle/changing % | other load idle/changing % | resume storm (etcd RSS peak, renewals failed) | relist storm (failed/all lists, etcd RSS peak, renewals failed) | status |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of steps) {
    const storm = (x: StormResult | undefined, lists: boolean) =>
      x ? `${f(x.s)} s (${lists ? `${x.listFailures}/${x.lists} lists failed, ` : ''}${f(x.etcdRssPeakMB, 0)} MB, ${x.keepalivesFailed} renewals failed)${x.converged ? '' : ' did not converge'}` : 'not run';
    rows.push(
      `| ${s.hosts} | ${s.keys} | ${f(s.setup.joinS, 2)} | ${f(s.setup.watchersReadyS, 2)} (${f(s.setup.listMs.p50)}/${f(s.setup.listMs.p99)}, ${s.setup.listRetries}, ${s.keepalive.setupFailed}) | ${f(s.fanout.allHostsMs.p50)}/${f(s.fanout.allHostsMs.p99)} | ${f(s.fanout.putMs.p50)}/${f(s.fanout.putMs.p99)} | ${f(s.fanout.spreadMs.p50)}/${f(s.fanout.spreadMs.p99)} | ${f(s.etcd.cpuIdlePct)}/${f(s.etcd.cpuChangingPct)} | ${f(s.etcd.cpuMsPerChange)} | ${f(s.etcd.rssMB)} (${f(s.etcd.kbPerHost, 0)}) | ${f(s.keepalive.perS)} (${f(s.keepalive.idleMs.p50)}/${f(s.keepalive.idleMs.p99)}) | ${f(s.simulator.cpuIdlePct)}/${f(s.simulator.cpuChangingPct)} | ${f(s.machine.othersIdlePct, 0)}/${f(s.machine.othersChangingPct, 0)} | ${storm(s.resumeStorm, false)} | ${storm(s.relistStorm, true)} | ${s.status === 'ok' ? 'ok' : `broke in ${s.broke?.phase}: ${s.broke?.reason}`} |`,
    );
  }
  return rows.join('\n');
}

async function orchestrate(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: it creates a network namespace for etcd');
  if (!fs.existsSync('/usr/bin/etcd')) throw new Error('no /usr/bin/etcd: apt-get install etcd-server');
  const curve = str(args, 'hosts', '10,100,300,500,1000').split(',').map(Number);
  if (curve.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--hosts wants whole numbers, like 10,100,300,1000`);
  const nofile = Number(/^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 1024);
  // Two sockets per simulated host (its keep-alive connection and its watch), in etcd and in the simulator.
  const needFds = 2 * Math.max(...curve) + 512;
  if (nofile < needFds) throw new Error(`the open-files limit is ${nofile}; ${Math.max(...curve)} hosts need about ${needFds}: raise it (ulimit -n ${needFds * 2}) and run again`);
  const budgetEnd = Date.now() + num(args, 'budget', 600) * 1000;

  nsName = `bscale${process.pid}`;
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-scale-'));
  must('ip', ['netns', 'add', nsName]);
  must('ip', ['-n', nsName, 'link', 'set', 'lo', 'up']);
  const version = /etcd Version: (\S+)/.exec(spawnSync('/usr/bin/etcd', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
  process.stderr.write(`cluster-scale: etcd ${version} in namespace ${nsName} on ${URL_CLIENT}; curve ${curve.join(', ')}\n`);

  const steps: StepResult[] = [];
  const notes: string[] = [];
  for (const n of curve) {
    const left = Math.floor((budgetEnd - Date.now()) / 1000);
    if (left < 30) {
      notes.push(`${n} hosts: not run, the run's budget was spent`);
      continue;
    }
    if (steps.some((s) => s.status === 'broke')) {
      notes.push(`${n} hosts: not run, a smaller cluster already broke`);
      continue;
    }
    const dataDir = path.join(tmpDir, `etcd-${n}`);
    const etcd = await startEtcd(dataDir, path.join(tmpDir, `etcd-${n}.log`));
    try {
      const r = await runStep(n, etcd.pid!, Math.min(num(args, 'step-budget', 240), left));
      if (typeof r === 'string') notes.push(`${n} hosts: ${r}; etcd log: ${fs.readFileSync(path.join(tmpDir, `etcd-${n}.log`), 'utf8').slice(-500)}`);
      else steps.push(r);
    } finally {
      etcd.kill('SIGKILL');
      await exited(etcd);
      children.delete(etcd);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }

  const summary = {
    tool: 'bench/tools/cluster-scale',
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '?', memMB: Math.round(os.totalmem() / 2 ** 20), kernel: os.release(), node: process.version, etcd: version },
    settings: { endpointsPerHost: num(args, 'endpoints', 3), changes: num(args, 'changes', 20), ttlS: num(args, 'ttl', 10), idleS: num(args, 'idle', 10), joinConcurrency: num(args, 'concurrency', 32), listConcurrency: num(args, 'list-concurrency', 8), deadlineMs: num(args, 'deadline', 2000), stormBudgetS: num(args, 'storm-budget', 60), stormSpreadMs: num(args, 'storm-spread', 0), maxEtcdRssMB: num(args, 'max-etcd-rss', 3072), noList: args.has('no-list'), noStorm: args.has('no-storm'), noRelistStorm: args.has('no-relist-storm'), legacyAgent: args.has('legacy-agent') },
    steps,
    notes,
  };
  const json = JSON.stringify(summary, null, 2);
  if (args.has('out')) fs.writeFileSync(str(args, 'out'), `${json}\n`);
  console.log(json);
  console.log();
  console.log(table(steps));
  for (const n of notes) console.log(`\n- ${n}`);
}

if (args.has('measure')) {
  measureStep().then(
    (r) => {
      console.log(JSON.stringify(r));
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`cluster-scale: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
} else {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      cleanup();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
  orchestrate()
    .catch((err) => {
      process.stderr.write(`cluster-scale: ${(err as Error).message}\n`);
      process.exitCode = 1;
    })
    .finally(cleanup);
}
