/**
 * Which of berth's sets an older berth declared differently (pure): without intervals, or with
 * another key type (interface sets became `ifname . ifname`). A set's type and flags cannot be
 * changed in place, so the full rebuild deletes and redeclares them (see buildRuleset).
 */
import { IP6_FAMILY, IP_FAMILY, TABLE } from './names.js';

export interface DeclaredSet {
  family: string;
  name: string;
  /** The key type as nft lists it (`ifname . ifname`), without the map's value. */
  type: string;
  interval: boolean;
}

/** `family name` of each wanted set that the `nft list sets`/`list maps` text shows declared otherwise in berth's ip and ip6 tables. */
export function setsToRedeclare(listing: string, wanted: readonly DeclaredSet[]): string[] {
  const found = new Map<string, { type: string; interval: boolean }>();
  let family: string | undefined;
  let current: string | undefined;
  for (const line of listing.split('\n')) {
    const table = /^table (\S+) (\S+) \{/.exec(line);
    if (table) {
      family = (table[1] === IP_FAMILY || table[1] === IP6_FAMILY) && table[2] === TABLE ? table[1] : undefined;
      current = undefined;
      continue;
    }
    if (!family) continue;
    const set = /^\s*(?:set|map) (\S+) \{/.exec(line);
    const type = /^\s*type (.*?)(?: : .*)?$/.exec(line);
    if (set) {
      current = `${family} ${set[1]}`;
      found.set(current, { type: '', interval: false });
    } else if (current && type) {
      found.get(current)!.type = type[1]!.trim();
    } else if (current && /^\s*flags .*\binterval\b/.test(line)) {
      found.get(current)!.interval = true;
    }
  }
  return wanted
    .filter((w) => {
      const f = found.get(`${w.family} ${w.name}`);
      return f !== undefined && (f.type !== w.type || f.interval !== w.interval);
    })
    .map((w) => `${w.family} ${w.name}`);
}
