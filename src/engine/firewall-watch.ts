/**
 * Restores berth's tables soon after someone else changes them (`nft flush ruleset`, a deleted
 * table or chain, a flushed set), instead of failing open until the next periodic reconcile:
 * without them isolation is gone and route_localnet=1 on the bridges would let 127/8 through.
 * Changes to the user's own chain are the user's and never trigger a rebuild.
 */
import { NftMonitor, type ForeignTransaction } from '../kernel/nft-monitor.js';
import { NFPROTO } from '../kernel/netlink/nftables.js';
import { IP_CHAINS, TABLE } from '../firewall/names.js';
import type { EngineContext } from './context.js';

/** berth's tables: `ip berth`, its IPv6 twin `ip6 berth`, and `bridge berth`. */
const BERTH_FAMILIES = new Set<number>([NFPROTO.ip, NFPROTO.ip6, NFPROTO.bridge]);

/** True when a transaction touched iptables-nft's filter table, where Docker keeps DOCKER-USER. */
export function touchesIptablesFilter(t: ForeignTransaction): boolean {
  return t.overflow || t.changes.some((c) => c.table === 'filter' && c.family === NFPROTO.ip);
}

/** True when a transaction by someone else touched berth's tables (other than the user's chain). */
export function touchesBerth(t: ForeignTransaction): boolean {
  if (t.overflow) return true;
  return t.changes.some(
    (c) => c.table === TABLE && BERTH_FAMILIES.has(c.family) && !(c.family !== NFPROTO.bridge && c.chain === IP_CHAINS.userForward),
  );
}

/** Runs a task at most once at a time; requests during a run make exactly one more run after it. */
class Coalesced {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly onError: (err: Error) => void,
  ) {}

  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.task()
      .catch((err) => this.onError(err as Error))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.request();
        }
      });
  }
}

export class FirewallWatch {
  private readonly monitor = new NftMonitor();
  private readonly restore: Coalesced;
  private readonly docker: Coalesced;

  /** `restore` rebuilds berth's tables; `checkDocker` makes sure Docker's chain lets berth's traffic by. */
  constructor(
    private readonly ctx: EngineContext,
    restore: () => Promise<void>,
    checkDocker: () => Promise<void>,
  ) {
    this.restore = new Coalesced(
      async () => {
        await restore();
        this.restoreFailed = false;
      },
      (err) => {
        this.restoreFailed = true;
        ctx.log.error('could not restore the firewall', { error: err.message });
      },
    );
    this.docker = new Coalesced(checkDocker, (err) => ctx.log.error("could not add berth's rule to Docker's DOCKER-USER chain", { error: err.message }));
  }

  /**
   * True while every change to nftables is seen and the last restore worked: then berth's tables
   * hold what berth last wrote, or a restore is under way, and a periodic rewrite has nothing to repair.
   */
  get watching(): boolean {
    return this.live && !this.restoreFailed;
  }

  private live = false;
  private restoreFailed = false;

  start(): void {
    this.live = true;
    this.monitor.start(
      (t) => {
        if (touchesBerth(t)) {
          this.ctx.log.warn("berth's firewall was changed by another process; restoring it", { pid: t.pid, process: t.process });
          this.restore.request();
        }
        if (touchesIptablesFilter(t)) this.docker.request();
      },
      (err) => {
        this.live = false;
        this.ctx.log.error('stopped watching nftables changes; the periodic reconcile rewrites the firewall from now on', { error: err.message });
      },
    );
  }

  stop(): void {
    this.live = false;
    this.monitor.stop();
  }
}
