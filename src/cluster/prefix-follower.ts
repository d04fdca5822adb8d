/**
 * A prefix of the cluster store followed for as long as its owner runs: watched from the revision
 * after a list, and kept up when the watch ends. An ended watch resumes where it stopped (on the
 * next member), with no list; one compacted past what was seen can only catch up by listing
 * again, and a list that fails is retried. Used by the cluster agent (everything under the
 * cluster's root) and by host subnets (the subnet leases).
 *
 * When a member restarts every host of the cluster sees its watch end at once: each waits a random
 * 0.5–2.5 s before coming back, so a thousand hosts do not return in the same instant
 * (docs/scale.md: a relist storm at 1,000 hosts did not converge).
 */
import type { Logger } from '../log.js';
import type { WatchEvent } from './etcd.js';

const BACKOFF_MS = 500;
export const followBackoff = () => BACKOFF_MS * (1 + Math.random() * 4);

export interface Watchable {
  watch(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[]) => void, onEnd: (reason: { compacted?: number; error?: string }) => void): { cancel(): void };
}

export interface PrefixFollowerOptions {
  etcd: Watchable;
  prefix: string;
  /** Names it in the log: "the cluster watch", "the subnet leases". */
  watchName: string;
  listName: string;
  log: Logger;
  /** Applies watched events (after `revision` has moved past them). */
  apply(events: WatchEvent[]): void;
  /** Lists the prefix, applies the difference, and returns the revision listed. */
  relist(): Promise<number>;
  /** Waited before resuming or listing again; followBackoff unless a test says otherwise. */
  backoff?: () => number;
}

export class PrefixFollower {
  /** The store revision applied (from the last list or watched event). */
  revision = 0;
  private watcher: { cancel(): void } | undefined;
  private closed = false;

  constructor(private readonly o: PrefixFollowerOptions) {}

  /** A list's revision: what the owner's cache now reflects. */
  listed(revision: number): void {
    this.revision = Math.max(this.revision, revision);
  }

  /** Watches from `fromRevision` on. */
  follow(fromRevision: number): void {
    if (this.closed) return;
    this.watcher = this.o.etcd.watch(
      this.o.prefix,
      fromRevision,
      (events) => {
        // The last event's own revision: everything up to it has been seen (a response's header
        // may be ahead of what it carries).
        for (const ev of events) this.revision = Math.max(this.revision, ev.kv.modRevision);
        this.o.apply(events);
      },
      (reason) => {
        if (this.closed) return;
        if (reason.compacted) {
          this.o.log.warn(`${this.o.watchName} was compacted: listing again`, reason);
          this.later(() => void this.resume());
        } else {
          this.o.log.warn(`${this.o.watchName} ended: resuming it`, { ...reason, fromRevision: this.revision + 1 });
          this.later(() => this.follow(this.revision + 1));
        }
      },
    );
  }

  close(): void {
    this.closed = true;
    this.watcher?.cancel();
  }

  /** Lists again (the cache is rebuilt and the difference applied), then watches from there. */
  private async resume(): Promise<void> {
    if (this.closed) return;
    try {
      const revision = await this.o.relist();
      this.listed(revision);
      this.follow(revision + 1);
    } catch (err) {
      this.o.log.warn(`could not list ${this.o.listName}; retrying`, { error: (err as Error).message });
      this.later(() => void this.resume());
    }
  }

  private later(fn: () => void): void {
    setTimeout(fn, (this.o.backoff ?? followBackoff)()).unref();
  }
}
