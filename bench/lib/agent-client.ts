/**
 * The bench's side of an agent (see ../agent.ts): starts it inside a namespace and sends it
 * requests one at a time. With `resolvConf` the agent also gets a private mount namespace (a slave
 * of the machine's, so namespaces added under /run/netns still appear in it) where that file is
 * bound over /etc/resolv.conf: aardvark-dns, which netavark spawns from there, reads its upstream
 * servers from /etc/resolv.conf and must only ever see the bench's fake resolver.
 */
import type { ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import * as path from 'node:path';
import type { Ran } from './exec.js';
import { DIST } from './paths.js';
import type { Scope } from './scope.js';
import type { FloorConfig } from '../agent.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class Agent {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      let msg: { id: number; ok: boolean; value?: unknown; error?: string };
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new Error(msg.error));
    });
    child.stderr!.on('data', (d) => (this.stderr = (this.stderr + String(d)).slice(-4000)));
    child.on('exit', (code) => {
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(`agent exited (${code}): ${this.stderr}`));
      }
      this.pending.clear();
    });
  }

  static async start(scope: Scope, nsPath: string, opts: { resolvConf?: string } = {}): Promise<Agent> {
    const node = [process.execPath, path.join(DIST, 'bench/agent.js')];
    const inner = opts.resolvConf
      ? ['unshare', '--mount', '--propagation', 'slave', '--', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', opts.resolvConf, ...node]
      : node;
    const child = scope.spawn('nsenter', [`--net=${nsPath}`, '--', ...inner], { stdio: ['pipe', 'pipe', 'pipe'] });
    const agent = new Agent(child);
    scope.defer('agent stdin', () => child.stdin?.end());
    await agent.call('ping', {}, 15_000);
    return agent;
  }

  call<T = unknown>(op: string, args: Record<string, unknown>, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`agent ${op} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  /** `via: 'node'`: Node's child_process instead of a runtime's vfork-style start (agent.ts). */
  exec(cmd: string, args: string[], opts: { input?: string; env?: Record<string, string>; timeoutMs?: number; via?: 'node' } = {}): Promise<Ran> {
    return this.call<Ran>('exec', { cmd, args, ...opts }, (opts.timeoutMs ?? 60_000) + 5_000);
  }

  floorInit(cfg: FloorConfig): Promise<unknown> {
    return this.call('floorInit', cfg as unknown as Record<string, unknown>);
  }

  floorSetup(i: number) {
    return this.call<{ ms: number; netnsMs: number; attachMs: number; nftMs: number }>('floorSetup', { i });
  }

  floorTeardown(i: number) {
    return this.call<{ ms: number }>('floorTeardown', { i });
  }

  floorClose(): Promise<unknown> {
    return this.call('floorClose', {});
  }
}
