/**
 * The bridge driver (Docker's default): one Linux bridge per network carrying the gateway address,
 * one veth pair per endpoint with its host end on the bridge. Options are Docker's.
 */
import {
  BRIDGE_PREFIX,
  MAX_IFNAME,
  OPT_BRIDGE_NAME,
  OPT_DEFAULT_BRIDGE,
  OPT_HOST_BINDING,
  OPT_ICC,
  OPT_MASQUERADE,
  OPT_ROUTED_PEERS,
  VETH_PREFIX,
  aliasPrefix,
} from '../../constants.js';
import { conflict, invalid } from '../../errors.js';
import { broadcastOf, formatIpv4, parseCidr } from '../../ipam/ipv4.js';
import { parseCidr6 } from '../../ipam/ipv6.js';
import type { HostView } from '../../kernel/ops.js';
import { foreignBridgeMessage } from '../../kernel/own-bridge.js';
import { detachLater } from '../detach.js';
import type { EngineContext } from '../../engine/context.js';
import type { NetworkRecord } from '../../store/store.js';
import type { NetworkDriver, NetworkDraft, NetworkPlan } from '../driver.js';
import { checkBoolOption, linkOf, networkMtu } from '../options.js';

const BOOL_OPTIONS = [OPT_ICC, OPT_MASQUERADE];

/** The network's bridge (every bridge network has one). */
export function bridgeOf(net: NetworkRecord): string {
  const name = linkOf(net, 'bridge');
  if (!name) throw new Error(`network ${net.name} has no bridge on record`);
  return name;
}

/** A network's bridge and the mark that says berth made it. */
export function bridgeMark(ctx: EngineContext, net: NetworkRecord): { name: string; alias: string } {
  return { name: bridgeOf(net), alias: `${aliasPrefix(ctx.paths.owner, 'network')}${net.id}` };
}

/** A bridge name asked for with -o must not name a link of the host: berth never takes one over. */
function checkBridgeNameFree(ctx: EngineContext, view: HostView, bridge: string): void {
  if (bridge.length === 0 || bridge.length > MAX_IFNAME || !/^[a-zA-Z0-9_.-]+$/.test(bridge)) {
    throw invalid(`bridge name "${bridge}" is not a valid interface name: at most ${MAX_IFNAME} characters of letters, digits, '_', '.' and '-'`);
  }
  // The firewall matches ptp networks' host ends by that prefix: a bridge named so would be taken for one.
  if (/^bpt[0-9a-f]{6}/.test(bridge)) throw invalid(`bridge name "${bridge}" is reserved: names starting with bpt and 6 hex digits are berth's ptp links`);
  const holder = ctx.store.networkOwningLink(bridge);
  if (holder) throw conflict(`bridge name ${bridge} is already used by network ${holder.name}`);
  const link = view.links.find((l) => l.name === bridge);
  if (!link) return;
  if (link.kind !== 'bridge') throw conflict(`link ${bridge} exists on the host and is not a bridge (kind ${link.kind ?? 'unknown'}): choose another name with -o ${OPT_BRIDGE_NAME}=NAME`);
  throw conflict(foreignBridgeMessage(link.name));
}

export const bridgeDriver: NetworkDriver = {
  name: 'bridge',
  options: [OPT_BRIDGE_NAME, OPT_ICC, OPT_MASQUERADE, OPT_HOST_BINDING, OPT_DEFAULT_BRIDGE],
  strictOptions: false,

  plan(ctx: EngineContext, draft: NetworkDraft, view: HostView): NetworkPlan {
    if (draft.options[OPT_ROUTED_PEERS] !== undefined) throw invalid(`-o ${OPT_ROUTED_PEERS} is set by the daemon (--cluster-cidr), not per network; use -d fan for a routed network across hosts`);
    for (const key of BOOL_OPTIONS) checkBoolOption(draft.options, key);
    const asked = draft.options[OPT_BRIDGE_NAME];
    if (asked !== undefined) checkBridgeNameFree(ctx, view, asked);
    const bridge = asked ?? `${BRIDGE_PREFIX}${draft.id.slice(0, MAX_IFNAME - BRIDGE_PREFIX.length)}`;
    return { options: draft.options, links: [{ role: 'bridge', name: bridge, owned: true }] };
  },

  async ensure(ctx, net) {
    const { created } = await ctx.kernel.call('ensureBridge', {
      ...bridgeMark(ctx, net),
      ...bridgeSide4(net),
      ...(net.subnet6 && { gateway6: net.gateway6!, prefix6: parseCidr6(net.subnet6).prefix }),
      mtu: networkMtu(net),
    });
    return created;
  },

  async remove(ctx, net) {
    if ((await ctx.kernel.call('deleteBridge', bridgeMark(ctx, net))) === 'foreign') {
      ctx.log.warn('left a bridge berth did not create', { network: net.name, bridge: bridgeOf(net) });
    }
  },

  hostLinkOf(_net, endpointId) {
    return `${VETH_PREFIX}${endpointId.slice(0, MAX_IFNAME - VETH_PREFIX.length - 1)}`;
  },

  async join(ctx, net, endpoint, spec) {
    await ctx.kernel.call('attach', {
      netnsPath: spec.netnsPath,
      bridge: bridgeOf(net),
      bridgeMark: bridgeMark(ctx, net).alias,
      hostVeth: endpoint.hostLink!,
      alias: `${aliasPrefix(ctx.paths.owner, 'endpoint')}${endpoint.id}`,
      ifname: endpoint.ifname,
      mac: endpoint.mac,
      ...(endpoint.ip && { ip: endpoint.ip, ...bridgeSide4(net) }),
      ...(endpoint.ip6 && net.subnet6 && { ip6: { ip: endpoint.ip6, prefix: parseCidr6(net.subnet6).prefix, gateway: net.gateway6! } }),
      mtu: networkMtu(net),
      defaultRoute: spec.defaultRoute,
      createSandbox: spec.createSandbox,
    });
  },

  leave(ctx, net, endpoint, spec) {
    const bridge = net ? linkOf(net, 'bridge') : undefined;
    // The host's neighbour entry for the address goes now (a new endpoint may reuse the address next).
    if (!spec) {
      if (bridge) forgetNeighbour(ctx, bridge, [endpoint.ip, endpoint.ip6]);
      return () => undefined;
    }
    return detachLater(ctx, endpoint, spec, bridge);
  },

  firewall(net) {
    return {
      id: net.id,
      bridge: bridgeOf(net),
      ...(net.subnet && { subnet: net.subnet, gateway: net.gateway! }),
      ...(net.subnet6 && { subnet6: net.subnet6, gateway6: net.gateway6! }),
      internal: net.internal,
      icc: net.options[OPT_ICC] !== 'false',
      masquerade: net.options[OPT_MASQUERADE] !== 'false',
      ...(net.options[OPT_ROUTED_PEERS] && { routedPeers: net.options[OPT_ROUTED_PEERS].split(',') }),
    };
  },

  dns(net) {
    // An IPv6-only network's resolver answers on its IPv6 gateway.
    return { in: 'host', address: net.gateway ?? net.gateway6!, ifname: bridgeOf(net) };
  },

  async repair(ctx, net, endpoints, view, report) {
    // Veths that lost their bridge (it was deleted and has just been restored) go back on it.
    const bridge = bridgeOf(net);
    if (report.unrestorable.includes(bridge)) return;
    const byName = new Map(view.links.map((l) => [l.name, l]));
    const byIndex = new Map(view.links.map((l) => [l.index, l]));
    for (const e of endpoints) {
      const veth = e.hostLink ? byName.get(e.hostLink) : undefined;
      if (!veth || byIndex.get(veth.master ?? -1)?.name === bridge) continue;
      const netnsPath = ctx.store.container(e.containerId)?.netnsPath;
      const gateway6 = e.ip6 && net.gateway6 ? net.gateway6 : undefined;
      const sandbox = netnsPath ? { netnsPath, ifname: e.ifname, gateway: net.gateway ?? undefined, gateway6 } : undefined;
      await ctx.kernel.call('reattach', { hostVeth: e.hostLink!, bridge, bridgeMark: bridgeMark(ctx, net).alias, ip: e.ip ?? undefined, ip6: e.ip6 ?? undefined, mac: e.mac, sandbox });
      report.reattached.push(e.hostLink!);
    }
  },
};

function forgetNeighbour(ctx: EngineContext, bridge: string, addresses: (string | null | undefined)[]): void {
  const ips = addresses.filter((ip): ip is string => Boolean(ip));
  ctx.kernel.call('forgetNeighbours', { bridge, ips }).catch((err) => ctx.log.warn('could not forget a neighbour entry', { bridge, ips, error: String(err) }));
}

/** The bridge's IPv4 side (gateway, prefix, broadcast); none on an IPv6-only network. */
function bridgeSide4(net: NetworkRecord): { gateway?: string; prefix?: number; broadcast?: string } {
  if (!net.subnet) return {};
  const subnet = parseCidr(net.subnet);
  return { gateway: net.gateway!, prefix: subnet.prefix, broadcast: formatIpv4(broadcastOf(subnet)) };
}

