/**
 * The trace's first question when the destination is named: does the name resolve from the
 * source, as the source's own processes would ask it (its resolv.conf's nameserver, from inside its
 * namespace)? Names resolve only on networks the two share, and never on the default bridge (as in
 * Docker), so this is where "different networks" and "default bridge" fail first for a user who
 * pings a name. Only berth's own resolvers are asked: a nameserver outside berth is never sent to.
 */
import * as fs from 'node:fs';
import type { EngineContext } from '../engine/context.js';
import { etcFilePaths } from '../engine/etc-files.js';
import { isDefaultBridge } from '../engine/networks.js';
import { parseResolvConf } from '../dns/resolv-conf.js';
import { SANDBOX_DNS_ADDRESS } from '../drivers/driver.js';
import { driverOf } from '../drivers/registry.js';
import type { ContainerRecord } from '../store/store.js';
import type { Attachment } from './ends.js';
import { askDns } from './probe.js';
import type { ReportBuilder } from './report.js';

const DNS_TIMEOUT_MS = 2000;

export interface NamedDestination {
  /** The name the user gave. */
  name: string;
  /** What the destination is called in messages, and the networks it is on. */
  label: string;
  networks: string[];
  /** The addresses the name should resolve to. */
  expected: string[];
}

export async function checkName(ctx: EngineContext, r: ReportBuilder, src: { container: ContainerRecord; attachments: Attachment[]; netnsPath: string }, dst: NamedDestination): Promise<void> {
  const who = `container ${src.container.name}`;
  const srcNetworks = src.attachments.map((a) => a.network);
  const owner = src.container.sharesWith ?? src.container.id;
  let server: string | undefined;
  try {
    server = parseResolvConf(fs.readFileSync(etcFilePaths(ctx, owner).resolvConf, 'utf8')).nameservers[0];
  } catch {
    server = undefined;
  }
  const resolvers = new Set([SANDBOX_DNS_ADDRESS, ...srcNetworks.flatMap((n) => driverOf(n)?.dns(n)?.address ?? [])]);
  const shared = srcNetworks.filter((n) => !isDefaultBridge(n) && dst.networks.includes(n.name)).map((n) => n.name);
  const otherNet = dst.networks.find((n) => n !== 'bridge') ?? dst.networks[0];
  const connect = otherNet ? `connect them to a common user-defined network (\`berth network connect ${otherNet} ${src.container.name}\`)` : 'put both on a common user-defined network';
  if (!server || !resolvers.has(server)) {
    if (srcNetworks.every((n) => isDefaultBridge(n))) {
      r.fail('dns', `${dst.name} from ${who}`, {
        reason: `${who} is on the default bridge network only, where containers get no name resolution for each other (as in Docker): ${dst.name} does not resolve there`,
        fix: `${otherNet && otherNet !== 'bridge' ? connect : `create a network and connect both (\`berth network create NET\`, \`berth network connect NET ${src.container.name}\`, \`berth network connect NET ${dst.label}\`)`}, or use the address ${dst.expected[0]}`,
      }, `nameserver ${server ?? '(none)'} in its resolv.conf is not a berth resolver`);
    } else {
      r.ok('dns', `not asked: ${who} uses nameserver ${server ?? '(none)'}, not a berth resolver`);
    }
    return;
  }
  const type = dst.expected.some((ip) => !ip.includes(':')) ? 'A' : 'AAAA';
  const answer = await askDns({ netnsPath: src.netnsPath, server, name: dst.name, type, timeoutMs: DNS_TIMEOUT_MS });
  const asked = `${type} ${dst.name} asked of ${server} from inside ${who}`;
  if ('error' in answer) {
    r.fail('dns', `${dst.name} from ${who}`, { reason: `the resolver at ${server} did not answer ${who}: ${answer.error}`, fix: 'run `berth system reconcile`, which restores the resolver and its firewall redirect, and trace again' }, asked);
  } else if (answer.addresses.length > 0) {
    const matches = answer.addresses.some((a) => dst.expected.includes(a));
    r.ok('dns', `${dst.name} → ${answer.addresses.join(', ')}${matches ? '' : ` (not ${dst.expected.join(', ')}: another container answers to that name on a network ${who} is on)`}`, `${asked}: ${answer.rcode}`);
  } else if (shared.length > 0) {
    r.fail('dns', `${dst.name} from ${who}`, { reason: `the resolver at ${server} answers ${answer.rcode} for ${dst.name}, though ${dst.label} and ${who} are both on ${shared.join(', ')}`, fix: 'run `berth system reconcile`, which brings the resolvers in line with the store, and trace again' }, `${asked}: ${answer.rcode}, no ${type} record`);
  } else {
    r.fail('dns', `${dst.name} from ${who}`, {
      reason: `${dst.name} does not resolve from ${who} (${answer.rcode}): a network's resolver answers names of containers on that network only, and ${dst.label} is on ${dst.networks.join(', ') || 'no network'} while ${who} is on ${srcNetworks.map((n) => n.name).join(', ')}, none in common`,
      fix: `${connect}, or use the address ${dst.expected[0]}`,
    }, `${asked}: ${answer.rcode}, no ${type} record`);
  }
}
