/**
 * §1 Container network setup and teardown: bridge network, one published port, DNS on, steady
 * state (each peer keeps one anchor container so its bridge, chains and aardvark-dns stay up).
 * All systems run interleaved round-robin, the order rotating each round, so machine drift hits
 * them all alike. Peers' container namespaces are added before the timed setup (as a runtime
 * does) and their cost is reported apart; berth's setup includes making its namespace.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import { BerthHost, setupRequest } from '../lib/berth.js';
import { daemonOps, type BenchContext } from '../lib/context.js';
import { BERTH_CNI } from '../lib/paths.js';
import { startNodeServer } from '../lib/procs.js';
import { Scope } from '../lib/scope.js';
import { peerSystem, roundRobin, type System, type SystemResult } from '../lib/round-robin.js';
import { msSince, summarize, type Summary } from '../lib/stats.js';
import { berthChain, CniChain, referenceChain } from '../peers/cni.js';
import { KernelFloor } from '../peers/kernel-floor.js';
import { Netavark } from '../peers/netavark.js';

export interface SetupTeardownResult {
  rounds: number;
  warmup: number;
  systems: SystemResult[];
  /** Daemon-side durations of the same operations (from the daemon's per-operation log). */
  daemonSide: Record<string, Summary>;
  /** Starts on the berth daemon (all three berth systems, warm-up included) by whether a namespace made ahead of time was ready. */
  netnsPool?: { hits: number; misses: number };
}

const PORT = 9000;
const ANCHOR_PORT = 8999;

export async function setupTeardown(ctx: BenchContext): Promise<SetupTeardownResult> {
  const scope = new Scope('setup');
  try {
    return await measure(ctx, scope);
  } finally {
    await scope.close();
  }
}

async function measure(ctx: BenchContext, scope: Scope): Promise<SetupTeardownResult> {
  ctx.log('§1 preparing berth, netavark, the CNI chain and the kernel floor');
  const berth = await BerthHost.create(scope, 'bbs');
  await berth.createNetwork('bb-net', '10.80.0.0/16');
  // The same setup on a dual-stack network: the cost of the IPv6 side (issue 13's ≤ 1.2× goal).
  await berth.createNetwork('bb-net6', '10.79.0.0/16', { subnet6: 'fd79::/64' });
  // The same daemon without namespaces made ahead of time: every start makes its own, as the floor does.
  const berthNoPool = await BerthHost.create(scope, 'bbp', undefined, ['--netns-pool', '0']);
  await berthNoPool.createNetwork('bb-net', '10.76.0.0/16');

  const nv = new Netavark(scope, { tag: 'nv1', prefix2: '10.78', dns: true });
  await nv.init();
  await nv.createNetns(0);
  await nv.setup(0, ANCHOR_PORT);

  const cniDir = scope.tempDir('cni1-ipam');
  const cni = new CniChain(scope, referenceChain('cni1', '10.77', cniDir));
  await cni.init();
  await cni.createNetns(0);
  await cni.add(0, ANCHOR_PORT);

  const floor = new KernelFloor(scope, 'fl1', '10.91', false);
  await floor.init();
  const floorNft = new KernelFloor(scope, 'fn1', '10.92', true);
  await floorNft.init();
  const httpFloor = await startHttpFloor(scope, berth.hostNs);

  const ids = new Map<string, string>();
  const berthSystem = (key: string, label: string, netOnly: boolean, network = 'bb-net', host = berth): System => ({
    key,
    label,
    async setup(i) {
      const t = await host.setup({ network, ports: [{ hostPort: PORT, containerPort: 80 }], netOnly });
      ids.set(`${key}${i}`, t.id);
      return { ms: t.ms };
    },
    async teardown(i) {
      return { ms: await host.teardown(ids.get(`${key}${i}`)!) };
    },
  });
  const systems: System[] = [
    berthSystem('berth', 'berth API: create + start (spawns the process)', false),
    berthSystem('berthNet', 'berth API: create + start?detach=0 (network only)', true),
    berthSystem('berthNet6', 'berth API: the same on a dual-stack network (IPv4 + IPv6, the port on both)', true, 'bb-net6'),
    berthSystem('berthNetNoPool', 'berth API: network only, --netns-pool 0 (each start makes its namespace)', true, 'bb-net', berthNoPool),
    peerSystem('netavark', 'netavark 1.4 + aardvark-dns (setup / teardown)', nv, async (i) => ({ ms: await nv.setup(i, PORT) }), async (i) => ({ ms: await nv.teardown(i, PORT) })),
    peerSystem(
      'cni',
      'CNI 1.1.1 bridge + host-local + portmap + firewall (ADD / DEL)',
      cni,
      async (i) => {
        const t = await cni.add(i, PORT);
        return { ms: t.ms, extra: Object.fromEntries(Object.entries(t.perPlugin).map(([k, v]) => [`${k}Ms`, v])) };
      },
      async (i) => {
        const t = await cni.del(i, PORT);
        return { ms: t.ms, extra: Object.fromEntries(Object.entries(t.perPlugin).map(([k, v]) => [`${k}Ms`, v])) };
      },
    ),
    {
      key: 'floor',
      label: 'kernel floor (berth kernel worker: netns + veth + bridge port + addr + route)',
      async setup(i) {
        const r = await floor.setup(i);
        return { ms: r.ms, extra: { netnsMs: r.netnsMs, attachMs: r.attachMs } };
      },
      teardown: async (i) => ({ ms: (await floor.teardown(i)).ms }),
    },
    {
      key: 'floorNft',
      label: 'kernel floor + 1 nftables map element (a published port)',
      async setup(i) {
        const r = await floorNft.setup(i);
        return { ms: r.ms, extra: { netnsMs: r.netnsMs, attachMs: r.attachMs, nftMs: r.nftMs } };
      },
      teardown: async (i) => ({ ms: (await floorNft.teardown(i)).ms }),
    },
    {
      key: 'httpFloor',
      label: 'HTTP floor (a bare Node server on a unix socket answering the same requests, doing nothing)',
      setup: async () => ({ ms: await httpFloor.create() }),
      teardown: async () => ({ ms: await httpFloor.remove() }),
    },
  ];

  const results = new Map<string, SystemResult>();
  const berthCni = await maybeBerthCni(ctx, scope, berth);
  if (berthCni.system) systems.push(berthCni.system);
  else results.set('berthCni', { key: 'berthCni', label: 'berth via CNI (dist/bin/berth-cni)', extra: {}, note: berthCni.note });

  const warmup = ctx.quick ? 1 : 3;
  // At least 30 recorded rounds in a full run, unless the whole budget is gone.
  const { rounds, results: measured } = await roundRobin(ctx, systems, {
    tag: '§1',
    warmup,
    wanted: ctx.quick ? 5 : 60,
    minRounds: ctx.quick ? 2 : 30,
    budgetMs: Math.min(ctx.quick ? 25_000 : 150_000, ctx.left() / 4),
  });
  for (const m of measured) results.set(m.key, m);

  // The daemon's own view of the same operations: the difference is HTTP and client overhead.
  const withProcess = new Set<string>();
  const netOnly = new Set<string>();
  // (The --netns-pool 0 daemon's containers never appear in this daemon's log.)
  for (const [k, id] of ids) (k.startsWith('berthNet') ? netOnly : withProcess).add(id);
  const ops = daemonOps(berth.sb.daemonLog);
  const pick = (msg: string, set: Set<string>) => ops.filter((o) => o.msg === msg && o.container !== undefined && set.has(o.container)).map((o) => o.ms);
  // create?start=1 is one operation, `container run`, logged with its detach flag (detach=0 is
  // network only) before its container has an id; the few anchor and warm-up runs are in it too.
  const runs = (detach: boolean) => ops.filter((o) => o.msg === 'container run' && o.detach === detach).map((o) => o.ms);
  const daemonSide: Record<string, Summary> = {};
  for (const [label, list] of [
    ['create + start (spawns the process)', runs(true)],
    ['create + start?detach=0', runs(false)],
    ['rm -f (with process)', pick('container rm', withProcess)],
    ['rm -f (network only)', pick('container rm', netOnly)],
    // The answer comes once the store, DNS and events say the container is gone; its kernel side
    // (firewall elements, held ports, the namespace) ends after it, before the next operation.
    ['rm -f (with process), until its kernel side is done', pick('container rm settled', withProcess)],
    ['rm -f (network only), until its kernel side is done', pick('container rm settled', netOnly)],
  ] as const) {
    if (list.length) daemonSide[label] = summarize(list);
  }

  const metrics = await berth.api.request<string>('GET', '/metrics');
  const takes = (outcome: string) => Number(new RegExp(`^berth_netns_pool_takes_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? NaN);
  return { rounds, warmup, systems: [...results.values()], daemonSide, netnsPool: { hits: takes('hit'), misses: takes('miss') } };
}

/**
 * The floor under "as the caller sees it": tools/http-floor-server.ts behind a unix socket, sent
 * the requests berth's setup and teardown send, by the same client, in the same rounds.
 */
async function startHttpFloor(scope: Scope, nsPath: string): Promise<{ create(): Promise<number>; remove(): Promise<number> }> {
  const socket = path.join(scope.tempDir('http-floor'), 'floor.sock');
  await startNodeServer(scope, nsPath, 'http-floor-server', ['--socket', socket]);
  const api = new ApiClient(`unix://${socket}`);
  scope.defer('http floor client', () => api.close());
  // The request berth's network-only system sends, built by the same function.
  const { path: createPath, body } = setupRequest({ network: 'bb-net', ports: [{ hostPort: PORT, containerPort: 80 }], netOnly: true });
  let id = '';
  return {
    async create() {
      const t0 = process.hrtime.bigint();
      ({ Id: id } = await api.request<{ Id: string }>('POST', createPath, body));
      return msSince(t0);
    },
    async remove() {
      const t0 = process.hrtime.bigint();
      await api.request('DELETE', `/containers/${id}?force=1`);
      return msSince(t0);
    },
  };
}

/** berth's CNI plugin, if dist/bin/berth-cni exists and answers one ADD/DEL; else why not. */
async function maybeBerthCni(ctx: BenchContext, scope: Scope, berth: BerthHost): Promise<{ system?: System; note?: string }> {
  if (!fs.existsSync(BERTH_CNI)) return { note: 'not measured (plugin not built: dist/bin/berth-cni is missing; bash scripts/build-cni.sh makes it)' };
  try {
    await berth.createNetwork('bb-cninet', '10.81.0.0/16');
    const chain = new CniChain(scope, berthChain('bc1', berth.sb.socket, 'bb-cninet'));
    await chain.init(berth.hostNs);
    await chain.createNetns(0);
    await chain.add(0, ANCHOR_PORT);
    return {
      system: {
        key: 'berthCni',
        label: 'berth via CNI (dist/bin/berth-cni ADD / DEL, shim → daemon)',
        async setup(i) {
          const netnsAddMs = await chain.createNetns(i);
          const floor = await chain.execFloor();
          return { ms: (await chain.add(i, PORT)).ms, extra: { netnsAddMs, ...floor } };
        },
        async teardown(i) {
          const t = await chain.del(i, PORT);
          await chain.deleteNetns(i);
          return { ms: t.ms };
        },
      },
    };
  } catch (err) {
    ctx.log(`§1 berth-cni not usable: ${(err as Error).message}`);
    return { note: `not measured: dist/bin/berth-cni exists but its first ADD failed: ${(err as Error).message.slice(0, 300)}` };
  }
}
