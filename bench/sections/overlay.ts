/**
 * §8 Overlay networks across hosts (VXLAN, cluster state in etcd), on a simulated cluster built
 * as in the tests (test/helpers/cluster.ts): three sandbox hosts whose eth0 sits on an underlay
 * bridge (192.168.90.0/24), a three-member etcd inside the first hosts' namespaces on their
 * underlay addresses, and a berth daemon per host started with --cluster-store.
 *
 * 1. Convergence. A container is started on host A (create + start through A's API, as `berth
 *    run -d`); from the moment that call returns, a prober already running in a container on host
 *    B tries to reach the new address, and the first echo reply ends the sample. The prober runs
 *    in two ways:
 *    - "fresh client": it does its own ARP from user space (a request every 1 ms, so it never
 *      waits on the kernel's 1 s ARP retransmit timer), and once B's ARP proxy answers, it sends
 *      ICMP echo requests through the kernel (every 2 ms) until one is answered. This is the
 *      earliest moment a client starting at any instant could reach the endpoint, ±1 ms;
 *    - "kernel ARP": it sends echo requests every 1 ms from the first instant and leaves ARP to
 *      the kernel with its default timers, as an ordinary program does.
 *    Timestamps all come from CLOCK_MONOTONIC (process.hrtime in every process). Besides the
 *    prober, a netlink listener in B's host namespace timestamps B's three kernel entries for the
 *    endpoint (the VXLAN device's FDB entry, the bridge's and the neighbour entry), and an
 *    `etcdctl watch` in host C timestamps the announcement's arrival at a watcher.
 * 2. VXLAN throughput: iperf3, one TCP stream, container on A → container on B over the overlay,
 *    against the bare underlay host A → host B, interleaved in the same run.
 * 3. Encrypted overlay (`-o encrypted`, WireGuard through wireguard-go): measured the same way
 *    when this build creates such a network; otherwise the reason it gives is recorded.
 *
 * Nothing runs in the machine's own namespace: every process is started in a sandbox namespace
 * (nsenter --net) and killed by its PID; etcd and iperf3 listen only on sandbox addresses.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import { Cluster } from '../../test/helpers/cluster.js';
import type { Sandbox } from '../../test/helpers/sandbox.js';
import { daemonOps, type BenchContext } from '../lib/context.js';
import { inNs, sleep } from '../lib/exec.js';
import { BUSYBOX, REPO } from '../lib/paths.js';
import { startServer } from '../lib/procs.js';
import { killChild, Scope } from '../lib/scope.js';
import { msSince, ratio, round, summarize, type Summary } from '../lib/stats.js';

export interface ConvergenceSample {
  ok: boolean;
  /** A's create + start through the API, as the caller sees it. */
  runMs: number;
  /** A's daemon-side `container run`. */
  daemonRunMs?: number;
  /** The announcement's arrival at the watcher, and B's last kernel entry, from A's run returning (negative: before it returned). */
  watchMs?: number;
  programmedMs?: number;
  /** From the announcement's arrival at the watcher to B's last kernel entry: B's agent and kernel. */
  agentMs?: number;
  /** From the prober's trigger (A's run returning, or the announcement reaching the watcher). */
  wakeMs?: number;
  arpMs?: number;
  pingMs?: number;
  /** From A's run starting to the first echo reply. */
  fromStartMs?: number;
  arpTries?: number;
  echoTries?: number;
  error?: string;
}

export interface ConvergenceRun {
  /** fresh: the prober does its own ARP (no kernel retransmit timer); kernel: ARP left to the kernel. */
  client: 'fresh' | 'kernel';
  /** When the prober starts: as A's run returns, or as the announcement reaches a watcher. */
  trigger: 'return' | 'announce';
  samples: ConvergenceSample[];
  /** Summaries of the successful samples, by figure. */
  summary: Record<string, Summary>;
  failures: number;
  /** Samples in which B had programmed the endpoint before A's run returned. */
  programmedBeforeReturn: number;
}

export interface ThroughputRun {
  key: 'underlay' | 'overlay' | 'encrypted' | 'tunnel';
  label: string;
  gbps: number[];
  retransmits: number[];
  median?: number;
  errors: string[];
}

export interface OverlayResult {
  hosts: number;
  etcdMembers: number;
  subnet: string;
  /** eth0 MTU in the overlay's containers. */
  mtu?: number;
  warmup: number;
  convergence: ConvergenceRun[];
  throughput: { seconds: number; runs: number; paths: ThroughputRun[]; ratio: number; encryptedRatio?: number };
  encrypted: { available: boolean; reason?: string; mtu?: number };
  /** Warnings and errors the daemons logged during the section (the first few). */
  daemonProblems: string[];
  loadAvg: { start: number[]; end: number[] };
}

const NETWORK = 'bb-ov';
const ENC_NETWORK = 'bb-ovenc';
const SUBNET = '10.93.0.0/16';
const ENC_SUBNET = '10.94.0.0/16';
/** Convergence targets: a fresh address (and so a fresh MAC) per sample, from here up. */
const TARGET_PREFIX = '10.93.1';
const IPERF_PORT = 5201;
const A = 0;
const B = 1;
const C = 2;

/**
 * The prober and the netlink listener: one Node script, run inside a namespace, that speaks one
 * JSON line per event on stdout. It binds libc through koffi (berth's own dependency): raw ARP on
 * an AF_PACKET socket, ICMP echo on a raw socket, and an rtnetlink socket on RTNLGRP_NEIGH.
 */
const PROBE_SCRIPT = String.raw`
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as readline from 'node:readline';
const [mode, repo, ifname] = process.argv.slice(2);
const koffi = createRequire(repo + '/package.json')('koffi');
const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int domain, int type, int protocol)');
const bind = libc.func('int bind(int fd, const void *addr, uint32_t len)');
const sendto = libc.func('intptr_t sendto(int fd, const void *buf, uintptr_t len, int flags, const void *addr, uint32_t alen)');
const recv = libc.func('intptr_t recv(int fd, _Out_ void *buf, uintptr_t len, int flags)');
const poll = libc.func('int poll(_Inout_ void *fds, uint64_t nfds, int timeout)');
const ifIndex = libc.func('unsigned int if_nametoindex(const char *name)');
const EAGAIN = 11, EINTR = 4, ENOBUFS = 105, MSG_DONTWAIT = 0x40;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const now = () => process.hrtime.bigint();
const check = (r, what) => { if (Number(r) < 0) { out({ error: what + ': errno ' + koffi.errno() }); process.exit(1); } return Number(r); };
const ipBytes = (ip) => Buffer.from(ip.split('.').map(Number));

if (mode === 'monitor') {
  const fd = check(socket(16, 3, 0), 'netlink socket');
  const sa = Buffer.alloc(12);
  sa.writeUInt16LE(16, 0);
  sa.writeUInt32LE(4, 8); // RTMGRP_NEIGH: neighbour entries and bridge/VXLAN FDB entries
  check(bind(fd, sa, 12), 'netlink bind');
  out({ ready: true });
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    const n = Number(recv(fd, buf, buf.length, 0));
    const t = now();
    if (n < 0) {
      const e = koffi.errno();
      if (e === EINTR) continue;
      if (e === ENOBUFS) { out({ t: String(t), overrun: true }); continue; }
      check(n, 'netlink recv');
    }
    for (let off = 0; off + 16 <= n; ) {
      const len = buf.readUInt32LE(off);
      const type = buf.readUInt16LE(off + 4);
      if (len < 16) break;
      if ((type === 28 || type === 29) && len >= 28) {
        const b = off + 16;
        const ev = { t: String(t), ev: type === 28 ? 'new' : 'del', family: buf[b], ifindex: buf.readInt32LE(b + 4), state: buf.readUInt16LE(b + 8), flags: buf[b + 10] };
        for (let a = b + 12; a + 4 <= off + len; ) {
          const rl = buf.readUInt16LE(a);
          const rt = buf.readUInt16LE(a + 2) & 0x3fff;
          if (rl < 4) break;
          const v = buf.subarray(a + 4, a + rl);
          if (rt === 1 && v.length === 4) ev.dst = [...v].join('.');
          if (rt === 2 && v.length === 6) ev.mac = [...v].map((x) => x.toString(16).padStart(2, '0')).join(':');
          a += (rl + 3) & ~3;
        }
        out(ev);
      }
      off += (len + 3) & ~3;
    }
  }
}

if (mode === 'probe') {
  const index = ifIndex(ifname);
  const nic = (os.networkInterfaces()[ifname] ?? []).find((a) => a.family === 'IPv4');
  if (!index || !nic) { out({ error: 'no ' + ifname + ' with an IPv4 address here' }); process.exit(1); }
  const myMac = Buffer.from(nic.mac.split(':').map((h) => parseInt(h, 16)));
  const myIp = ipBytes(nic.address);
  const arpFd = check(socket(17, 3, 0x0608), 'packet socket'); // AF_PACKET, SOCK_RAW, htons(ETH_P_ARP)
  const sll = Buffer.alloc(20);
  sll.writeUInt16LE(17, 0);
  sll[2] = 0x08; sll[3] = 0x06;
  sll.writeInt32LE(index, 4);
  sll[11] = 6;
  sll.fill(0xff, 12, 18);
  check(bind(arpFd, sll, 20), 'packet bind');
  const icmpFd = check(socket(2, 3, 1), 'icmp socket'); // AF_INET, SOCK_RAW, IPPROTO_ICMP
  const id = process.pid & 0xffff;
  let seq = 0;
  const rbuf = Buffer.alloc(2048);
  const pfd = Buffer.alloc(8);
  // Waits until 'until' for a packet on fd that match() accepts; true if one came.
  const waitFor = (fd, until, match) => {
    for (;;) {
      for (;;) {
        const n = Number(recv(fd, rbuf, rbuf.length, MSG_DONTWAIT));
        if (n < 0) { const e = koffi.errno(); if (e === EAGAIN || e === EINTR) break; check(n, 'recv'); }
        if (match(rbuf, n)) return true;
      }
      const left = Number(until - now()) / 1e6;
      if (left <= 0) return false;
      pfd.writeInt32LE(fd, 0); pfd.writeInt16LE(1, 4); pfd.writeInt16LE(0, 6);
      poll(pfd, 1, Math.max(1, Math.ceil(left)));
    }
  };
  const drain = (fd) => waitFor(fd, 0n, () => false);
  const arpFrame = (target) => {
    const f = Buffer.alloc(42);
    f.fill(0xff, 0, 6); myMac.copy(f, 6); f.writeUInt16BE(0x0806, 12);
    f.writeUInt16BE(1, 14); f.writeUInt16BE(0x0800, 16); f[18] = 6; f[19] = 4; f.writeUInt16BE(1, 20);
    myMac.copy(f, 22); myIp.copy(f, 28); target.copy(f, 38);
    return f;
  };
  const isArpReply = (target) => (b, n) => n >= 42 && b.readUInt16BE(12) === 0x0806 && b.readUInt16BE(20) === 2 && b.subarray(28, 32).equals(target);
  const sin = (target) => { const s = Buffer.alloc(16); s.writeUInt16LE(2, 0); target.copy(s, 4); return s; };
  const echo = () => {
    const p = Buffer.alloc(16);
    p[0] = 8; p.writeUInt16BE(id, 4); p.writeUInt16BE(++seq & 0xffff, 6);
    let sum = 0;
    for (let i = 0; i < p.length; i += 2) sum += p.readUInt16BE(i);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    p.writeUInt16BE(~sum & 0xffff, 2);
    return p;
  };
  const isEchoReply = (target) => (b, n) => {
    if (n < 28) return false;
    const ihl = (b[0] & 0x0f) * 4;
    return b.subarray(12, 16).equals(target) && b[ihl] === 0 && b.readUInt16BE(ihl + 4) === id;
  };
  out({ ready: true, ip: nic.address, mac: nic.mac });
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const req = JSON.parse(line);
    const t0 = now();
    const target = ipBytes(req.ip);
    const deadline = t0 + BigInt(req.deadlineMs) * 1000000n;
    const res = { t0: String(t0), arpTries: 0, echoTries: 0 };
    drain(arpFd);
    drain(icmpFd);
    if (req.mode === 'fresh') {
      const frame = arpFrame(target);
      while (now() < deadline) {
        check(sendto(arpFd, frame, frame.length, 0, sll, 20), 'send arp');
        res.arpTries++;
        if (waitFor(arpFd, now() + 1000000n, isArpReply(target))) { res.tArp = String(now()); break; }
      }
      if (!res.tArp) { out({ ...res, error: 'no ARP answer for ' + req.ip + ' within ' + req.deadlineMs + ' ms' }); return; }
    }
    const to = sin(target);
    const interval = req.mode === 'fresh' ? 2000000n : 1000000n;
    while (now() < deadline) {
      const p = echo();
      check(sendto(icmpFd, p, p.length, 0, to, 16), 'send echo');
      res.echoTries++;
      if (waitFor(icmpFd, now() + interval, isEchoReply(target))) { res.tEcho = String(now()); break; }
    }
    if (!res.tEcho) res.error = 'no echo reply from ' + req.ip + ' within ' + req.deadlineMs + ' ms';
    out(res);
  });
}
`;

/** A long-running helper inside a namespace that prints JSON lines, each stamped on arrival. */
class LineProcess {
  readonly lines: { at: bigint; doc: Record<string, unknown> }[] = [];
  /** Called with each line as it arrives, before anyone awaiting it wakes up. */
  onLine: ((doc: Record<string, unknown>) => void) | undefined;
  private waiters: (() => void)[] = [];
  private stderr = '';

  constructor(readonly child: ChildProcess, readonly what: string) {
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      const at = process.hrtime.bigint();
      partial += String(d);
      const parts = partial.split('\n');
      partial = parts.pop()!;
      for (const p of parts) {
        if (!p.trim()) continue;
        let doc: Record<string, unknown>;
        try {
          doc = JSON.parse(p) as Record<string, unknown>;
        } catch {
          doc = { text: p };
        }
        this.lines.push({ at, doc });
        this.onLine?.(doc);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + String(d)).slice(-4000)));
    child.once('exit', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** The first line from index `from` on that `pick` accepts, within `timeoutMs`. */
  async next(from: number, pick: (doc: Record<string, unknown>) => boolean, timeoutMs: number): Promise<{ at: bigint; doc: Record<string, unknown> }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find((l) => pick(l.doc));
      if (hit) return hit;
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`${this.what} exited: ${this.stderr.slice(-500)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.what}: no answer within ${timeoutMs} ms: ${this.stderr.slice(-500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Lines seen so far (the section is bounded, so they are all kept). */
  get total(): number {
    return this.lines.length;
  }
}

/** The daemon's API with every call bounded in time. */
class HostApi {
  private readonly client: ApiClient;

  constructor(readonly sb: Sandbox) {
    this.client = new ApiClient(`unix://${sb.socket}`);
  }

  request<T = unknown>(method: string, p: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${method} ${p}: no answer from ${this.sb.name}'s daemon in ${timeoutMs / 1000} s`)), timeoutMs);
    });
    return Promise.race([this.client.request<T>(method, p, body), timeout]).finally(() => clearTimeout(timer));
  }

  /** `berth run -d --name NAME --network NET [--ip IP] -- busybox sleep 3600`. */
  run(name: string, network: string, ip?: string): Promise<{ Id: string }> {
    return this.request<{ Id: string }>('POST', '/containers/create?start=1&detach=1', { name, cmd: [BUSYBOX, 'sleep', '3600'], networkMode: network, ip });
  }

  async info(id: string): Promise<{ netns: string; ip: string; mac: string }> {
    const c = await this.request<{ NetworkSettings: { SandboxKey: string; Networks: Record<string, { IPAddress: string; MacAddress: string }> } }>('GET', `/containers/${id}/json`);
    const net = Object.values(c.NetworkSettings.Networks)[0];
    if (!net) throw new Error(`container ${id} has no network`);
    return { netns: c.NetworkSettings.SandboxKey, ip: net.IPAddress, mac: net.MacAddress };
  }

  remove(id: string): Promise<unknown> {
    return this.request('DELETE', `/containers/${id}?force=1`);
  }

  close(): void {
    this.client.close();
  }
}

const ns = (t: bigint) => Number(t) / 1e6;

export async function overlayBench(ctx: BenchContext): Promise<OverlayResult> {
  const scope = new Scope('overlay');
  try {
    return await measure(ctx, scope);
  } finally {
    await scope.close();
  }
}

async function measure(ctx: BenchContext, scope: Scope): Promise<OverlayResult> {
  const loadStart = os.loadavg().map((l) => round(l, 2));
  const members = 3;
  ctx.log(`§8 building a 3-host cluster (underlay bridge, ${members}-member etcd, a daemon per host)`);
  const cluster = await Cluster.create({ hosts: 3, members, ttl: 10 });
  scope.defer('cluster', () => cluster.destroy());
  const apis = cluster.hosts.map((h) => new HostApi(h));
  scope.defer('api clients', () => apis.forEach((a) => a.close()));
  // Containers are removed through the API while etcd still runs (the cluster's destroy stops it first).
  const started: { host: number; id: string }[] = [];
  scope.defer('containers', async () => {
    for (const c of started.reverse()) await apis[c.host]!.remove(c.id).catch(() => undefined);
  });
  const logFrom = cluster.hosts.map((h) => h.daemonLog.length);

  await apis[A]!.request('POST', '/networks/create', { Name: NETWORK, Driver: 'overlay', IPAM: { Config: [{ Subnet: SUBNET }] } });
  for (const i of [B, C]) await until(`host ${i} lists ${NETWORK}`, 10_000, async () => (await apis[i]!.request('GET', `/networks/${NETWORK}`).then(() => true, () => false)));

  const script = path.join(scope.tempDir('overlay'), 'probe.mjs');
  fs.writeFileSync(script, PROBE_SCRIPT);

  // The prober's container on B, and the two iperf3 containers.
  const probeC = (await apis[B]!.run('bb-ov-probe', NETWORK)).Id;
  started.push({ host: B, id: probeC });
  const probeInfo = await apis[B]!.info(probeC);
  const mtu = Number(/mtu (\d+)/.exec((await inNs(probeInfo.netns, 'ip', ['-o', 'link', 'show', 'eth0'])).stdout)?.[1]) || undefined;
  const prober = new LineProcess(scope.spawn('nsenter', [`--net=${probeInfo.netns}`, '--', process.execPath, script, 'probe', REPO, 'eth0'], { stdio: ['pipe', 'pipe', 'pipe'] }), 'prober in B’s container');
  await prober.next(0, (d) => d.ready === true || d.error !== undefined, 15_000).then((l) => {
    if (l.doc.error) throw new Error(`prober: ${String(l.doc.error)}`);
  });
  const monitor = new LineProcess(scope.spawn('nsenter', [`--net=${cluster.hosts[B]!.hostNs}`, '--', process.execPath, script, 'monitor', REPO], { stdio: ['ignore', 'pipe', 'pipe'] }), 'netlink listener in host B');
  await monitor.next(0, (d) => d.ready === true || d.error !== undefined, 15_000);
  const etcdUrls = [0, 1, 2].slice(0, members).map((i) => `http://${cluster.address(i)}:2379`).join(',');
  const watcher = new LineProcess(
    scope.spawn('nsenter', [`--net=${cluster.hosts[C]!.hostNs}`, '--', 'etcdctl', '--endpoints', etcdUrls, 'watch', '--prefix', '/berth/v1/endpoints/', '-w', 'json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ETCDCTL_API: '3' } }),
    'etcdctl watch in host C',
  );
  // etcdctl needs a moment to connect and open its watch; the warm-up samples also cover a slow start.
  await sleep(500);

  const warmup = ctx.quick ? 1 : 2;
  const wanted = ctx.quick ? 3 : 20;
  const budgetMs = Math.min(ctx.quick ? 25_000 : 120_000, Math.max(10_000, ctx.left() / 3));
  const convergence = await convergenceRuns(ctx, { apis, cluster, prober, monitor, watcher, warmup, wanted, budgetMs });

  const seconds = ctx.quick ? 2 : 5;
  const runs = ctx.quick ? 1 : 3;
  const plain = await overlayPair(apis, NETWORK, started);
  const paths: ThroughputPath[] = [
    { key: 'underlay', label: 'bare underlay, host A → host B (veth, bridge, veth)', serverNs: cluster.hosts[B]!.hostNs, clientNs: cluster.hosts[A]!.hostNs, target: cluster.address(B) },
    { key: 'overlay', label: 'overlay, container on A → container on B (VXLAN)', serverNs: plain.server.netns, clientNs: plain.client.netns, target: plain.server.ip },
  ];
  const encrypted: OverlayResult['encrypted'] = { available: false };
  try {
    await apis[A]!.request('POST', '/networks/create', { Name: ENC_NETWORK, Driver: 'overlay', Options: { encrypted: '' }, IPAM: { Config: [{ Subnet: ENC_SUBNET }] } });
    encrypted.available = true;
  } catch (err) {
    encrypted.reason = (err as Error).message;
    ctx.log(`§8 encrypted overlay not available: ${encrypted.reason}`);
  }
  if (encrypted.available) {
    try {
      await until(`host B lists ${ENC_NETWORK}`, 10_000, async () => (await apis[B]!.request('GET', `/networks/${ENC_NETWORK}`).then(() => true, () => false)));
      const enc = await overlayPair(apis, ENC_NETWORK, started);
      encrypted.mtu = Number(/mtu (\d+)/.exec((await inNs(enc.client.netns, 'ip', ['-o', 'link', 'show', 'eth0'])).stdout)?.[1]) || undefined;
      paths.push({ key: 'encrypted', label: 'encrypted overlay (-o encrypted: VXLAN in WireGuard, wireguard-go), container on A → container on B', serverNs: enc.server.netns, clientNs: enc.client.netns, target: enc.server.ip });
      // The WireGuard tunnel alone, between the hosts' tunnel addresses: what the encrypted overlay rides on.
      const tunnelB = /inet (\S+)\/\d+ .* (bwg\w+)/.exec((await inNs(cluster.hosts[B]!.hostNs, 'ip', ['-o', '-4', 'addr', 'show'])).stdout)?.[1];
      if (tunnelB) paths.push({ key: 'tunnel', label: 'WireGuard tunnel alone (wireguard-go), host A → host B at its tunnel address', serverNs: cluster.hosts[B]!.hostNs, clientNs: cluster.hosts[A]!.hostNs, target: tunnelB });
    } catch (err) {
      encrypted.available = false;
      encrypted.reason = `the network was created, but its containers did not reach each other: ${(err as Error).message}`;
      ctx.log(`§8 encrypted overlay: ${encrypted.reason}`);
    }
  }
  for (const p of paths) await until(`${p.key}: ${p.target} answers ping`, 10_000, async () => (await inNs(p.clientNs, BUSYBOX, ['ping', '-c', '1', '-W', '1', p.target], { timeoutMs: 3000 })).code === 0);
  ctx.log(`§8 iperf3: ${runs} × ${seconds} s per path (${paths.map((p) => p.key).join(', ')})`);
  const results: ThroughputRun[] = paths.map((p) => ({ key: p.key, label: p.label, gbps: [], retransmits: [], errors: [] }));
  for (let r = 0; r < runs; r++) {
    // Rotate the order each round, so drift on the shared machine hits every path alike.
    for (let k = 0; k < paths.length; k++) {
      const j = (k + r) % paths.length;
      try {
        const t = await iperf(scope, paths[j]!, seconds);
        results[j]!.gbps.push(t.gbps);
        results[j]!.retransmits.push(t.retransmits);
      } catch (err) {
        results[j]!.errors.push((err as Error).message);
        ctx.log(`§8 iperf3 ${paths[j]!.key}: ${(err as Error).message}`);
      }
    }
  }
  for (const t of results) t.median = t.gbps.length ? summarize(t.gbps).p50 : undefined;
  const med = (k: string) => results.find((t) => t.key === k)?.median;

  await killChild(watcher.child);
  return {
    hosts: cluster.hosts.length,
    etcdMembers: members,
    subnet: SUBNET,
    mtu,
    warmup,
    convergence,
    throughput: { seconds, runs, paths: results, ratio: ratio(med('overlay'), med('underlay')), encryptedRatio: encrypted.available ? ratio(med('encrypted'), med('overlay')) : undefined },
    encrypted,
    daemonProblems: problems(cluster, logFrom),
    loadAvg: { start: loadStart, end: os.loadavg().map((l) => round(l, 2)) },
  };
}

interface ThroughputPath {
  key: ThroughputRun['key'];
  label: string;
  serverNs: string;
  clientNs: string;
  target: string;
}

/** A server container on B and a client container on A, on `network`. */
async function overlayPair(apis: HostApi[], network: string, started: { host: number; id: string }[]) {
  const tag = network === NETWORK ? 'tp' : 'enc';
  const s = (await apis[B]!.run(`bb-ov-${tag}-server`, network)).Id;
  started.push({ host: B, id: s });
  const c = (await apis[A]!.run(`bb-ov-${tag}-client`, network)).Id;
  started.push({ host: A, id: c });
  return { server: await apis[B]!.info(s), client: await apis[A]!.info(c) };
}

async function iperf(scope: Scope, p: ThroughputPath, seconds: number): Promise<{ gbps: number; retransmits: number }> {
  // The server listens on the target address only, for one test.
  const server = await startServer(scope, p.serverNs, 'iperf3', ['-s', '-1', '--forceflush', '-B', p.target, '-p', String(IPERF_PORT)], /Server listening/);
  try {
    const r = await inNs(p.clientNs, 'iperf3', ['-c', p.target, '-p', String(IPERF_PORT), '-t', String(seconds), '-J'], { timeoutMs: (seconds + 20) * 1000 });
    const doc = JSON.parse(r.stdout || '{}') as { end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } }; error?: string };
    if (!doc.end?.sum_received) throw new Error(`iperf3 ${p.key}: ${doc.error ?? r.stderr.slice(0, 300)}`);
    return { gbps: Math.round(doc.end.sum_received.bits_per_second / 1e7) / 100, retransmits: doc.end.sum_sent?.retransmits ?? 0 };
  } finally {
    await killChild(server);
  }
}

interface ConvergenceDeps {
  apis: HostApi[];
  cluster: Cluster;
  prober: LineProcess;
  monitor: LineProcess;
  watcher: LineProcess;
  warmup: number;
  wanted: number;
  budgetMs: number;
}

type Client = ConvergenceRun['client'];
type Trigger = ConvergenceRun['trigger'];
const PROBERS: { client: Client; trigger: Trigger }[] = [
  { client: 'fresh', trigger: 'return' },
  { client: 'kernel', trigger: 'return' },
  { client: 'fresh', trigger: 'announce' },
  { client: 'kernel', trigger: 'announce' },
];
const FIGURES = ['runMs', 'daemonRunMs', 'watchMs', 'programmedMs', 'agentMs', 'wakeMs', 'arpMs', 'pingMs', 'fromStartMs'] as const;

/**
 * Samples rotate through the probers, each with a fresh address (and so a fresh MAC), so no
 * neighbour state of an earlier sample is left in B's prober container or on B's VXLAN device.
 */
async function convergenceRuns(ctx: BenchContext, d: ConvergenceDeps): Promise<ConvergenceRun[]> {
  const samples: ConvergenceSample[][] = PROBERS.map(() => []);
  const total = (d.warmup + d.wanted) * PROBERS.length;
  const t0 = Date.now();
  ctx.log(`§8 convergence: ${d.wanted} samples for each of ${PROBERS.length} probers after ${d.warmup} warm-up (budget ${Math.round(d.budgetMs / 1000)} s)`);
  for (let k = 0; k < total && k < 250; k++) {
    const recorded = Math.floor(k / PROBERS.length) >= d.warmup;
    if (recorded && Date.now() - t0 > d.budgetMs && samples.every((l) => l.length >= Math.min(3, d.wanted))) {
      ctx.log(`§8 convergence: budget spent after ${samples[0]!.length} samples per prober`);
      break;
    }
    const p = PROBERS[k % PROBERS.length]!;
    const s = await convergenceSample(d, p.client, p.trigger, `${TARGET_PREFIX}.${k + 1}`, `bb-ov-c${k}`);
    if (!s.ok) ctx.log(`§8 convergence sample ${k} (${p.client}, from ${p.trigger}): ${s.error}`);
    if (recorded) samples[k % PROBERS.length]!.push(s);
  }
  return PROBERS.map((p, i) => {
    const list = samples[i]!;
    const ok = list.filter((s) => s.ok);
    const summary: Record<string, Summary> = {};
    for (const key of FIGURES) {
      const xs = ok.map((s) => s[key]).filter((v): v is number => v !== undefined && Number.isFinite(v));
      if (xs.length) summary[key] = summarize(xs);
    }
    return { ...p, samples: list, summary, failures: list.length - ok.length, programmedBeforeReturn: ok.filter((s) => (s.programmedMs ?? 0) < 0).length };
  });
}

async function convergenceSample(d: ConvergenceDeps, client: Client, trigger: Trigger, ip: string, name: string): Promise<ConvergenceSample> {
  const apiA = d.apis[A]!;
  const monFrom = d.monitor.total;
  const watchFrom = d.watcher.total;
  const probeFrom = d.prober.total;
  const logFrom = d.cluster.hosts[A]!.daemonLog.length;
  const deadlineMs = client === 'fresh' ? 2000 : 3000;
  let tTrigger: bigint | undefined;
  const fire = () => {
    tTrigger = process.hrtime.bigint();
    d.prober.child.stdin!.write(`${JSON.stringify({ mode: client, ip, deadlineMs })}\n`);
  };
  // From the announcement: the prober is started from the watcher's data handler, as the line arrives.
  if (trigger === 'announce') d.watcher.onLine = (doc) => {
    if (tTrigger === undefined && watchedIp(doc) === ip) fire();
  };
  const tStart = process.hrtime.bigint();
  let id: string;
  try {
    id = (await apiA.run(name, NETWORK, ip)).Id;
  } catch (err) {
    d.watcher.onLine = undefined;
    return { ok: false, runMs: msSince(tStart), error: `run on A: ${(err as Error).message}` };
  }
  const tRet = process.hrtime.bigint();
  if (trigger === 'return') fire();
  const s: ConvergenceSample = { ok: false, runMs: ns(tRet - tStart) };
  try {
    if (trigger === 'announce') await until(`the watcher sees ${ip} announced`, 3000, async () => tTrigger !== undefined, 1);
    const res = (await d.prober.next(probeFrom, (doc) => doc.t0 !== undefined, deadlineMs + 5000)).doc as { t0: string; tArp?: string; tEcho?: string; arpTries: number; echoTries: number; error?: string };
    const base = tTrigger!;
    s.wakeMs = ns(BigInt(res.t0) - base);
    s.arpTries = res.arpTries;
    s.echoTries = res.echoTries;
    if (res.tArp) s.arpMs = ns(BigInt(res.tArp) - base);
    if (res.tEcho) {
      s.pingMs = ns(BigInt(res.tEcho) - base);
      s.fromStartMs = ns(BigInt(res.tEcho) - tStart);
      s.ok = true;
    } else s.error = res.error;
    const info = await apiA.info(id);
    const mac = info.mac.toLowerCase();
    const announced = d.watcher.lines.slice(watchFrom).find((l) => watchedIp(l.doc) === ip);
    if (announced) s.watchMs = ns(announced.at - tRet);
    // B's three entries arrive in one netlink write; the sample counts from the last of them.
    const entries = d.monitor.lines.slice(monFrom).filter((l) => l.doc.ev === 'new' && (l.doc.dst === ip || l.doc.mac === mac));
    const neigh = entries.find((l) => l.doc.family === 2 && l.doc.dst === ip);
    const fdbs = entries.filter((l) => l.doc.family === 7 && l.doc.mac === mac);
    if (neigh && fdbs.length >= 2) {
      const last = [neigh, ...fdbs].map((l) => BigInt(String(l.doc.t))).reduce((a, b) => (a > b ? a : b));
      s.programmedMs = ns(last - tRet);
      if (announced) s.agentMs = ns(last - announced.at);
    } else if (s.ok) s.error = `B's netlink listener saw ${neigh ? 'the neighbour entry' : 'no neighbour entry'} and ${fdbs.length} FDB entries for ${ip}`;
    const op = daemonOps(d.cluster.hosts[A]!.daemonLog.slice(logFrom)).find((o) => o.msg === 'container run');
    if (op) s.daemonRunMs = op.ms;
  } catch (err) {
    s.ok = false;
    s.error = (err as Error).message;
  } finally {
    d.watcher.onLine = undefined;
    await apiA.remove(id).catch((err: Error) => (s.error = `${s.error ?? ''} rm on A: ${err.message}`.trim()));
    // B removes the entries and the next sample starts on a quiet machine.
    await sleep(250);
  }
  return s;
}

/** The endpoint address in an `etcdctl watch -w json` response (the first put event). */
function watchedIp(doc: Record<string, unknown>): string | undefined {
  const events = (doc.Events ?? doc.events) as { type?: number | string; kv?: { value?: string } }[] | undefined;
  for (const e of events ?? []) {
    if (e.type !== undefined && e.type !== 0 && e.type !== 'PUT') continue;
    try {
      const v = JSON.parse(Buffer.from(e.kv?.value ?? '', 'base64').toString()) as { ip?: string };
      if (v.ip) return v.ip;
    } catch {
      /* not an endpoint record */
    }
  }
  return undefined;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>, stepMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    if (await check()) return;
    if (Date.now() > deadline) break;
    await sleep(stepMs);
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
}

/** The daemons' warnings and errors since the section started (JSON log lines), a few each. */
function problems(cluster: Cluster, from: number[]): string[] {
  const out: string[] = [];
  cluster.hosts.forEach((h, i) => {
    const lines = h.daemonLog
      .slice(from[i] ?? 0)
      .split('\n')
      .filter((l) => /"level":"(warn|error)"/.test(l));
    for (const l of lines.slice(0, 5)) out.push(`host ${'ABC'[i]}: ${l.slice(0, 400)}`);
    if (lines.length > 5) out.push(`host ${'ABC'[i]}: … ${lines.length - 5} more`);
  });
  return out;
}
