/**
 * Container network namespaces made ahead of time. Making one (unshare, loopback up, IPv6 off by
 * default) costs ~1.5 ms of the kernel thread, the largest single step of a start; a start that
 * finds one here only binds it at its container's path (one mount call) instead. Podman makes
 * the namespace before it calls netavark for the same reason; berth makes it while nothing else
 * is going on.
 *
 * - A pooled namespace is held by an open descriptor of the daemon's, never by a file or a
 *   mount: a daemon killed with its pool full leaves nothing behind, and taking one needs no
 *   unmount (an RCU grace period, up to 3 ms here).
 * - Refilling waits until no start has taken one for REFILL_AFTER_MS, so in a burst of starts it
 *   never queues kernel work in front of them: the burst just makes its namespaces as before.
 * - Earlier builds kept the pool as bind mounts in paths.netnsPool; a daemon that starts removes
 *   what a crashed one of those left there, and the directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Kernel } from '../kernel/kernel.js';
import type { Logger } from '../log.js';
import { invalid } from '../errors.js';

const MAX_NETNS_POOL = 64;
const REFILL_AFTER_MS = 50;

/** --netns-pool: a whole number from 0 (none) to MAX_NETNS_POOL. */
export function parseNetnsPool(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > MAX_NETNS_POOL) throw invalid(`--netns-pool ${text}: give a whole number of namespaces from 0 (none) to ${MAX_NETNS_POOL}`);
  return n;
}

export class NetnsPool {
  /** Descriptors of the namespaces ready (the kernel thread's, valid in the whole process). */
  private readonly ready: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private filling: Promise<void> | undefined;
  private closed = false;
  /** Starts that found a namespace here, and starts that made their own. */
  hits = 0;
  misses = 0;

  constructor(
    private readonly kernel: Kernel,
    /** Where an older berth kept its pool as files. */
    private readonly legacyDir: string,
    private readonly size: number,
    private readonly log: Logger,
  ) {}

  /** Removes an older daemon's leftovers, then fills the pool once the daemon is idle. */
  async open(): Promise<void> {
    if (fs.existsSync(this.legacyDir)) {
      for (const name of fs.readdirSync(this.legacyDir)) {
        // A leftover that cannot go now is no reason to refuse to start; the next start tries again.
        await this.kernel.call('deleteSandbox', { path: path.join(this.legacyDir, name) }).catch((err) => this.log.warn('could not remove a namespace an earlier daemon made ahead of time', { name, error: String(err) }));
      }
      fs.rmSync(this.legacyDir, { recursive: true, force: true });
    }
    this.scheduleRefill();
  }

  /** A ready namespace's descriptor, for the kernel's adoptSandbox; undefined when the pool is empty. */
  take(): number | undefined {
    if (this.size === 0) return undefined;
    const fd = this.ready.shift();
    if (fd !== undefined) this.hits++;
    else this.misses++;
    this.scheduleRefill();
    return fd;
  }

  /** Stops refilling and drops the namespaces still ready. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.filling;
    for (const fd of this.ready.splice(0)) await this.drop(fd);
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
      let fd: number;
      try {
        fd = await this.kernel.call('createPooledSandbox');
      } catch (err) {
        this.log.warn('could not make a namespace ahead of time; starts make their own', { error: String(err) });
        return;
      }
      if (this.closed) {
        await this.drop(fd);
        return;
      }
      this.ready.push(fd);
    }
  }

  private async drop(fd: number): Promise<void> {
    await this.kernel.call('releasePooledSandbox', { fd }).catch((err) => this.log.warn('could not drop a namespace made ahead of time', { fd, error: String(err) }));
  }
}
