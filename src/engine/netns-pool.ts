/**
 * Container network namespaces made ahead of time. Making one (unshare, bind mount, loopback up,
 * IPv6 off by default) costs ~1.5 ms of the kernel thread, the largest single step of a start; a
 * start that finds one here only renames it to its container's path (two mount calls) instead.
 * Podman makes the namespace before it calls netavark for the same reason; berth makes it while
 * nothing else is going on.
 *
 * - Refilling waits until no start has taken one for REFILL_AFTER_MS, so in a burst of starts it
 *   never queues kernel work in front of them: the burst just makes its namespaces as before.
 * - The pool's namespaces live in their own directory (paths.netnsPool), never among containers'.
 *   A daemon that starts removes whatever an earlier one left there (a crash); one that stops
 *   removes its own.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Kernel } from '../kernel/kernel.js';
import type { Logger } from '../log.js';
import { invalid } from '../errors.js';

export const DEFAULT_NETNS_POOL = 4;
const MAX_NETNS_POOL = 64;
const REFILL_AFTER_MS = 50;

/** --netns-pool: a whole number from 0 (none) to MAX_NETNS_POOL. */
export function parseNetnsPool(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > MAX_NETNS_POOL) throw invalid(`--netns-pool ${text}: give a whole number of namespaces from 0 (none) to ${MAX_NETNS_POOL}`);
  return n;
}

export class NetnsPool {
  private readonly ready: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private filling: Promise<void> | undefined;
  private closed = false;
  /** Starts that found a namespace here, and starts that made their own. */
  hits = 0;
  misses = 0;

  constructor(
    private readonly kernel: Kernel,
    private readonly dir: string,
    private readonly size: number,
    private readonly log: Logger,
  ) {}

  /** Removes an earlier daemon's leftovers, then fills the pool once the daemon is idle. */
  async open(): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const name of fs.readdirSync(this.dir)) {
      // A leftover that cannot go now is no reason to refuse to start; the next start tries again.
      await this.kernel.call('deleteSandbox', { path: path.join(this.dir, name) }).catch((err) => this.log.warn('could not remove a namespace an earlier daemon made ahead of time', { name, error: String(err) }));
    }
    this.scheduleRefill();
  }

  /** A ready namespace's path, for the kernel's adoptSandbox; undefined when the pool is empty. */
  take(): string | undefined {
    if (this.size === 0) return undefined;
    const from = this.ready.shift();
    if (from) this.hits++;
    else this.misses++;
    this.scheduleRefill();
    return from;
  }

  /** Stops refilling and removes the namespaces still ready. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.filling;
    for (const from of this.ready.splice(0)) await this.kernel.call('deleteSandbox', { path: from }).catch(() => undefined);
  }

  private scheduleRefill(): void {
    if (this.closed || this.size === 0) return;
    if (this.timer) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // After a fill still under way (it stops at its next step once a start has taken one).
      this.filling = (this.filling ?? Promise.resolve()).then(() => this.fill());
    }, REFILL_AFTER_MS);
    // A pool waiting to refill must not keep the process alive.
    this.timer.unref();
  }

  private async fill(): Promise<void> {
    while (!this.closed && this.ready.length < this.size) {
      // A start took one meanwhile: wait for quiet again rather than compete with the next one.
      if (this.timer) return;
      const next = path.join(this.dir, randomBytes(8).toString('hex'));
      try {
        await this.kernel.call('createSandbox', { path: next });
      } catch (err) {
        this.log.warn('could not make a namespace ahead of time; starts make their own', { error: String(err) });
        return;
      }
      if (this.closed) {
        await this.kernel.call('deleteSandbox', { path: next }).catch(() => undefined);
        return;
      }
      this.ready.push(next);
    }
  }
}
