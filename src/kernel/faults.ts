/**
 * Fault injection for tests (never set in production): with BERTH_KERNEL_FAULTS=FILE, every
 * kernel call first reads FILE, whose lines name operations to fail: `nft` fails every nft call,
 * `nft after 2` lets two more pass, then fails the rest. Counting restarts whenever the file's
 * content changes; an empty or missing file injects nothing. Lets integration tests make a late
 * step of an operation fail on a live daemon, to check what is rolled back. Besides kernel calls,
 * `dnsBatch` ends the DNS batch thread at the next batch it reads (dns/udp-batch-worker.ts).
 */
import * as fs from 'node:fs';

const file = process.env.BERTH_KERNEL_FAULTS;
let seen = '';
const passed = new Map<string, number>();

/** The injected failure for this call of `op`, if any. */
export function injectedFault(op: string): Error | undefined {
  if (!file) return undefined;
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    /* no file: no faults */
  }
  if (text !== seen) {
    seen = text;
    passed.clear();
  }
  for (const line of text.split('\n')) {
    const [name, after, count] = line.trim().split(/\s+/);
    if (name !== op) continue;
    const allowed = after === 'after' ? Number(count) : 0;
    const n = passed.get(op) ?? 0;
    if (n < allowed) {
      passed.set(op, n + 1);
      return undefined;
    }
    return new Error(`injected failure of kernel operation ${op} (BERTH_KERNEL_FAULTS)`);
  }
  return undefined;
}
