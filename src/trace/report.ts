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

/** Builds a report as the walk goes: hops in path order, the first failure kept. */
export class ReportBuilder {
  private readonly hops: Hop[] = [];
  private failure: Failure | undefined;

  ok(step: string, detail: string, evidence?: string): void {
    this.hops.push({ step, ok: true, detail, ...(evidence !== undefined && { evidence }) });
  }

  fail(step: string, detail: string, failure: { reason: string; fix: string }, evidence?: string): void {
    this.hops.push({ step, ok: false, detail, ...(evidence !== undefined && { evidence }) });
    this.failure ??= { step, ...failure };
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  build(): TraceReport {
    return { reachable: this.failure === undefined, hops: this.hops, ...(this.failure && { failure: this.failure }) };
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
