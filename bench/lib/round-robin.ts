/**
 * The loop of the setup-and-teardown sections (§1, §7): every round runs each system once (setup,
 * then teardown), the order rotating by one each round, so drift on the shared machine hits them
 * all alike. Warm-up rounds are dropped; a system that fails sits out the later rounds and keeps
 * its error.
 */
import type { BenchContext } from './context.js';
import { summarize, type Summary } from './stats.js';

export interface Sample {
  ms: number;
  extra?: Record<string, number>;
}

export interface System {
  key: string;
  label: string;
  note?: string;
  setup(i: number): Promise<Sample>;
  teardown(i: number): Promise<Sample>;
}

export interface SystemResult {
  key: string;
  label: string;
  setup?: Summary;
  teardown?: Summary;
  /** Other per-sample figures (phases, per-plugin times, namespace creation), summarized. */
  extra: Record<string, Summary>;
  error?: string;
  note?: string;
}

export interface RoundsPlan {
  /** The section's tag in the progress log (`§1`). */
  tag: string;
  warmup: number;
  wanted: number;
  /** Recorded rounds run even past the budget, unless the whole run's time is nearly gone. */
  minRounds: number;
  budgetMs: number;
}

/** A container namespace made and removed around a peer's setup and teardown. */
export interface PeerNetns {
  createNetns(i: number): Promise<number>;
  deleteNetns(i: number): Promise<void>;
}

/**
 * A peer as a runtime drives it: the container's namespace is added before the timed setup and
 * deleted after the teardown; adding it is reported apart (`netnsAddMs`).
 */
export function peerSystem(key: string, label: string, p: PeerNetns, up: (i: number) => Promise<Sample>, down: (i: number) => Promise<Sample>): System {
  return {
    key,
    label,
    async setup(i) {
      const netnsMs = await p.createNetns(i);
      const s = await up(i);
      return { ms: s.ms, extra: { ...s.extra, netnsAddMs: netnsMs } };
    },
    async teardown(i) {
      const s = await down(i);
      await p.deleteNetns(i);
      return s;
    },
  };
}

/** Container indices start at 1: 0 is each system's anchor. */
export async function roundRobin(ctx: BenchContext, systems: readonly System[], plan: RoundsPlan): Promise<{ rounds: number; results: SystemResult[] }> {
  const samples = new Map<string, { setup: number[]; teardown: number[]; extra: Record<string, number[]> }>();
  const failed = new Map<string, string>();
  for (const s of systems) samples.set(s.key, { setup: [], teardown: [], extra: {} });

  const t0 = Date.now();
  let rounds = 0;
  for (let r = 0; r < plan.warmup + plan.wanted; r++) {
    if (r >= plan.warmup + plan.minRounds && Date.now() - t0 > plan.budgetMs) break;
    if (ctx.left() < 60_000) break;
    const order = systems.map((_, k) => systems[(k + r) % systems.length]!);
    for (const s of order) {
      if (failed.has(s.key)) continue;
      const i = r + 1;
      try {
        const up = await s.setup(i);
        const down = await s.teardown(i);
        if (r < plan.warmup) continue;
        const bucket = samples.get(s.key)!;
        bucket.setup.push(up.ms);
        bucket.teardown.push(down.ms);
        for (const [k, v] of Object.entries({ ...up.extra, ...Object.fromEntries(Object.entries(down.extra ?? {}).map(([k2, v2]) => [`teardown.${k2}`, v2])) })) {
          (bucket.extra[k] ??= []).push(v);
        }
      } catch (err) {
        failed.set(s.key, (err as Error).message);
        ctx.log(`${plan.tag} ${s.key} failed: ${(err as Error).message}`);
      }
    }
    if (r >= plan.warmup) rounds++;
  }
  ctx.log(`${plan.tag} ${rounds} rounds in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

  const results = systems.map((s): SystemResult => {
    const b = samples.get(s.key)!;
    return {
      key: s.key,
      label: s.label,
      setup: b.setup.length ? summarize(b.setup) : undefined,
      teardown: b.teardown.length ? summarize(b.teardown) : undefined,
      extra: Object.fromEntries(Object.entries(b.extra).map(([k, v]) => [k, summarize(v)])),
      error: failed.get(s.key),
      note: s.note,
    };
  });
  return { rounds, results };
}
