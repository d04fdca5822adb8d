/**
 * What a drop by a firewall rule means for the user, and what to do about it (pure). berth's own
 * rules are recognised by their chain and the sets they match; any other table is someone else's.
 */
import { IP_CHAINS, IP_SETS, BRIDGE_SETS, TABLE } from '../firewall/names.js';

export interface DropContext {
  family: string;
  table: string;
  chain: string;
  rule: string;
  handle?: number;
  /** 1-based position of the rule in its chain, and its reason from berth's ruleset. */
  position?: number;
  why?: string;
  /** Who is talking, for the fix: container names and the networks involved. */
  source: string;
  destination: string;
  sourceContainer?: string;
  sourceNetwork?: string;
  destinationNetwork?: string;
}

export function describeRule(d: DropContext): string {
  const where = `chain ${d.chain} of table ${d.family} ${d.table}`;
  const which = d.position !== undefined ? `rule ${d.position} of ${where}` : d.rule ? `a rule of ${where}` : `the policy of ${where}`;
  return `${which}${d.rule ? ` (\`${d.rule}\`${d.handle !== undefined ? `, handle ${d.handle}` : ''})` : ''}`;
}

export function adviseDrop(d: DropContext): { reason: string; fix: string } {
  const rule = describeRule(d);
  const because = d.why ? `: ${d.why}` : '';
  const reason = `${d.source} → ${d.destination} is dropped by ${rule}${because}`;
  if (d.table !== TABLE) {
    return { reason, fix: `table ${d.family} ${d.table} is not berth's: whoever manages it (\`nft -a list table ${d.family} ${d.table}\`) must let this flow pass` };
  }
  if (d.chain === IP_CHAINS.userForward) {
    return {
      reason: `${d.source} → ${d.destination} is dropped by your own rule in chain user-forward of table ${d.family} berth (\`${d.rule}\`${d.handle !== undefined ? `, handle ${d.handle}` : ''})`,
      fix: `remove or narrow that rule: \`nft delete rule ${d.family} berth user-forward handle ${d.handle ?? 'N'}\` (\`nft -a list chain ${d.family} berth user-forward\` shows the handles)`,
    };
  }
  if (d.rule.includes(`@${IP_SETS.internalBridges}`)) {
    return { reason, fix: `network ${d.sourceNetwork ?? d.destinationNetwork ?? ''} is --internal and cannot leave its bridge (nor take published ports): connect ${d.sourceContainer ?? 'the container'} to a non-internal network too (\`berth network connect NET ${d.sourceContainer ?? 'CONTAINER'}\`)`.replace('network  is', 'the network is') };
  }
  if (d.rule.includes(`@${IP_SETS.iccOffBridges}`) || d.rule.includes(`@${BRIDGE_SETS.iccOffSubnets}`) || d.rule.includes(`@${BRIDGE_SETS.iccOffPorts}`)) {
    return {
      reason,
      fix: `network ${d.destinationNetwork ?? ''} has com.docker.network.bridge.enable_icc=false, so its containers cannot talk to each other: publish the port (\`-p\`) and use the host's address, or put both containers on a network with icc on`,
    };
  }
  if (d.chain === IP_CHAINS.rawPrerouting && d.rule.includes('127.0.0.0/8')) {
    return { reason, fix: 'a port published on 127.0.0.1 is for the host only: publish it on the host\'s LAN address or on all addresses (`-p HOSTPORT:PORT`)' };
  }
  if (d.chain === IP_CHAINS.forward && /^oifname \. oifname @bridges (counter )?drop$/.test(d.rule.trim())) {
    const fix = d.sourceContainer && d.destinationNetwork
      ? `berth isolates networks: connect ${d.sourceContainer} to ${d.destinationNetwork} (\`berth network connect ${d.destinationNetwork} ${d.sourceContainer}\`), or publish the port and use the host's address`
      : `container addresses are not reachable from outside the host: publish the port (\`berth run -p HOSTPORT:PORT\`) and use the host's address`;
    return { reason, fix };
  }
  return { reason, fix: 'this is one of berth\'s own rules: see docs/firewall.md for what it enforces and the option that changes it' };
}
