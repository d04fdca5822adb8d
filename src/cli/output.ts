/** How the CLI prints: tables like Docker's, JSON when asked, errors on stderr with an exit code. */
import { isBerthError, messageOf } from '../errors.js';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 4)}\n`);
}

/** How a failure is introduced: Docker's prefix only for what the daemon answered, not for the CLI's own checks. */
function errorLine(err: unknown): string {
  return `${isBerthError(err) && err.fromDaemon ? 'Error response from daemon: ' : 'Error: '}${messageOf(err)}\n`;
}

/** Exit codes: 1 for a refused request, 125 when `run` itself failed (as Docker does). */
export function fail(err: unknown, exitCode = 1): never {
  process.stderr.write(errorLine(err));
  process.exit(exitCode);
}

/** Collects a repeatable option into an array. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * Docker's way with several names (`rm a b c`): act on each, print each name that worked, report
 * each failure, keep going, and exit 1 if any failed.
 */
export async function forEachRef(refs: string[], act: (ref: string) => Promise<unknown>): Promise<void> {
  let failed = false;
  for (const ref of refs) {
    try {
      await act(ref);
      console.log(ref);
    } catch (err) {
      failed = true;
      process.stderr.write(errorLine(err));
    }
  }
  if (failed) process.exit(1);
}

/** Docker's `inspect a b c`: a JSON array of what was found; exit 1 if any was not. */
export async function inspectEach(refs: string[], fetch: (ref: string) => Promise<unknown>): Promise<void> {
  const out: unknown[] = [];
  let failed: unknown;
  for (const ref of refs) {
    try {
      out.push(await fetch(ref));
    } catch (err) {
      failed = err;
    }
  }
  printJson(out);
  if (failed) fail(failed);
}
