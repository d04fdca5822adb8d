/**
 * Restores berth's tables soon after someone else changes them (`nft flush ruleset`, a deleted
 * table or chain, a flushed set), instead of failing open until the next periodic reconcile:
 * without them isolation is gone and route_localnet=1 on the bridges would let 127/8 through.
 * Changes to the user's own chain are the user's and never trigger a rebuild.
 */
import { NftMonitor, type ForeignTransaction } from '../kernel/nft-monitor.js';
import { IP_CHAINS, TABLE } from '../firewall/names.js';
import type { EngineContext } from './context.js';

const NFPROTO_IPV4 = 2;
const NFPROTO_BRIDGE = 7;

/** True when a transaction by someone else touched berth's tables (other than the user's chain). */
export function touchesBerth(t: ForeignTransaction): boolean {
  if (t.overflow) return true;
  return t.changes.some(
    (c) => c.table === TABLE && (c.family === NFPROTO_IPV4 || c.family === NFPROTO_BRIDGE) && !(c.family === NFPROTO_IPV4 && c.chain === IP_CHAINS.userForward),
  );
}

export class FirewallWatch {
  private readonly monitor = new NftMonitor();
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly ctx: EngineContext,
    private readonly restore: () => Promise<void>,
  ) {}

  start(): void {
    this.monitor.start(
      (t) => {
        if (!touchesBerth(t)) return;
        this.ctx.log.warn("berth's firewall was changed by another process; restoring it", { pid: t.pid, process: t.process });
        this.schedule();
      },
      (err) => this.ctx.log.error('stopped watching nftables changes', { error: err.message }),
    );
  }

  stop(): void {
    this.monitor.stop();
  }

  /** One restore at a time; changes during a restore make one more run after it. */
  private schedule(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.restore()
      .catch((err) => this.ctx.log.error('could not restore the firewall', { error: (err as Error).message }))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.schedule();
        }
      });
  }
}
