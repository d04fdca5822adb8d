/**
 * dnsperf (DNS-OARC's load generator, C) as the throughput client of §5: it keeps `-q` queries in
 * flight at a cost per query far below a Node client's, so on a machine whose cores the client
 * shares with the resolver it takes less of what it measures. One run is bounded by `-l` seconds
 * and by the caller's timeout; its summary is parsed into the same shape as tools/dns-load.ts's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DnsRun } from '../sections/dns.js';
import { inNs } from './exec.js';

export const DNSPERF = 'dnsperf';

/** A query file naming `name` (type A), for `-d`; dnsperf loops over it for the whole run. */
export function dnsperfInput(dir: string, name: string): string {
  const file = path.join(dir, `${name.replace(/[^a-z0-9.-]/gi, '_')}.dnsperf`);
  fs.writeFileSync(file, `${name} A\n`);
  return file;
}

/** Runs dnsperf inside `nsPath` against `server`:`port` with `window` queries in flight for `durationMs`. */
export async function runDnsperf(nsPath: string, server: string, input: string, window: number, durationMs: number, port = 53): Promise<DnsRun> {
  const args = ['-s', server, '-p', String(port), '-d', input, '-q', String(window), '-l', String(durationMs / 1000), '-t', '1'];
  const r = await inNs(nsPath, DNSPERF, args, { timeoutMs: durationMs + 15_000 });
  if (r.code !== 0) throw new Error(`dnsperf in ${nsPath} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-500)}`);
  return parseDnsperf(r.stdout);
}

/** dnsperf's "Statistics:" summary; throws if a figure it always prints is missing. */
export function parseDnsperf(out: string): DnsRun {
  const figure = (label: string): number => {
    const m = new RegExp(`^\\s*${label}:\\s+([0-9.]+)`, 'm').exec(out);
    if (!m) throw new Error(`dnsperf printed no "${label}": ${out.trim().slice(-500)}`);
    return Number(m[1]);
  };
  const sent = figure('Queries sent');
  const answered = figure('Queries completed');
  const lost = figure('Queries lost');
  // Answers other than NOERROR count as failures, as dns-load counts them.
  const codes = /^\s*Response codes:\s+(.*)$/m.exec(out)?.[1] ?? '';
  let failed = 0;
  let firstFailure: string | undefined;
  for (const m of codes.matchAll(/([A-Z]+) (\d+)/g)) {
    if (m[1] === 'NOERROR') continue;
    failed += Number(m[2]);
    firstFailure ??= m[1];
  }
  const avgUs = figure('Average Latency \\(s\\)') * 1e6;
  return {
    sent,
    answered,
    failed,
    lost,
    ...(firstFailure && { firstFailure }),
    seconds: figure('Run time \\(s\\)'),
    qps: figure('Queries per second'),
    // dnsperf reports no percentiles: its mean latency stands in for both.
    p50us: avgUs,
    p95us: avgUs,
  };
}
