/**
 * The tracer's answer: one hop per step of the path berth built, and the first that fails, with
 * what to do about it. This shape is the API's (POST /berth/trace), which the topology page renders.
 */
export interface Hop {
  step: string;
  ok: boolean;
  detail: string;
  /** What was read from the kernel or the store that shows it (a route, a link's state, a rule). */
  evidence?: string;
}

export interface Failure {
  step: string;
  reason: string;
  fix: string;
}

export interface TraceReport {
  reachable: boolean;
  hops: Hop[];
  failure?: Failure;
}

/**
 * Builds a report as the walk goes: hops in path order, and the failure of the first failing hop.
 * A hop learnt late (the neighbour entry, known only after the probe) goes in after the step it
 * belongs behind, so the path order, and which failure comes first, stay right.
 */
export class ReportBuilder {
  private readonly hops: Hop[] = [];
  private readonly failures = new Map<Hop, Failure>();

  ok(step: string, detail: string, evidence?: string, after?: string): void {
    this.place({ step, ok: true, detail, ...(evidence !== undefined && { evidence }) }, after);
  }

  fail(step: string, detail: string, failure: { reason: string; fix: string }, evidence?: string, after?: string): void {
    const hop = { step, ok: false, detail, ...(evidence !== undefined && { evidence }) };
    this.place(hop, after);
    this.failures.set(hop, { step, ...failure });
  }

  /** A failing hop that follows from an earlier failure: shown, never named as the cause. */
  symptom(step: string, detail: string, evidence?: string, after?: string): void {
    this.place({ step, ok: false, detail, ...(evidence !== undefined && { evidence }) }, after);
  }

  private place(hop: Hop, after: string | undefined): void {
    const at = after === undefined ? -1 : this.hops.map((h) => h.step).lastIndexOf(after);
    if (at < 0) this.hops.push(hop);
    else this.hops.splice(at + 1, 0, hop);
  }

  get failed(): boolean {
    return this.failures.size > 0;
  }

  build(): TraceReport {
    const first = this.hops.find((h) => this.failures.has(h));
    const failure = first && this.failures.get(first);
    return { reachable: failure === undefined, hops: this.hops, ...(failure && { failure }) };
  }
}

/** The CLI's default output: one line per step, then the verdict and, if any, the failure with its fix. */
export function formatReport(report: TraceReport): string {
  const width = Math.max(0, ...report.hops.map((h) => h.step.length));
  const lines = report.hops.map((h) => {
    const line = `${h.ok ? 'ok  ' : 'FAIL'}  ${h.step.padEnd(width)}  ${h.detail}`;
    return h.evidence ? `${line}\n      ${' '.repeat(width)}  ↳ ${h.evidence}` : line;
  });
  if (report.failure) {
    lines.push('', `unreachable: ${report.failure.step}: ${report.failure.reason}`, `fix: ${report.failure.fix}`);
  } else {
    lines.push('', 'reachable');
  }
  return `${lines.join('\n')}\n`;
}
