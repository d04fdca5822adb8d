/**
 * Reads the per-element counters of berth's accounting sets out of libnftables' JSON listing
 * (`nft -j list set …`), pure. Keys come back in the text form the ruleset builder writes
 * (`"br0"`, `tcp . 8080`, `10.0.0.1 . udp . 53`), so a rebuild can carry a counter over to the
 * element it writes for the same object (see buildRuleset's `counters`).
 */
export interface CounterReading {
  family: string;
  set: string;
  /** The element's key as nft text, as ruleset.ts writes it. */
  key: string;
  /** The key's parts, unquoted (`["tcp", 8080]`). */
  parts: (string | number)[];
  /** Its owner, as ruleset.ts marks it: `network <id>` or `container <id>`. */
  comment: string;
  packets: number;
  bytes: number;
}

interface JsonElem {
  val?: unknown;
  comment?: string;
  counter?: { packets?: number; bytes?: number };
}

interface JsonSet {
  family?: string;
  name?: string;
  type?: string | string[];
  elem?: unknown[];
}

function partsOf(val: unknown): (string | number)[] | undefined {
  if (typeof val === 'string' || typeof val === 'number') return [val];
  if (val && typeof val === 'object' && 'concat' in val && Array.isArray((val as { concat: unknown }).concat)) {
    const parts = (val as { concat: unknown[] }).concat;
    return parts.every((p) => typeof p === 'string' || typeof p === 'number') ? (parts as (string | number)[]) : undefined;
  }
  // Ranges and prefixes: berth never writes them into a counted set.
  return undefined;
}

/** Counted elements of every set in one JSON listing; elements without a counter are skipped. */
export function parseCounterListing(json: string): CounterReading[] {
  const doc = JSON.parse(json) as { nftables?: unknown[] };
  const out: CounterReading[] = [];
  for (const item of doc.nftables ?? []) {
    const set = (item as { set?: JsonSet }).set;
    if (!set?.family || !set.name) continue;
    const types = Array.isArray(set.type) ? set.type : [set.type ?? ''];
    for (const raw of set.elem ?? []) {
      const elem = (raw as { elem?: JsonElem }).elem;
      const parts = partsOf(elem?.val);
      if (!elem?.counter || !parts) continue;
      const key = parts.map((p, i) => (types[i] === 'ifname' ? `"${p}"` : String(p))).join(' . ');
      out.push({ family: set.family, set: set.name, key, parts, comment: elem.comment ?? '', packets: elem.counter.packets ?? 0, bytes: elem.counter.bytes ?? 0 });
    }
  }
  return out;
}
