/**
 * The bench's agent: a long-running process started inside a sandbox "host" namespace (with
 * `nsenter --net=…`), so the bench process itself never changes namespace and each timed plugin
 * exec costs only its own spawn, not an extra nsenter. It speaks JSON lines on stdin/stdout:
 * `{id, op, args}` in, `{id, ok, value | error}` out.
 *
 * Ops:
 * - `exec`: run a command here and time it from spawn to exit (what a runtime pays per plugin),
 *   started as Go runtimes start plugins (lib/spawn-exec.ts); `via: "node"` uses Node's
 *   child_process instead, to show what its fork costs on top.
 * - `floor*`: the kernel floor, i.e. the same kernel objects berth makes for a container (netns,
 *   veth with its peer inside, bridge port, address, routes) made by berth's own kernel worker
 *   with nothing else around it: no store, no HTTP, no firewall, no DNS.
 */
import * as path from 'node:path';
import * as readline from 'node:readline';
import { Kernel } from '../src/kernel/kernel.js';
import { run } from './lib/exec.js';
import { spawnExec } from './lib/spawn-exec.js';

interface Request {
  id: number;
  op: string;
  args: Record<string, unknown>;
}

export interface FloorConfig {
  dir: string;
  bridge: string;
  /** First two octets of the /16 the floor's containers use, e.g. "10.91". */
  prefix2: string;
  /** Also add and delete one nftables map element per container (a published port's worth). */
  nft: boolean;
}

let kernel: Kernel | undefined;
let floor: FloorConfig | undefined;

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

function addressOf(prefix2: string, i: number): string {
  const n = i + 2;
  return `${prefix2}.${Math.floor(n / 250)}.${(n % 250) + 2}`;
}

function macOf(ip: string): string {
  return ['02', '42', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

const FLOOR_TABLE = 'bbfloor';

async function floorInit(cfg: FloorConfig): Promise<unknown> {
  kernel = new Kernel();
  floor = cfg;
  await kernel.call('prepareRunDir', { dir: cfg.dir });
  await kernel.call('ensureBridge', { name: cfg.bridge, alias: 'bb:floor', gateway: `${cfg.prefix2}.0.1`, prefix: 16, broadcast: `${cfg.prefix2}.255.255` });
  if (cfg.nft) {
    await kernel.call('nft', {
      script: [
        `add table ip ${FLOOR_TABLE}`,
        `add map ip ${FLOOR_TABLE} pub { type inet_service : ipv4_addr . inet_service; }`,
        `add chain ip ${FLOOR_TABLE} pre { type nat hook prerouting priority -100; policy accept; }`,
        `add rule ip ${FLOOR_TABLE} pre fib daddr type local dnat ip to tcp dport map @pub`,
      ].join('\n'),
    });
  }
  return 'ok';
}

async function floorSetup(i: number): Promise<{ ms: number; netnsMs: number; attachMs: number; nftMs: number }> {
  if (!kernel || !floor) throw new Error('floorInit first');
  const ip = addressOf(floor.prefix2, i);
  const t0 = process.hrtime.bigint();
  const nsPath = path.join(floor.dir, `c${i}`);
  await kernel.call('createSandbox', { path: nsPath });
  const netnsMs = ms(t0);
  const t1 = process.hrtime.bigint();
  await kernel.call('attach', {
    netnsPath: nsPath,
    bridge: floor.bridge,
    bridgeMark: 'bb:floor',
    hostVeth: `bbf${i}`,
    alias: `bb:floor:${i}`,
    ifname: 'eth0',
    mac: macOf(ip),
    ip,
    prefix: 16,
    broadcast: `${floor.prefix2}.255.255`,
    gateway: `${floor.prefix2}.0.1`,
    defaultRoute: true,
  });
  const attachMs = ms(t1);
  let nftMs = 0;
  if (floor.nft) {
    const t2 = process.hrtime.bigint();
    await kernel.call('nft', { script: `add element ip ${FLOOR_TABLE} pub { ${20000 + (i % 40000)} : ${ip} . 80 }` });
    nftMs = ms(t2);
  }
  return { ms: ms(t0), netnsMs, attachMs, nftMs };
}

async function floorTeardown(i: number): Promise<{ ms: number }> {
  if (!kernel || !floor) throw new Error('floorInit first');
  const ip = addressOf(floor.prefix2, i);
  const t0 = process.hrtime.bigint();
  if (floor.nft) await kernel.call('nft', { script: `delete element ip ${FLOOR_TABLE} pub { ${20000 + (i % 40000)} : ${ip} . 80 }` });
  await kernel.call('deleteSandbox', { path: path.join(floor.dir, `c${i}`) });
  return { ms: ms(t0) };
}

async function floorClose(): Promise<unknown> {
  if (!kernel || !floor) return 'ok';
  await kernel.call('releaseRunDir', { dir: floor.dir }).catch(() => undefined);
  await kernel.close();
  kernel = undefined;
  return 'ok';
}

async function handle(req: Request): Promise<unknown> {
  const a = req.args;
  switch (req.op) {
    case 'ping':
      return 'pong';
    case 'exec': {
      const opts = {
        input: a.input as string | undefined,
        env: a.env ? { ...process.env, ...(a.env as Record<string, string>) } : process.env,
        timeoutMs: (a.timeoutMs as number | undefined) ?? 60_000,
      };
      return a.via === 'node' ? run(a.cmd as string, a.args as string[], opts) : spawnExec(a.cmd as string, a.args as string[], opts);
    }
    case 'floorInit':
      return floorInit(a as unknown as FloorConfig);
    case 'floorSetup':
      return floorSetup(a.i as number);
    case 'floorTeardown':
      return floorTeardown(a.i as number);
    case 'floorClose':
      return floorClose();
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
// One request at a time, in order, as the bench sends them: timings never overlap.
let chain = Promise.resolve();
rl.on('line', (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
    } catch {
      return;
    }
    try {
      const value = await handle(req);
      process.stdout.write(`${JSON.stringify({ id: req.id, ok: true, value })}\n`);
    } catch (err) {
      process.stdout.write(`${JSON.stringify({ id: req.id, ok: false, error: (err as Error).message })}\n`);
    }
  });
});
rl.on('close', () => {
  void chain.then(floorClose).finally(() => process.exit(0));
});
