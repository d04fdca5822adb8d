/**
 * Why a rule of berth's tables exists, for naming the rule that dropped a probe. berth's ruleset
 * builder writes each rule's reason as a comment above it; the kernel keeps no comments, but the
 * rules of a chain are in the kernel in the order the builder wrote them, so a rule's position in
 * its chain (found by its handle) names its reason here.
 */
import { buildRuleset } from '../firewall/ruleset.js';
import { TABLE } from '../firewall/names.js';

let cache: Map<string, string[]> | undefined;

/** `family chain` → the reasons of its rules, in order (pure: parses the builder's own script). */
export function ruleReasons(script = buildRuleset({ networks: [], ports: [] })): Map<string, string[]> {
  const reasons = new Map<string, string[]>();
  let comment: string[] = [];
  for (const line of script.split('\n')) {
    if (line.startsWith('#')) {
      comment.push(line.replace(/^#\s?/, ''));
      continue;
    }
    const rule = new RegExp(`^add rule (\\S+) ${TABLE} (\\S+) `).exec(line);
    if (rule) {
      const [, family, chain] = rule as unknown as [string, string, string];
      // The first rule of a chain shares its comment block with the chain's own header
      // (`chain: why`), which ends at the first line ending a sentence.
      if (comment[0]?.startsWith(`${chain}: `)) comment = comment.slice(comment.findIndex((l) => /[.)]$/.test(l)) + 1);
      const key = `${family} ${chain}`;
      reasons.set(key, [...(reasons.get(key) ?? []), comment.join(' ')]);
    }
    comment = [];
  }
  return reasons;
}

/** The reason of the rule at `position` (0-based) in a chain of berth's tables. */
export function ruleReason(family: string, chain: string, position: number): string | undefined {
  cache ??= ruleReasons();
  return cache.get(`${family} ${chain}`)?.[position];
}

/** The first rule of a chain whose reason matches: its 1-based position and reason. */
export function ruleMatching(family: string, chain: string, pattern: RegExp): { position: number; why: string } | undefined {
  cache ??= ruleReasons();
  const reasons = cache.get(`${family} ${chain}`) ?? [];
  const i = reasons.findIndex((w) => pattern.test(w));
  return i < 0 ? undefined : { position: i + 1, why: reasons[i]! };
}
