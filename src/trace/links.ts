/**
 * One side of a container's link to its network, checked in the kernel: the interface in the
 * container's namespace and, for drivers with one, the veth's host end on the network's bridge.
 */
import * as fs from 'node:fs';
import type { Kernel } from '../kernel/kernel.js';
import type { TraceLink } from '../kernel/ops-trace.js';
import { bridgeOf, type Attachment } from './ends.js';

export interface LinkSide {
  inside?: TraceLink;
  hostEnd?: TraceLink;
  bridge?: TraceLink;
  /** Set when something is wrong: what, and how to fix it. */
  problem?: { reason: string; fix: string };
  evidence: string;
}

const state = (l: TraceLink) => `${l.up ? 'up' : 'DOWN'}${l.up && !l.carrier ? ' NO-CARRIER' : ''} mtu ${l.mtu ?? '?'}`;

export async function checkLinkSide(kernel: Kernel, name: string, netnsPath: string, att: Attachment, hostLinks: TraceLink[]): Promise<LinkSide> {
  const { endpoint, network } = att;
  const reconnect = `reconnect it: \`berth network disconnect -f ${network.name} ${name} && berth network connect ${network.name} ${name}\``;
  const inside = fs.existsSync(netnsPath) ? (await kernel.call('traceLinks', { netnsPath })).find((l) => l.name === endpoint.ifname) : undefined;
  const hostEnd = endpoint.hostLink ? hostLinks.find((l) => l.name === endpoint.hostLink) : undefined;
  const bridgeName = bridgeOf(network);
  const bridge = bridgeName ? hostLinks.find((l) => l.name === bridgeName) : undefined;
  const parts = [inside ? `${endpoint.ifname} ${state(inside)} in ${name}` : `${endpoint.ifname} missing in ${name}`];
  if (endpoint.hostLink) parts.push(hostEnd ? `host end ${hostEnd.name} ${state(hostEnd)}${bridge && hostEnd.master === bridge.index ? ` on ${bridge.name}` : ''}` : `host end ${endpoint.hostLink} missing`);
  const evidence = parts.join(' ⇄ ');
  const side: LinkSide = { inside, hostEnd, bridge, evidence };
  if (endpoint.hostLink && !hostEnd) {
    side.problem = { reason: `the veth of ${name}'s ${endpoint.ifname} on network ${network.name} is gone: its host end ${endpoint.hostLink} no longer exists (deleted outside berth)`, fix: reconnect };
  } else if (!inside) {
    side.problem = { reason: `${name} has no interface ${endpoint.ifname} for network ${network.name} (deleted outside berth)`, fix: reconnect };
  } else if (!inside.up || (hostEnd && !hostEnd.up)) {
    const down = !inside.up ? `${endpoint.ifname} in ${name}` : `${hostEnd!.name} on the host`;
    side.problem = { reason: `${down} is down`, fix: `bring it up (\`ip link set ${!inside.up ? endpoint.ifname : hostEnd!.name} up\` in that namespace), or ${reconnect}` };
  } else if (bridgeName && !bridge) {
    side.problem = { reason: `network ${network.name}'s bridge ${bridgeName} is missing`, fix: 'run `berth system reconcile`: it restores the bridge and puts its ports back' };
  } else if (bridge && hostEnd && hostEnd.master !== bridge.index) {
    side.problem = { reason: `${hostEnd.name} is not a port of ${bridge.name}`, fix: 'run `berth system reconcile`: it puts the veth back on its bridge' };
  }
  return side;
}
