/** What every bench section gets: the mode, the time budget, and a progress log. */
export interface BenchContext {
  quick: boolean;
  /** Epoch ms by which the whole run must be done; sections shrink their loops to fit. */
  deadline: number;
  log(msg: string): void;
  /** Milliseconds left before the deadline. */
  left(): number;
}

export function makeContext(quick: boolean, budgetMs: number): BenchContext {
  const t0 = Date.now();
  const deadline = t0 + budgetMs;
  return {
    quick,
    deadline,
    log: (msg) => process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`),
    left: () => deadline - Date.now(),
  };
}

export interface DaemonOp {
  msg: string;
  ms: number;
  container?: string;
  detach?: boolean;
}

/** The daemon logs each operation once, as JSON with its duration: the daemon-side time. */
export function daemonOps(log: string): DaemonOp[] {
  const out: DaemonOp[] = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const e = JSON.parse(line) as DaemonOp & { outcome?: string };
      if (typeof e.ms === 'number' && e.outcome === 'ok') out.push(e);
    } catch {
      /* not a log line */
    }
  }
  return out;
}
