/**
 * The ptp driver (point-to-point, as rkt and the CNI ptp plugin): a veth pair per container and
 * no bridge; containers reach each other, the host and the outside through the host's routing
 * (see src/kernel/ops-ptp.ts). Every host end of one network is named `bpt<6 hex of the network
 * id><6 hex of the endpoint id>`, so the firewall knows them all by the prefix `bpt<6 hex>*`:
 * masquerade, published ports, isolation between networks, icc and DNS work as on bridge networks.
 */
import { MAX_IFNAME, OPT_ICC, OPT_MASQUERADE, aliasPrefix } from '../../constants.js';
import { conflict } from '../../errors.js';
import { parseCidr, formatIpv4 } from '../../ipam/ipv4.js';
import { formatIpv6, parseCidr6 } from '../../ipam/ipv6.js';
import type { NetworkRecord } from '../../store/store.js';
import type { NetworkDriver } from '../driver.js';
import { networkMark, removeOwnLinks } from '../lan-parent.js';
import { checkBoolOption, linkOf, networkMtu } from '../options.js';
import { detachLater } from '../detach.js';

/** Host ends of ptp veths: `bpt` + 6 hex of the network id + 6 of the endpoint id (15 characters). */
export const PTP_PREFIX = 'bpt';
const netPart = (networkId: string) => networkId.slice(0, 6);

/** The name pattern of every host end of the network, as the firewall matches it. */
function hostEnds(net: NetworkRecord): string {
  return `${PTP_PREFIX}${netPart(net.id)}*`;
}

export const ptpDriver: NetworkDriver = {
  name: 'ptp',
  options: [OPT_ICC, OPT_MASQUERADE],
  strictOptions: true,

  plan(ctx, draft) {
    checkBoolOption(draft.options, OPT_ICC);
    checkBoolOption(draft.options, OPT_MASQUERADE);
    // Two ptp networks with one id prefix would share a host-end pattern (1 in 16 million).
    const twin = ctx.store.networks().find((n) => n.driver === 'ptp' && netPart(n.id) === netPart(draft.id));
    if (twin) throw conflict(`network ids of ${draft.name} and ${twin.name} start alike (${netPart(draft.id)}): create the network again`);
    return {
      options: draft.options,
      links: [
        { role: 'anchor', name: `bpa${draft.id.slice(0, 9)}`, owned: true },
        { role: 'anchor-peer', name: `bpb${draft.id.slice(0, 9)}`, owned: true },
      ],
    };
  },

  async ensure(ctx, net) {
    const { created } = await ctx.kernel.call('ensurePtpAnchor', { name: linkOf(net, 'anchor')!, peer: linkOf(net, 'anchor-peer')!, mark: networkMark(ctx, net), gateway: net.gateway!, gateway6: net.gateway6 ?? undefined });
    return created;
  },

  async remove(ctx, net) {
    // The anchor's peer goes with it.
    await removeOwnLinks(ctx, { ...net, links: net.links.filter((l) => l.role !== 'anchor-peer') });
  },

  hostLinkOf(net, endpointId) {
    return `${PTP_PREFIX}${netPart(net.id)}${endpointId.slice(0, MAX_IFNAME - PTP_PREFIX.length - 6)}`;
  },

  async join(ctx, net, endpoint, spec) {
    const subnet = parseCidr(net.subnet!);
    await ctx.kernel.call('attachPtp', {
      netnsPath: spec.netnsPath,
      hostVeth: endpoint.hostLink!,
      alias: `${aliasPrefix(ctx.paths.owner, 'endpoint')}${endpoint.id}`,
      ifname: endpoint.ifname,
      mac: endpoint.mac,
      ip: endpoint.ip!,
      subnet: formatIpv4(subnet.network),
      subnetPrefix: subnet.prefix,
      gateway: net.gateway!,
      ...(endpoint.ip6 && net.subnet6 && { ip6: ip6Side(net, endpoint.ip6) }),
      mtu: networkMtu(net),
      defaultRoute: spec.defaultRoute,
      createSandbox: spec.createSandbox,
    });
  },

  leave(ctx, _net, endpoint, spec) {
    if (!spec) return () => undefined;
    return detachLater(ctx, endpoint, spec);
  },

  firewall(net) {
    return {
      id: net.id,
      bridge: hostEnds(net),
      subnet: net.subnet!,
      gateway: net.gateway!,
      ...(net.subnet6 && { subnet6: net.subnet6 }),
      internal: net.internal,
      icc: net.options[OPT_ICC] !== 'false',
      masquerade: net.options[OPT_MASQUERADE] !== 'false',
    };
  },

  dns(net) {
    return { in: 'host', address: net.gateway!, ifname: hostEnds(net) };
  },

  async repair(ctx, net, endpoints, _view, report) {
    // A host route someone deleted: the container is unreachable without it.
    for (const e of endpoints) {
      if (!e.hostLink) continue;
      const ip6 = e.ip6 && net.gateway6 ? { ip6: e.ip6, gateway6: net.gateway6 } : {};
      if (!(await ctx.kernel.call('ptpRouteMissing', { hostVeth: e.hostLink, ip: e.ip!, ...ip6 }))) continue;
      await ctx.kernel.call('restorePtpRoute', { hostVeth: e.hostLink, ip: e.ip!, gateway: net.gateway!, ...ip6 });
      report.reattached.push(e.hostLink);
    }
  },
};

function ip6Side(net: NetworkRecord, ip: string) {
  const subnet = parseCidr6(net.subnet6!);
  return { ip, subnet: formatIpv6(subnet.network), prefix: subnet.prefix, gateway: net.gateway6! };
}
