/**
 * §6 Daemon start-up with no containers: the time from spawning the daemon (nsenter + node) to
 * its socket answering /_ping, over several restarts of one sandbox. The loaded case (many
 * containers) is measured in §2, on the crowded daemon.
 */
import type { BenchContext } from '../lib/context.js';
import { BerthHost } from '../lib/berth.js';
import { Scope } from '../lib/scope.js';
import { summarize, type Summary } from '../lib/stats.js';

export interface StartupResult {
  n: number;
  /** The very first start, with an empty root (creates the store). */
  firstMs: number;
  ms: Summary;
  rssKb?: number;
}

export async function startup(ctx: BenchContext): Promise<StartupResult> {
  const scope = new Scope('startup');
  try {
    // The first start of a root creates the store and the default network's bridge.
    const berth = await BerthHost.createStopped(scope, 'bbu');
    const firstMs = await berth.startTimed();
    const runs: number[] = [];
    for (let k = 0; k < (ctx.quick ? 2 : 6); k++) runs.push(await berth.restartTimed());
    return { n: 0, firstMs, ms: summarize(runs), rssKb: berth.rssKb() };
  } finally {
    await scope.close();
  }
}
