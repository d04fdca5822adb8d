/**
 * The routed driver, Calico's model: no bridge and no encapsulation. Each container has a /32
 * address and 169.254.1.1 as its gateway, which the host end of its veth answers ARP for (proxy
 * ARP, no address on the host end); the host has a /32 route to each container (ops-routed.ts).
 *
 * With a cluster store the network is the cluster's: each host claims blocks of the pool in etcd
 * (src/cluster/routed-blocks.ts) and hands out addresses from its own blocks; its BGP speaker
 * (src/cluster/bgp/) advertises those blocks to the other hosts and to routers, so traffic between
 * hosts is routed as it is, source addresses kept. Without one the network is this host's, and
 * the speaker (if any) advertises the whole pool.
 *
 * Host ends are named `brt<6 hex of the network id><6 hex of the endpoint id>`, so the firewall
 * knows them all by `brt<6 hex>*`, as ptp's. Isolation is a bridge network's: the pool and the
 * `-o berth.allow_from` CIDRs are routed peers (exchanged un-NATed, new connections accepted both
 * ways), everything else is masqueraded on the way out and refused on the way in.
 */
import { MAX_IFNAME, OPT_BLOCK_SIZE, OPT_SCOPE, aliasPrefix } from '../../constants.js';
import { conflict, invalid } from '../../errors.js';
import { cidrsOverlap, formatIpv4, parseCidr } from '../../ipam/ipv4.js';
import { withdrawEndpoint } from '../../cluster/cluster-ipam.js';
import { blockSizeOf, claimBlockAddress, releaseOwnBlocks } from '../../cluster/routed-blocks.js';
import type { NetworkRecord } from '../../store/store.js';
import { SANDBOX_DNS_ADDRESS, type NetworkDriver } from '../driver.js';
import { detachLater } from '../detach.js';
import { networkMtu } from '../options.js';

/** `-o berth.allow_from=CIDR[,CIDR…]`: outside networks that reach containers directly (a LAN behind the router). */
export const OPT_ALLOW_FROM = 'berth.allow_from';
export const ROUTED_PREFIX = 'brt';
const netPart = (networkId: string) => networkId.slice(0, 6);

/** Read from the record, not the registry (which imports this driver). */
const isClusterScoped = (net: NetworkRecord) => net.options[OPT_SCOPE] === 'global';

function hostEnds(net: NetworkRecord): string {
  return `${ROUTED_PREFIX}${netPart(net.id)}*`;
}

function allowFromOf(options: Record<string, string>): string[] {
  const text = options[OPT_ALLOW_FROM];
  if (text === undefined) return [];
  return text.split(',').map((c) => c.trim()).filter(Boolean);
}

function checkAllowFrom(options: Record<string, string>, pool: string): string[] {
  const out: string[] = [];
  for (const text of allowFromOf(options)) {
    let cidr;
    try {
      cidr = parseCidr(text, `-o ${OPT_ALLOW_FROM}`);
    } catch {
      throw invalid(`-o ${OPT_ALLOW_FROM}=${options[OPT_ALLOW_FROM]}: "${text}" is not an IPv4 CIDR such as 10.77.0.0/24 (separate several with commas)`);
    }
    if (cidr.prefix === 0) throw invalid(`-o ${OPT_ALLOW_FROM}: ${text} would open the network to every address: name the networks that may reach it`);
    if (cidrsOverlap(cidr, parseCidr(pool))) throw invalid(`-o ${OPT_ALLOW_FROM}: ${text} overlaps the network's own pool ${pool}, which is always allowed: leave it out`);
    out.push(cidr.text);
  }
  return out;
}

export const routedDriver: NetworkDriver = {
  name: 'routed',
  scope: 'either',
  options: [OPT_BLOCK_SIZE, OPT_ALLOW_FROM],
  strictOptions: true,

  plan(ctx, draft) {
    if (!draft.subnet) throw invalid('routed networks need an IPv4 pool: drop --ipv4=false');
    if (draft.subnet6) throw invalid('--ipv6 is not supported by the routed driver yet: drop --ipv6');
    const options = { ...draft.options };
    options[OPT_BLOCK_SIZE] = String(blockSizeOf(options, parseCidr(draft.subnet)));
    const allow = checkAllowFrom(options, draft.subnet);
    if (allow.length > 0) options[OPT_ALLOW_FROM] = allow.join(',');
    // Two routed networks with one id prefix would share a host-end pattern (1 in 16 million).
    const twin = ctx.store.networks().find((n) => n.driver === 'routed' && netPart(n.id) === netPart(draft.id));
    if (twin) throw conflict(`network ids of ${draft.name} and ${twin.name} start alike (${netPart(draft.id)}): create the network again`);
    return { options, links: [] };
  },

  async ensure(ctx) {
    // Nothing of the network's own in the kernel: its routes come with its containers and BIRD.
    await ctx.bgp?.refresh();
    return false;
  },

  async remove(ctx, net) {
    if (ctx.cluster && isClusterScoped(net)) {
      await releaseOwnBlocks(ctx.cluster, net.id).catch((err) => ctx.log.warn('could not give back the network’s blocks; they go with this host’s lease', { network: net.name, error: String(err) }));
    }
    await ctx.bgp?.refresh();
  },

  hostLinkOf(net, endpointId) {
    return `${ROUTED_PREFIX}${netPart(net.id)}${endpointId.slice(0, MAX_IFNAME - ROUTED_PREFIX.length - 6)}`;
  },

  async claimAddress(ctx, net, endpointId, requested, localInUse) {
    const { ip, newBlock } = await claimBlockAddress(ctx.cluster!, net, endpointId, requested, localInUse);
    if (newBlock) ctx.log.info('claimed an address block', { network: net.name, ip });
    return ip;
  },

  async join(ctx, net, endpoint, spec) {
    const pool = parseCidr(net.subnet!);
    await ctx.kernel.call('attachRouted', {
      netnsPath: spec.netnsPath,
      hostVeth: endpoint.hostLink!,
      alias: `${aliasPrefix(ctx.paths.owner, 'endpoint')}${endpoint.id}`,
      ifname: endpoint.ifname,
      mac: endpoint.mac,
      ip: endpoint.ip!,
      pool: formatIpv4(pool.network),
      poolPrefix: pool.prefix,
      mtu: networkMtu(net),
      defaultRoute: spec.defaultRoute,
      createSandbox: spec.createSandbox,
    });
    // A block claimed for this container is advertised before it is reported started.
    await ctx.bgp?.refresh();
  },

  leave(ctx, net, endpoint, spec) {
    if (ctx.cluster && net && isClusterScoped(net)) {
      withdrawEndpoint(ctx.cluster, net.id, endpoint.id, endpoint.ip!).catch((err) => ctx.log.warn('could not withdraw an endpoint from the cluster store', { endpoint: endpoint.id, error: String(err) }));
    }
    if (!spec) return () => undefined;
    return detachLater(ctx, endpoint, spec);
  },

  firewall(net) {
    return {
      id: net.id,
      bridge: hostEnds(net),
      subnet: net.subnet!,
      gateway: net.gateway!,
      internal: net.internal,
      icc: true,
      masquerade: true,
      // The whole pool: containers on other hosts (in their blocks) are reached by routing, un-NATed.
      routedPeers: [net.subnet!, ...allowFromOf(net.options)],
    };
  },

  dns() {
    // The host has no address the containers could ask (169.254.1.1 is nobody's): a resolver in each sandbox.
    return { in: 'sandbox', address: SANDBOX_DNS_ADDRESS };
  },

  async repair(ctx, net, endpoints, _view, report) {
    for (const e of endpoints) {
      if (!e.hostLink || !e.ip) continue;
      if (!(await ctx.kernel.call('ptpRouteMissing', { hostVeth: e.hostLink, ip: e.ip }))) continue;
      await ctx.kernel.call('restoreRoutedRoute', { hostVeth: e.hostLink, ip: e.ip });
      report.reattached.push(e.hostLink);
    }
    await ctx.bgp?.refresh();
  },
};
