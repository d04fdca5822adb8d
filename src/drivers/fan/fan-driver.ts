/**
 * The fan driver: Ubuntu Fan networking on a stock kernel (docs/fan.md). `-o underlay=F.G.0.0/16
 * -o overlay=Y.0.0.0/8` on every host: the host at F.G.A.B owns Y.A.B.0/24 (fan-mapping.ts), its
 * containers sit on a bridge with the gateway Y.A.B.1 (as a bridge network's, masqueraded to the
 * outside), and the rest of the overlay is routed through one VXLAN device whose eBPF program
 * computes, per packet, the host a destination lives on (ops-fan.ts). No store, no announcement,
 * no per-peer state: every host's slice follows from the two options and its own address.
 *
 * A local network: each host creates it with the same options and gets its own slice.
 */
import { MAX_IFNAME, OPT_ICC, OPT_MASQUERADE, OPT_MTU } from '../../constants.js';
import { conflict, invalid } from '../../errors.js';
import { broadcastOf, cidrFromAddress, cidrsOverlap, formatIpv4, parseCidr, parseIpv4 } from '../../ipam/ipv4.js';
import { VXLAN_OVERHEAD_IPV4 } from '../../kernel/netlink/vxlan.js';
import type { HostView } from '../../kernel/ops.js';
import type { EngineContext } from '../../engine/context.js';
import type { NetworkRecord } from '../../store/store.js';
import { bridgeDriver, bridgeMark, bridgeOf } from '../bridge/bridge-driver.js';
import type { NetworkDriver } from '../driver.js';
import { checkBoolOption, linkOf, networkMtu } from '../options.js';
import { fanDeviceMac, fanMap, fanVni, hostOfSlice, hostPartOf, pickHostAddress, sliceOf, type FanMap, type HostAddress } from './fan-mapping.js';

export const OPT_UNDERLAY = 'underlay';
export const OPT_OVERLAY = 'overlay';
/**
 * The fan's UDP port: Linux's VXLAN default, which Ubuntu's fan used too (berth's overlay
 * networks use 4789). Fan devices of several overlays share it, each receiving its own VNI.
 */
export const FAN_VXLAN_PORT = 8472;
/** Bumped when the eBPF program changes, so a restore replaces an older one left attached. */
const PROGRAM_VERSION = 1;

const BRIDGE_PREFIX = 'bfn';
const VXLAN_PREFIX = 'bfx';
const USAGE = `-o ${OPT_UNDERLAY}=CIDR -o ${OPT_OVERLAY}=CIDR, e.g. -o ${OPT_UNDERLAY}=192.168.0.0/16 -o ${OPT_OVERLAY}=250.0.0.0/8`;

/** The network's mapping, from its options (checked when it was created). */
function mapOf(options: Record<string, string>): FanMap & { hostAddress?: number } {
  const underlay = options[OPT_UNDERLAY];
  const overlay = options[OPT_OVERLAY];
  if (!underlay || !overlay) throw invalid(`a fan network needs both options: ${USAGE}`);
  return fanMap(underlay, overlay);
}

/** This host's IPv4 addresses on links that are not berth's own (a network's bridge is not the underlay). */
function hostAddresses(ctx: EngineContext, view: HostView): (HostAddress & { mtu: number })[] {
  const owned = new Set(ctx.store.networks().flatMap((n) => n.links.filter((l) => l.owned).map((l) => l.name)));
  const byIndex = new Map(view.links.map((l) => [l.index, l]));
  return view.addresses.flatMap((a) => {
    const link = byIndex.get(a.index);
    if (!link || owned.has(link.name) || a.address.startsWith('127.')) return [];
    return [{ address: a.address, prefix: a.prefix, ifname: link.name, mtu: link.mtu ?? 1500 }];
  });
}

/** This host's place in the fan (its mapping, its underlay address and link, its slice), once the overlay is known to be free. */
function placeOf(ctx: EngineContext, options: Record<string, string>, view: HostView) {
  const map = mapOf(options);
  const addresses = hostAddresses(ctx, view);
  const host = pickHostAddress(map, addresses);
  checkOverlayFree(ctx, map, view);
  return { map, host, ...sliceOf(map, parseIpv4(host.address)) };
}

/** The overlay must be the fan's alone: no other network, no host address or route inside it. */
function checkOverlayFree(ctx: EngineContext, map: FanMap, view: HostView): void {
  for (const n of ctx.store.networks()) {
    const theirs = n.driver === 'fan' ? mapOf(n.options).overlay : n.subnet ? parseCidr(n.subnet) : undefined;
    if (theirs && cidrsOverlap(theirs, map.overlay)) {
      throw conflict(`the overlay ${map.overlay.text} overlaps network ${n.name} (${n.driver === 'fan' ? `fan overlay ${theirs.text}` : theirs.text}): each fan needs an overlay no other network uses`);
    }
  }
  for (const c of ctx.cluster?.allNetworks() ?? []) {
    if (c.record.subnet && cidrsOverlap(parseCidr(c.record.subnet), map.overlay)) throw conflict(`the overlay ${map.overlay.text} overlaps cluster network ${c.record.name} (${c.record.subnet}): pick an overlay no network uses`);
  }
  const owned = new Set(ctx.store.networks().flatMap((n) => n.links.filter((l) => l.owned).map((l) => l.name)));
  const ownIndexes = new Set(view.links.filter((l) => owned.has(l.name)).map((l) => l.index));
  for (const a of view.addresses) {
    if (ownIndexes.has(a.index)) continue;
    if (cidrsOverlap(cidrFromAddress(parseIpv4(a.address), a.prefix), map.overlay)) throw conflict(`the overlay ${map.overlay.text} overlaps host address ${a.address}/${a.prefix}: pick an overlay the host does not use`);
  }
  for (const r of view.routes) {
    if (r.prefix === 0 || (r.oif !== undefined && ownIndexes.has(r.oif))) continue;
    if (cidrsOverlap(cidrFromAddress(parseIpv4(r.dst), r.prefix), map.overlay)) throw conflict(`the overlay ${map.overlay.text} overlaps host route ${r.dst}/${r.prefix}: pick an overlay the host does not route elsewhere`);
  }
}

function vxlanOf(net: NetworkRecord): string {
  const name = linkOf(net, 'vxlan');
  if (!name) throw new Error(`network ${net.name} has no fan device on record`);
  return name;
}

export const fanDriver: NetworkDriver = {
  name: 'fan',
  options: [OPT_UNDERLAY, OPT_OVERLAY, OPT_MASQUERADE, OPT_ICC],
  strictOptions: true,

  subnetFor(ctx, options, view) {
    const { subnet, gateway } = placeOf(ctx, options, view);
    return { subnet: subnet.text, gateway: formatIpv4(gateway) };
  },

  routedRanges(net) {
    return [mapOf(net.options).overlay.text];
  },

  plan(ctx, draft, view) {
    if (draft.internal) throw invalid('a fan network cannot be --internal: its containers reach the other hosts\' slices through this host, which --internal forbids');
    for (const key of [OPT_MASQUERADE, OPT_ICC]) checkBoolOption(draft.options, key);
    const { map, host } = placeOf(ctx, draft.options, view);
    const ceiling = host.mtu - VXLAN_OVERHEAD_IPV4;
    const asked = draft.options[OPT_MTU];
    if (asked !== undefined && Number(asked) > ceiling) {
      throw invalid(`option ${OPT_MTU}=${asked} is above what the underlay carries: ${host.ifname} has MTU ${host.mtu}, and VXLAN needs ${VXLAN_OVERHEAD_IPV4} bytes of it, so at most ${ceiling}`);
    }
    const short = draft.id.slice(0, MAX_IFNAME - BRIDGE_PREFIX.length);
    return {
      // Stored normalised; the MTU as this host's underlay allows, so every link agrees on it.
      options: {
        ...draft.options,
        [OPT_UNDERLAY]: map.hostAddress === undefined ? map.underlay.text : `${formatIpv4(map.hostAddress)}/${map.underlay.prefix}`,
        [OPT_OVERLAY]: map.overlay.text,
        [OPT_MTU]: asked ?? String(ceiling),
      },
      links: [
        { role: 'bridge', name: `${BRIDGE_PREFIX}${short}`, owned: true },
        { role: 'vxlan', name: `${VXLAN_PREFIX}${short}`, owned: true },
      ],
    };
  },

  async ensure(ctx, net) {
    const map = mapOf(net.options);
    const subnet = parseCidr(net.subnet!);
    const address = formatIpv4(hostOfSlice(map, subnet));
    const underlay = await ctx.kernel.call('underlayOf', { address });
    if (!underlay) {
      throw invalid(`fan network ${net.name}: this host's underlay address ${address} (which gives it ${subnet.text}) is on none of its interfaces any more; put it back, or remove the network and create it again`);
    }
    const mtu = networkMtu(net);
    const { created } = await ctx.kernel.call('ensureBridge', { ...bridgeMark(ctx, net), gateway: net.gateway!, prefix: subnet.prefix, broadcast: formatIpv4(broadcastOf(subnet)), mtu });
    const device = await ctx.kernel.call('ensureFanDevice', {
      name: vxlanOf(net),
      mark: bridgeMark(ctx, net).alias,
      mac: fanDeviceMac(hostPartOf(map, parseIpv4(address))),
      vni: fanVni(map),
      port: FAN_VXLAN_PORT,
      underlay: underlay.ifname,
      mtu,
      overlay: { network: formatIpv4(map.overlay.network), prefix: map.overlay.prefix },
      source: net.gateway!,
      program: { overlayNetwork: map.overlay.network, overlayPrefix: map.overlay.prefix, slicePrefix: map.slicePrefix, underlayNetwork: map.underlay.network, underlayPrefix: map.underlay.prefix, vni: fanVni(map) },
      programName: `berth-fan ${map.overlay.text} over ${map.underlay.text} v${PROGRAM_VERSION}`,
    });
    return created || device.created;
  },

  async remove(ctx, net) {
    const mark = bridgeMark(ctx, net).alias;
    if ((await ctx.kernel.call('deleteFanDevice', { name: vxlanOf(net), mark })) === 'foreign') ctx.log.warn('left a link berth did not create', { network: net.name, link: vxlanOf(net) });
    if ((await ctx.kernel.call('deleteBridge', bridgeMark(ctx, net))) === 'foreign') ctx.log.warn('left a bridge berth did not create', { network: net.name, bridge: bridgeOf(net) });
  },

  // Containers join the fan's bridge exactly as a bridge network's.
  hostLinkOf: bridgeDriver.hostLinkOf,
  join: bridgeDriver.join,
  leave: bridgeDriver.leave,
  repair: bridgeDriver.repair,

  firewall(net) {
    return {
      id: net.id,
      bridge: bridgeOf(net),
      subnet: net.subnet!,
      gateway: net.gateway!,
      internal: false,
      icc: net.options[OPT_ICC] !== 'false',
      masquerade: net.options[OPT_MASQUERADE] !== 'false',
      // The other hosts' slices: reached un-NATed, and they may open connections to containers here.
      routedPeers: [mapOf(net.options).overlay.text],
    };
  },

  dns(net) {
    return { in: 'host', address: net.gateway!, ifname: bridgeOf(net) };
  },
};
