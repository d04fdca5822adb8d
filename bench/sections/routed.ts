/**
 * §10 Routed networks the Calico way (docs/routed.md): two simulated hosts as in the tests, each
 * daemon with --cluster-store and --bgp-asn, and a router namespace on the underlay running its
 * own BIRD that peers with both.
 *
 * 1. Setup: a container started through the API (create + start, detached) on a routed network,
 *    against one on a bridge network of the same host, alternating.
 * 2. Convergence: on a host that has no block of a network yet, a container is started; from the
 *    API call returning to the router's BIRD listing the new block (`birdc show route`, polled
 *    every 5 ms). One sample per fresh routed network (its first container claims a block).
 * 3. Throughput: iperf3, one TCP stream, container on host 0 → container on host 1 (routed, no
 *    encapsulation), against host 0 → host 1 on the bare underlay, rounds alternating.
 *
 * Every process runs in a sandbox namespace and is killed by its PID; BIRD and etcd listen only on
 * sandbox addresses; the cluster and the router go away at the end, also after a failure.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import { Cluster } from '../../test/helpers/cluster.js';
import { must, run, type Sandbox } from '../../test/helpers/sandbox.js';
import type { BenchContext } from '../lib/context.js';
import { sleep } from '../lib/exec.js';
import { BUSYBOX } from '../lib/paths.js';
import { ratio, round, summarize, type Summary } from '../lib/stats.js';

export interface RoutedResult {
  setupMs: { routed: Summary; bridge: Summary; ratio: number };
  /** API run returning → the router's BIRD has the block, ms, one per fresh network. */
  convergenceMs: number[];
  throughput: { routed: number[]; underlay: number[]; routedMedian: number; underlayMedian: number; ratio: number };
  errors: string[];
}

const ROUTER = '192.168.90.1';
const ASN = '64512';
const ROUTER_ASN = '65000';

type Info = { NetworkSettings: { SandboxKey: string; Networks: Record<string, { IPAddress: string }> } };

export async function routedBench(ctx: BenchContext): Promise<RoutedResult> {
  const c = await Cluster.create({ hosts: 2, members: 1, ttl: 3, startDaemons: false });
  const apis: ApiClient[] = [];
  try {
    const [h0, h1] = c.hosts as [Sandbox, Sandbox];
    const sock = await startRouter(c, h0);
    for (const i of [0, 1]) await c.startDaemon(i, ['--bgp-asn', ASN, '--bgp-peer', `${ROUTER}:${ROUTER_ASN}`]);
    for (let i = 0; i < 300 && ((await run('birdc', ['-s', sock, 'show', 'protocols'])).stdout.match(/Established/g) ?? []).length < 2; i++) await sleep(100);
    const [api0, api1] = [h0, h1].map((h) => new ApiClient(`unix://${h.socket}`)) as [ApiClient, ApiClient];
    apis.push(api0, api1);
    const start = (api: ApiClient, name: string, network: string) => api.request<{ Id: string }>('POST', '/containers/create?start=1&detach=1', { name, cmd: [BUSYBOX, 'sleep', '3600'], networkMode: network });
    const info = (api: ApiClient, id: string) => api.request<Info>('GET', `/containers/${id}/json`);
    const errors: string[] = [];

    // Convergence: each fresh network's first container on host 1 claims a block there.
    const convergenceMs: number[] = [];
    const samples = ctx.quick ? 2 : 5;
    for (let k = 0; k < samples; k++) {
      const net = `rconv${k}`;
      await h0.berthOk('network', 'create', '-d', 'routed', '--subnet', `10.${160 + k}.0.0/16`, net);
      await waitFor(async () => (await h1.berth('network', 'inspect', net)).code === 0, 5000);
      const { Id } = await start(api1, `first${k}`, net);
      const returned = performance.now();
      const ip = Object.values((await info(api1, Id)).NetworkSettings.Networks)[0]!.IPAddress;
      const prefix = `${ip.split('.').slice(0, 3).join('.')}.`;
      let ms = NaN;
      for (let i = 0; i < 2000 && !Number.isFinite(ms); i++) {
        if ((await run('birdc', ['-s', sock, 'show', 'route'])).stdout.includes(prefix)) ms = round(performance.now() - returned, 1);
        else await sleep(5);
      }
      if (Number.isFinite(ms)) convergenceMs.push(ms);
      else errors.push(`${net}: the router never listed ${prefix}0`);
    }

    // Setup beside a bridge container, alternating.
    await h0.berthOk('network', 'create', '-d', 'routed', '--subnet', '10.150.0.0/16', 'rnet');
    await h0.berthOk('network', 'create', '--subnet', '10.151.0.0/24', 'bnet');
    const setup = { routed: [] as number[], bridge: [] as number[] };
    const rounds = ctx.quick ? 3 : 15;
    for (let i = 0; i < rounds + 2; i++) {
      for (const [key, network] of [['routed', 'rnet'], ['bridge', 'bnet']] as const) {
        const t = performance.now();
        await start(api0, `${key}${i}`, network);
        if (i >= 2) setup[key].push(performance.now() - t);
      }
    }

    // Throughput: routed container → container across the hosts, against the underlay.
    await waitFor(async () => (await h1.berth('network', 'inspect', 'rnet')).code === 0, 5000);
    const { Id: far } = await start(api1, 'far', 'rnet');
    const farInfo = await info(api1, far);
    const farIp = farInfo.NetworkSettings.Networks.rnet!.IPAddress;
    const nearNs = (await info(api0, 'routed2')).NetworkSettings.SandboxKey;
    await waitFor(async () => (await h0.inNs(nearNs, BUSYBOX, ['ping', '-c', '1', '-W', '1', farIp])).code === 0, 15_000);
    const tput = { routed: [] as number[], underlay: [] as number[] };
    for (let r = 0; r < (ctx.quick ? 1 : 3); r++) {
      for (const [key, serverNs, clientNs, target] of [['routed', farInfo.NetworkSettings.SandboxKey, nearNs, farIp], ['underlay', h1.hostNs, h0.hostNs, c.address(1)]] as const) {
        try {
          tput[key].push(await iperf(h1, serverNs, h0, clientNs, target, ctx.quick ? 1 : 3));
        } catch (err) {
          errors.push(`iperf3 ${key}: ${(err as Error).message}`);
        }
      }
    }
    const routed = summarize(setup.routed);
    const bridge = summarize(setup.bridge);
    const routedMedian = summarize(tput.routed).p50;
    const underlayMedian = summarize(tput.underlay).p50;
    return {
      setupMs: { routed, bridge, ratio: ratio(routed.p50, bridge.p50) },
      convergenceMs,
      throughput: { ...tput, routedMedian, underlayMedian, ratio: ratio(routedMedian, underlayMedian) },
      errors,
    };
  } finally {
    for (const a of apis) a.close();
    await c.destroy();
  }
}

/** A router namespace on the underlay (192.168.90.1) running BIRD, peering with both hosts; returns BIRD's control socket. */
async function startRouter(c: Cluster, h0: Sandbox): Promise<string> {
  const routerNs = await h0.makeNetns('rt');
  const ul = path.basename(c.underlayNs);
  must(await run('ip', ['-n', ul, 'link', 'add', 'rt', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', path.basename(routerNs)]), 'router veth');
  must(await run('ip', ['-n', ul, 'link', 'set', 'rt', 'master', 'ul', 'up']), 'router port');
  for (const args of [['addr', 'add', `${ROUTER}/24`, 'dev', 'eth0'], ['link', 'set', 'eth0', 'up'], ['link', 'set', 'lo', 'up']]) must(await run('ip', ['-n', path.basename(routerNs), ...args]), 'router');
  const conf = path.join(h0.root, 'router-bird.conf');
  const sock = path.join(h0.root, 'router-bird.ctl');
  fs.writeFileSync(conf, [`router id ${ROUTER};`, 'protocol device {}', ...[0, 1].map((i) => `protocol bgp h${i} { local ${ROUTER} as ${ROUTER_ASN}; neighbor ${c.address(i)} as ${ASN}; hold time 9; ipv4 { import all; export none; }; }`), ''].join('\n'));
  h0.spawnIn(routerNs, 'bird', ['-f', '-c', conf, '-s', sock]);
  return sock;
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`not within ${ms} ms`);
    await sleep(50);
  }
}

/** One iperf3 TCP stream for `seconds`, Gbit/s received. */
async function iperf(server: Sandbox, serverNs: string, client: Sandbox, clientNs: string, target: string, seconds: number): Promise<number> {
  const srv = server.spawnIn(serverNs, 'iperf3', ['-s', '-1', '-B', target]);
  try {
    await sleep(400);
    const r = await client.inNs(clientNs, 'iperf3', ['-c', target, '-t', String(seconds), '-J'], 30_000);
    const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
    if (!j.end?.sum_received) throw new Error(j.error ?? 'no result');
    return round(j.end.sum_received.bits_per_second / 1e9, 2);
  } finally {
    srv.kill('SIGKILL');
  }
}
