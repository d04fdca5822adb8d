/** Kernel operations of metrics (issue 15): read-only looks at what berth built. */
import { COUNTER_SETS, IP6_FAMILY, IP_FAMILY, TABLE } from '../firewall/names.js';
import { parseCounterListing, type CounterReading } from '../metrics/nft-counters.js';
import { NftContext } from './nft.js';

let jsonNft: NftContext | undefined;

/**
 * The per-element counters of berth's accounting sets, in both families (networks' traffic and
 * published ports'). A set that does not exist (tables flushed by someone, about to be rebuilt)
 * reads as empty.
 */
export function firewallCounters(): CounterReading[] {
  jsonNft ??= new NftContext(true);
  const out: CounterReading[] = [];
  for (const family of [IP_FAMILY, IP6_FAMILY]) {
    for (const set of COUNTER_SETS) {
      let listing: string;
      try {
        listing = jsonNft.run(`list set ${family} ${TABLE} ${set}`);
      } catch {
        continue;
      }
      out.push(...parseCounterListing(listing));
    }
  }
  return out;
}
