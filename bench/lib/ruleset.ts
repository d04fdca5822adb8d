/** Counting what a namespace's nftables ruleset holds (iptables-nft rules show up here too). */
import { inNs } from './exec.js';

export interface RuleCounts {
  tables: number;
  chains: number;
  rules: number;
  /** Elements of all named sets and maps. */
  elements: number;
  /** How long `nft -j list ruleset` took, itself a cost that grows with the ruleset. */
  listMs: number;
}

export async function countRules(nsPath: string): Promise<RuleCounts> {
  const r = await inNs(nsPath, 'nft', ['-j', 'list', 'ruleset'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`nft list ruleset in ${nsPath} failed: ${r.stderr.trim()}`);
  const counts: RuleCounts = { tables: 0, chains: 0, rules: 0, elements: 0, listMs: Math.round(r.ms * 10) / 10 };
  if (!r.stdout.trim()) return counts;
  const doc = JSON.parse(r.stdout) as { nftables: Record<string, { elem?: unknown[] }>[] };
  for (const obj of doc.nftables) {
    if ('table' in obj) counts.tables++;
    else if ('chain' in obj) counts.chains++;
    else if ('rule' in obj) counts.rules++;
    else if ('set' in obj) counts.elements += obj.set?.elem?.length ?? 0;
    else if ('map' in obj) counts.elements += obj.map?.elem?.length ?? 0;
  }
  return counts;
}
