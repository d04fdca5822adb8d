/**
 * Which of berth's interval sets an older berth made without intervals (pure). Their flags cannot
 * be changed in place, so the full rebuild deletes and redeclares them (see buildRuleset).
 */
import { IP_FAMILY, TABLE } from './names.js';

/** Names among `wanted` that `nft list sets` text shows in `ip berth` without `flags interval`. */
export function setsLackingIntervals(listing: string, wanted: readonly string[]): string[] {
  const found = new Map<string, boolean>();
  let inTable = false;
  let current: string | undefined;
  for (const line of listing.split('\n')) {
    const table = /^table (\S+) (\S+) \{/.exec(line);
    if (table) {
      inTable = table[1] === IP_FAMILY && table[2] === TABLE;
      continue;
    }
    if (!inTable) continue;
    const set = /^\s*(?:set|map) (\S+) \{/.exec(line);
    if (set) {
      current = set[1];
      found.set(current!, false);
    } else if (current && /^\s*flags .*\binterval\b/.test(line)) {
      found.set(current, true);
    }
  }
  return wanted.filter((name) => found.get(name) === false);
}
