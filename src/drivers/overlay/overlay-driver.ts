/**
 * The overlay driver: one L2 network across the hosts of a cluster. On each host the network is a
 * bridge (as a bridge network's) plus a VXLAN device on it (VNI from etcd, learning off, ARP
 * answered locally); each remote endpoint is three kernel entries, programmed from the cluster
 * store (ops-overlay.ts). Every host's bridge carries the network's gateway address: ARP never
 * crosses the VXLAN device, so each host is its own containers' gateway (an anycast gateway):
 * they reach the outside through masquerade on their own host and publish ports there, while
 * container-to-container traffic is bridged across hosts with source addresses preserved.
 *
 * The container MTU is derived on each host from its underlay interface (VXLAN over IPv4 costs
 * 50 bytes), so a host on a jumbo-frame underlay does not cap the others.
 */
import { MAX_IFNAME, OPT_MTU, aliasPrefix } from '../../constants.js';
import { invalid } from '../../errors.js';
import { Tunnel } from '../../cluster/tunnel.js';
import { WIREGUARD_OVERHEAD_IPV4 } from '../../cluster/wireguard-uapi.js';
import { broadcastOf, formatIpv4, parseCidr } from '../../ipam/ipv4.js';
import { parseCidr6 } from '../../ipam/ipv6.js';
import { VXLAN_OVERHEAD_IPV4 } from '../../kernel/netlink/vxlan.js';
import { OPT_VXLAN_ID, checkVni } from '../../cluster/cluster-networks.js';
import { withdrawEndpoint } from '../../cluster/cluster-ipam.js';
import type { EngineContext } from '../../engine/context.js';
import type { NetworkRecord } from '../../store/store.js';
import { detachLater } from '../detach.js';
import { bridgeDriver, bridgeOf } from '../bridge/bridge-driver.js';
import type { NetworkDriver } from '../driver.js';
import { linkOf } from '../options.js';

/** `-o encrypted`: Docker's name for an encrypted overlay. */
export const OPT_ENCRYPTED = 'encrypted';

const BRIDGE_PREFIX = 'bov';
/** bench §8: with the kernel's 1 s, a client already sending waited ~1 s in 12 of 20 samples. */
const OVERLAY_ARP_RETRANS_MS = 100;
const VXLAN_PREFIX = 'bvx';

export function vniOf(net: NetworkRecord): number {
  return Number(net.options[OPT_VXLAN_ID]);
}

function vxlanOf(net: NetworkRecord): string {
  const name = linkOf(net, 'vxlan');
  if (!name) throw new Error(`network ${net.name} has no vxlan device on record`);
  return name;
}

const mark = (ctx: EngineContext, net: NetworkRecord) => `${aliasPrefix(ctx.paths.owner, 'network')}${net.id}`;

function clusterOf(ctx: EngineContext) {
  if (!ctx.cluster) {
    throw invalid('overlay networks need a cluster store: start the daemon with --cluster-store etcd://IP:PORT[,IP:PORT…] --advertise-addr IP (see docs/overlay.md)');
  }
  return ctx.cluster;
}

export const isEncrypted = (net: NetworkRecord) => net.options[OPT_ENCRYPTED] !== undefined;

/** What the network's VXLAN runs over on this host: the underlay, or the WireGuard tunnel. */
function carrierOf(ctx: EngineContext, net: NetworkRecord): { ifname: string; address: string; mtu: number } {
  const cluster = clusterOf(ctx);
  if (!isEncrypted(net)) return cluster.underlay;
  const tunnel = cluster.tunnel!;
  if (!tunnel.address) throw new Error(`the WireGuard tunnel of encrypted network ${net.name} is not up`);
  return { ifname: tunnel.ifname, address: tunnel.address, mtu: tunnel.mtu };
}

/**
 * Where frames for a remote endpoint go: its host's underlay address, or on an encrypted network
 * its host's tunnel address (undefined until that host's tunnel is known).
 */
export function vtepFor(ctx: EngineContext, net: NetworkRecord, e: { hostId: string; vtep: string }): string | undefined {
  return isEncrypted(net) ? ctx.cluster?.hostById(e.hostId)?.tunnel?.address : e.vtep;
}

/** The remote endpoints of a network as the kernel op takes them (those with a known VTEP). */
export function remotesFor(ctx: EngineContext, net: NetworkRecord, endpoints: { hostId: string; vtep: string; mac: string; ip: string; ip6?: string }[]) {
  return endpoints.flatMap((e) => {
    const vtep = vtepFor(ctx, net, e);
    return vtep ? [{ mac: e.mac, ip: e.ip, ...(e.ip6 && net.subnet6 && { ip6: e.ip6 }), vtep }] : [];
  });
}

/** The MTU on this host: the user's -o mtu, capped by what the underlay (or tunnel) carries. */
export function overlayMtu(ctx: EngineContext, net: NetworkRecord): number {
  const ceiling = (isEncrypted(net) ? clusterOf(ctx).tunnel!.mtu : clusterOf(ctx).underlay.mtu) - VXLAN_OVERHEAD_IPV4;
  const asked = net.options[OPT_MTU] === undefined ? undefined : Number(net.options[OPT_MTU]);
  if (asked !== undefined && asked > ceiling) ctx.log.warn('overlay MTU option is above what this host’s underlay carries: using the underlay’s', { network: net.name, asked, used: ceiling });
  return Math.min(asked ?? ceiling, ceiling);
}

export const overlayDriver: NetworkDriver = {
  name: 'overlay',
  scope: 'global',
  options: [OPT_VXLAN_ID, OPT_ENCRYPTED],
  strictOptions: true,

  plan(ctx, draft) {
    const cluster = clusterOf(ctx);
    checkVni(draft.options[OPT_VXLAN_ID]);
    const options = { ...draft.options };
    const encrypted = options[OPT_ENCRYPTED];
    if (encrypted !== undefined) {
      if (!['', 'true', 'false'].includes(encrypted)) throw invalid(`-o ${OPT_ENCRYPTED}=${encrypted}: give it no value (as Docker), or true or false`);
      if (encrypted === 'false') delete options[OPT_ENCRYPTED];
      else {
        options[OPT_ENCRYPTED] = '';
        Tunnel.checkAvailable();
      }
    }
    const asked = options[OPT_MTU];
    const wireguard = options[OPT_ENCRYPTED] !== undefined ? WIREGUARD_OVERHEAD_IPV4 : 0;
    const ceiling = cluster.underlay.mtu - wireguard - VXLAN_OVERHEAD_IPV4;
    if (asked !== undefined && Number(asked) > ceiling) {
      throw invalid(
        `option ${OPT_MTU}=${asked} is above what the underlay carries: ${cluster.underlay.ifname} has MTU ${cluster.underlay.mtu}, and VXLAN needs ${VXLAN_OVERHEAD_IPV4} bytes of it${wireguard ? ` and WireGuard ${wireguard}` : ''}, so at most ${ceiling}`,
      );
    }
    const short = draft.id.slice(0, MAX_IFNAME - BRIDGE_PREFIX.length);
    return {
      options,
      links: [
        { role: 'bridge', name: `${BRIDGE_PREFIX}${short}`, owned: true },
        { role: 'vxlan', name: `${VXLAN_PREFIX}${short}`, owned: true },
      ],
    };
  },

  async ensure(ctx, net) {
    const cluster = clusterOf(ctx);
    if (isEncrypted(net)) await cluster.tunnel!.ensure();
    const carrier = carrierOf(ctx, net);
    const subnet = parseCidr(net.subnet!);
    const mtu = overlayMtu(ctx, net);
    const { created } = await ctx.kernel.call('ensureBridge', {
      name: bridgeOf(net),
      alias: mark(ctx, net),
      gateway: net.gateway!,
      prefix: subnet.prefix,
      broadcast: formatIpv4(broadcastOf(subnet)),
      ...(net.subnet6 && { gateway6: net.gateway6!, prefix6: parseCidr6(net.subnet6).prefix }),
      mtu,
    });
    const vx = await ctx.kernel.call('ensureVxlan', {
      name: vxlanOf(net),
      mark: mark(ctx, net),
      vni: vniOf(net),
      local: carrier.address,
      underlay: carrier.ifname,
      mtu,
      bridge: bridgeOf(net),
      ipv6: Boolean(net.subnet6),
    });
    // Every remote endpoint known so far, before any local one is announced.
    const remotes = remotesFor(ctx, net, cluster.remoteEndpointsOf(net.id));
    if (remotes.length > 0) await ctx.kernel.call('programRemotes', { vxlan: vxlanOf(net), add: remotes, remove: [] });
    return created || vx.created;
  },

  async remove(ctx, net) {
    await ctx.kernel.call('deleteVxlan', { name: vxlanOf(net), mark: mark(ctx, net) });
    // The tunnel goes with the last encrypted network on this host.
    const tunnel = ctx.cluster?.tunnel;
    if (tunnel && isEncrypted(net) && !ctx.store.networks().some((n) => n.id !== net.id && n.driver === 'overlay' && isEncrypted(n))) {
      await tunnel.stop().catch((err) => ctx.log.warn('could not stop the WireGuard tunnel', { error: String(err) }));
    }
    if ((await ctx.kernel.call('deleteBridge', { name: bridgeOf(net), alias: mark(ctx, net) })) === 'foreign') {
      ctx.log.warn('left a bridge berth did not create', { network: net.name, bridge: bridgeOf(net) });
    }
  },

  // Veths on the bridge, named as the bridge driver names them.
  hostLinkOf: bridgeDriver.hostLinkOf,

  async join(ctx, net, endpoint, spec) {
    const subnet = parseCidr(net.subnet!);
    await ctx.kernel.call('attach', {
      netnsPath: spec.netnsPath,
      bridge: bridgeOf(net),
      bridgeMark: mark(ctx, net),
      hostVeth: endpoint.hostLink!,
      alias: `${aliasPrefix(ctx.paths.owner, 'endpoint')}${endpoint.id}`,
      ifname: endpoint.ifname,
      mac: endpoint.mac,
      ip: endpoint.ip!,
      prefix: subnet.prefix,
      broadcast: formatIpv4(broadcastOf(subnet)),
      gateway: net.gateway!,
      ...(endpoint.ip6 && net.subnet6 && { ip6: { ip: endpoint.ip6, prefix: parseCidr6(net.subnet6).prefix, gateway: net.gateway6! } }),
      mtu: overlayMtu(ctx, net),
      defaultRoute: spec.defaultRoute,
      createSandbox: spec.createSandbox,
      // A container that asks for a remote address before its host has programmed it (a peer
      // that just started) gets no answer from the ARP proxy; it asks again after this, not 1 s.
      arpRetransMs: OVERLAY_ARP_RETRANS_MS,
    });
  },

  leave(ctx, net, endpoint, spec) {
    // Peers stop sending to it and its address returns to the pool. If etcd is unreachable the
    // keys go with this host's lease, or the next announce (start, reconcile) prunes them.
    if (ctx.cluster && net) {
      withdrawEndpoint(ctx.cluster, net.id, endpoint.id, endpoint.ip!).catch((err) => ctx.log.warn('could not withdraw an endpoint from the cluster store', { endpoint: endpoint.id, error: String(err) }));
    }
    const bridge = net ? linkOf(net, 'bridge') : undefined;
    if (!spec) return () => undefined;
    return detachLater(ctx, endpoint, spec, bridge);
  },

  firewall(net) {
    return { id: net.id, bridge: bridgeOf(net), subnet: net.subnet!, gateway: net.gateway!, ...(net.subnet6 && { subnet6: net.subnet6 }), internal: net.internal, icc: true, masquerade: true };
  },

  dns(net) {
    return { in: 'host', address: net.gateway!, ifname: bridgeOf(net) };
  },

  async repair(ctx, net, endpoints, view, report) {
    // Entries for endpoints the cluster no longer has (a removal that raced a restore) go;
    // ensure() has just re-programmed every endpoint it has. Not before the first listing (a
    // restart's reconcile): the cache knows no remote yet, and every entry would look stale.
    if (ctx.cluster?.listed && !report.unrestorable.includes(vxlanOf(net))) {
      const known = new Set(ctx.cluster.remoteEndpointsOf(net.id).map((e) => `${e.mac}/${e.ip}`));
      const stale = (await ctx.kernel.call('programmedRemotes', { vxlan: vxlanOf(net) })).filter((r) => !known.has(`${r.mac}/${r.ip}`));
      if (stale.length > 0) {
        await ctx.kernel.call('programRemotes', { vxlan: vxlanOf(net), add: [], remove: stale });
        ctx.log.info('removed stale remote endpoints', { network: net.name, entries: stale.map((r) => r.ip) });
      }
    }
    // Veths that lost their bridge go back on it, as on a bridge network (same bridge and mark).
    await bridgeDriver.repair(ctx, net, endpoints, view, report);
  },
};
