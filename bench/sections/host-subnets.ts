/**
 * §9 Per-host subnets across a cluster (Flannel's model, docs/host-subnets.md): for each backend
 * (vxlan, host-gw, udp), a simulated cluster as in the tests (test/helpers/cluster.ts: sandbox
 * hosts on an underlay bridge, one etcd member in the first host's namespace, a daemon per host
 * started with --cluster-cidr and --backend); and the fan (docs/fan.md), on the same kind of
 * hosts with no etcd at all.
 *
 * 1. Convergence: a host joins while a container on host 0 pings the joining host's bridge
 *    gateway every 10 ms; from the moment the new host's lease appears in etcd (polled every 5 ms)
 *    to the first echo reply. Hosts 1 and 2 join one after the other: two samples per backend.
 *    The fan has no lease: from `berth run` returning on host 1 to the first reply to a container
 *    on host 0 pinging the new container every 10 ms.
 * 2. Round trip: ping container on host 0 → container on host 1, against host 0 → host 1 on the
 *    bare underlay, rounds alternating; per-packet times.
 * 3. Throughput: iperf3 (one TCP stream) container → container across the hosts, against host →
 *    host on the underlay, rounds alternating.
 *
 * Every process runs in a sandbox namespace (nsenter --net) and is killed by its PID; etcd and
 * iperf3 listen only on sandbox addresses; the cluster is destroyed after each backend, also after
 * a failure.
 */
import { spawn } from 'node:child_process';
import { ApiClient } from '../../src/api/client.js';
import { Cluster } from '../../test/helpers/cluster.js';
import type { Sandbox } from '../../test/helpers/sandbox.js';
import type { BenchContext } from '../lib/context.js';
import { sleep } from '../lib/exec.js';
import { BUSYBOX } from '../lib/paths.js';
import { ratio, round, summarize, type Summary } from '../lib/stats.js';

export type HostSubnetBackend = 'vxlan' | 'host-gw' | 'udp' | 'fan';

export interface BackendRun {
  backend: HostSubnetBackend;
  cidr: string;
  /** eth0 MTU of the containers on the default bridge. */
  mtu?: number;
  /** Lease in etcd → first echo reply from a container on a peer, ms (one per joining host); for the fan, a new container's run → its first reply. */
  firstPacketMs: number[];
  rttMs: { container: Summary; underlay: Summary; ratio: number };
  throughput: { container: number[]; underlay: number[]; containerMedian: number; underlayMedian: number; ratio: number };
  errors: string[];
}

export interface HostSubnetsResult {
  hosts: number;
  rounds: number;
  pingsPerRound: number;
  iperfSeconds: number;
  backends: BackendRun[];
}

const BACKENDS: [HostSubnetBackend, string][] = [
  ['vxlan', '10.5.0.0/16'],
  ['host-gw', '10.6.0.0/16'],
  ['udp', '10.7.0.0/16'],
];

const median = (xs: readonly number[]) => summarize(xs).p50;

export async function hostSubnetsBench(ctx: BenchContext): Promise<HostSubnetsResult> {
  const rounds = ctx.quick ? 1 : 3;
  const pings = ctx.quick ? 20 : 50;
  const iperfSeconds = ctx.quick ? 1 : 3;
  const backends: BackendRun[] = [];
  for (const [backend, cidr] of BACKENDS) {
    ctx.log(`§9 ${backend}: a cluster of 3 hosts with --cluster-cidr ${cidr}`);
    backends.push(await measureBackend(ctx, backend, cidr, { rounds, pings, iperfSeconds }));
  }
  ctx.log('§9 fan: 2 hosts, no etcd, -d fan -o underlay=192.168.0.0/16 -o overlay=250.0.0.0/8');
  backends.push(await measureFan(ctx, { rounds, pings, iperfSeconds, samples: ctx.quick ? 3 : 10 }));
  return { hosts: 3, rounds, pingsPerRound: pings, iperfSeconds, backends };
}

async function measureBackend(ctx: BenchContext, backend: HostSubnetBackend, cidr: string, o: { rounds: number; pings: number; iperfSeconds: number }): Promise<BackendRun> {
  const c = await Cluster.create({ hosts: 3, members: 1, ttl: 3, startDaemons: false });
  const errors: string[] = [];
  try {
    const flags = ['--cluster-cidr', cidr, '--backend', backend];
    const h = c.hosts;
    await c.startDaemon(0, flags);
    await h[0]!.berthOk('run', '-d', '--name', 'c0', '--', BUSYBOX, 'sleep', '3600');
    const ns0 = await h[0]!.netnsOf('c0');
    const firstPacketMs: number[] = [];
    for (const i of [1, 2]) {
      const ms = await leaseToFirstPacket(c, i, flags, ns0);
      if (Number.isFinite(ms)) firstPacketMs.push(ms);
      else errors.push(`host ${i}: no reply from its gateway within 15 s of its lease`);
    }
    await h[1]!.berthOk('run', '-d', '--name', 'c1', '--', BUSYBOX, 'sleep', '3600');
    const path = await pathFigures(ctx, c, 'bridge', o);
    return { backend, cidr, firstPacketMs, ...path, errors: [...errors, ...path.errors] };
  } finally {
    await c.destroy();
  }
}

async function measureFan(ctx: BenchContext, o: { rounds: number; pings: number; iperfSeconds: number; samples: number }): Promise<BackendRun> {
  const c = await Cluster.create({ hosts: 2, members: 0, startDaemons: false });
  const overlay = '250.0.0.0/8';
  try {
    for (const h of c.hosts) {
      await h.startDaemon([]);
      await h.berthOk('network', 'create', '-d', 'fan', '-o', 'underlay=192.168.0.0/16', '-o', `overlay=${overlay}`, 'fan');
    }
    const [h0, h1] = c.hosts as [Sandbox, Sandbox];
    await h0.berthOk('run', '-d', '--name', 'c0', '--network', 'fan', '--', BUSYBOX, 'sleep', '3600');
    const ns0 = await h0.netnsOf('c0');
    const firstPacketMs: number[] = [];
    const errors: string[] = [];
    // Through the API (a CLI process would add its own start-up to every sample).
    const api = new ApiClient(`unix://${h1.socket}`);
    try {
      for (let k = 0; k < o.samples; k++) {
        const { Id } = await api.request<{ Id: string }>('POST', '/containers/create?start=1&detach=1', { name: `n${k}`, cmd: [BUSYBOX, 'sleep', '3600'], networkMode: 'fan' });
        const ranAt = performance.now();
        const info = await api.request<{ NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }>('GET', `/containers/${Id}/json`);
        const ms = await firstReply(ns0, info.NetworkSettings.Networks.fan!.IPAddress, ranAt);
        if (Number.isFinite(ms)) firstPacketMs.push(ms);
        else errors.push(`n${k}: no reply within 15 s`);
        await api.request('DELETE', `/containers/${Id}?force=1`);
      }
    } finally {
      api.close();
    }
    await h1.berthOk('run', '-d', '--name', 'c1', '--network', 'fan', '--', BUSYBOX, 'sleep', '3600');
    const path = await pathFigures(ctx, c, 'fan', o);
    return { backend: 'fan', cidr: overlay, firstPacketMs, ...path, errors: [...errors, ...path.errors] };
  } finally {
    await c.destroy();
  }
}

/** Round trips and throughput, container c0 on host 0 → c1 on host 1 (on `network`), against the bare underlay. */
async function pathFigures(ctx: BenchContext, c: Cluster, network: string, o: { rounds: number; pings: number; iperfSeconds: number }): Promise<Pick<BackendRun, 'mtu' | 'rttMs' | 'throughput'> & { errors: string[] }> {
  const errors: string[] = [];
  const h = c.hosts;
  {
    const ns0 = await h[0]!.netnsOf('c0');
    const ns1 = await h[1]!.netnsOf('c1');
    const ip1 = (await h[1]!.inspect('c1')).NetworkSettings.Networks[network]!.IPAddress;
    // `ip link`, not /sys: a namespace entered with nsenter --net still sees the mount's sysfs.
    const mtuText = / mtu (\d+) /.exec((await h[0]!.inNs(ns0, 'ip', ['-o', 'link', 'show', 'eth0'])).stdout)?.[1] ?? '';
    const rtt = { container: [] as number[], underlay: [] as number[] };
    const tput = { container: [] as number[], underlay: [] as number[] };
    for (let r = 0; r < o.rounds; r++) {
      rtt.container.push(...(await pingTimes(h[0]!, ns0, ip1, o.pings)));
      rtt.underlay.push(...(await pingTimes(h[0]!, undefined, c.address(1), o.pings)));
      for (const [key, server, client, target] of [['container', ns1, ns0, ip1], ['underlay', undefined, undefined, c.address(1)]] as const) {
        try {
          tput[key].push(await iperf(h[1]!, server, h[0]!, client, target, o.iperfSeconds));
        } catch (err) {
          errors.push(`iperf3 ${key}: ${(err as Error).message}`);
        }
      }
      if (ctx.left() < 60_000) break;
    }
    const container = summarize(rtt.container);
    const underlay = summarize(rtt.underlay);
    const containerMedian = median(tput.container);
    const underlayMedian = median(tput.underlay);
    return {
      ...(mtuText && { mtu: Number(mtuText) }),
      rttMs: { container, underlay, ratio: ratio(container.p50, underlay.p50) },
      throughput: { container: tput.container, underlay: tput.underlay, containerMedian, underlayMedian, ratio: ratio(containerMedian, underlayMedian) },
      errors,
    };
  }
}

/** From `since`, a ping every 10 ms from `ns` to `target` until the first reply (ms), or NaN after 15 s. */
async function firstReply(ns: string, target: string, since: number): Promise<number> {
  const pinger = spawn('nsenter', [`--net=${ns}`, '--', BUSYBOX, 'ping', '-i', '0.01', '-w', '15', target], { stdio: ['ignore', 'pipe', 'ignore'] });
  const ms = await new Promise<number>((resolve) => {
    pinger.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('bytes from')) resolve(round(performance.now() - since, 1));
    });
    pinger.once('exit', () => resolve(NaN));
  });
  if (pinger.exitCode === null) pinger.kill('SIGKILL');
  return ms;
}

/**
 * Host i joins: its lease is read from etcd as soon as it appears, and a ping running every 10 ms
 * from host 0's container to host i's bridge gateway times the first reply (not a retry's timeout).
 */
async function leaseToFirstPacket(c: Cluster, i: number, flags: string[], ns0: string): Promise<number> {
  const starting = c.startDaemon(i, flags);
  let leasedAt = 0;
  let gateway = '';
  for (let n = 0; n < 3000 && !leasedAt; n++) {
    const lease = (await c.etcdList('/coreos.com/network/subnets/')).find((kv) => kv.value.includes(`"${c.address(i)}"`));
    if (lease) {
      leasedAt = performance.now();
      // Key `10.5.34.0-24`: the gateway is the subnet's first address.
      gateway = lease.key.split('/').pop()!.replace(/0-\d+$/, '1');
    } else await sleep(5);
  }
  if (!leasedAt) {
    await starting.catch(() => undefined);
    return NaN;
  }
  const ms = await firstReply(ns0, gateway, leasedAt);
  await starting;
  return ms;
}

/** Per-packet round trips (ms) of `count` echoes 20 ms apart. */
async function pingTimes(h: Sandbox, ns: string | undefined, target: string, count: number): Promise<number[]> {
  const args = ['ping', '-c', String(count), '-i', '0.02', '-W', '1', target];
  const r = ns ? await h.inNs(ns, BUSYBOX, args, 30_000) : await h.inHost(BUSYBOX, args, 30_000);
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (times.length === 0) throw new Error(`ping ${target}: ${r.stdout} ${r.stderr}`);
  return times;
}

/** One iperf3 TCP stream for `seconds`, Gbit/s received. */
async function iperf(server: Sandbox, serverNs: string | undefined, client: Sandbox, clientNs: string | undefined, target: string, seconds: number): Promise<number> {
  const srv = server.spawnIn(serverNs ?? server.hostNs, 'iperf3', ['-s', '-1', '-B', target]);
  try {
    await sleep(400);
    const args = ['-c', target, '-t', String(seconds), '-J'];
    const r = clientNs ? await client.inNs(clientNs, 'iperf3', args, 30_000) : await client.inHost('iperf3', args, 30_000);
    const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
    if (!j.end?.sum_received) throw new Error(j.error ?? 'no result');
    return round(j.end.sum_received.bits_per_second / 1e9, 2);
  } finally {
    srv.kill('SIGKILL');
  }
}
