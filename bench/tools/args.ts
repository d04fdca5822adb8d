/** `--key value` arguments for the bench's small tools, with defaults. */
export function parseArgs(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out.set(a.slice(2), 'true');
    else {
      out.set(a.slice(2), next);
      i++;
    }
  }
  return out;
}

export function num(args: Map<string, string>, key: string, fallback: number): number {
  const v = args.get(key);
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${key} must be a number, not ${v}`);
  return n;
}

export function str(args: Map<string, string>, key: string, fallback?: string): string {
  const v = args.get(key) ?? fallback;
  if (v === undefined) throw new Error(`--${key} is required`);
  return v;
}

/** Median and p95 of microsecond samples. */
export function quantiles(us: number[]): { p50us: number; p95us: number } {
  const s = [...us].sort((a, b) => a - b);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]! : NaN);
  return { p50us: Math.round(at(0.5) * 10) / 10, p95us: Math.round(at(0.95) * 10) / 10 };
}
