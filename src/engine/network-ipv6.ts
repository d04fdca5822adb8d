/**
 * The IPv6 side of a new network (`--ipv6`): the subnet the user gave, or a /64 of this host's
 * ULA /48 (Docker 27's scheme), checked against other networks and the host's own IPv6 addresses
 * and routes; its gateway (`::1` of the subnet unless given) and optional --ip-range.
 */
import { forbidden, invalid } from '../errors.js';
import {
  cidr6FromAddress,
  cidrs6Overlap,
  formatIpv6,
  isSpecialIpv6,
  parseCidr6,
  parseIpv6,
  pickSubnet6,
  ulaPrefixOf,
  type Cidr6,
} from '../ipam/ipv6.js';
import { validatePool6 } from '../ipam/pool6.js';
import type { HostView } from '../kernel/ops.js';
import type { NetworkRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { newId } from './ids.js';

export interface Ipv6Request {
  subnet6?: string;
  gateway6?: string;
  ipRange6?: string;
}

export type Ipv6Plan = Pick<NetworkRecord, 'subnet6' | 'gateway6' | 'ipRange6'>;

const HOST_ID_KEY = 'host-id';

/** A random id made once per state root (Docker's engine id plays this part): it seeds the ULA prefix. */
export function hostId(ctx: EngineContext): string {
  let id = ctx.store.getMeta(HOST_ID_KEY);
  if (!id) {
    id = newId();
    ctx.store.setMeta(HOST_ID_KEY, id);
  }
  return id;
}

/** IPv6 subnets already spoken for: other networks' and the host's global addresses and routes. */
export function taken6(ctx: EngineContext, view: HostView): { cidr: Cidr6; owner: string }[] {
  const taken = ctx.store
    .networks()
    .filter((n) => n.subnet6)
    .map((n) => ({ cidr: parseCidr6(n.subnet6!), owner: `network ${n.name}` }));
  for (const c of ctx.cluster?.allNetworks() ?? []) {
    if (c.record.subnet6 && !ctx.store.network(c.record.id)) taken.push({ cidr: parseCidr6(c.record.subnet6), owner: `network ${c.record.name}` });
  }
  const ownLinks = new Set(ctx.store.networks().flatMap((n) => n.links.filter((l) => l.owned).map((l) => l.name)));
  const ownIndexes = new Set(view.links.filter((l) => ownLinks.has(l.name)).map((l) => l.index));
  for (const a of view.addresses6 ?? []) {
    const ip = parseIpv6(a.address);
    if (ownIndexes.has(a.index) || isSpecialIpv6(ip)) continue;
    taken.push({ cidr: cidr6FromAddress(ip, a.prefix), owner: `host address ${a.address}/${a.prefix}` });
  }
  for (const r of view.routes6 ?? []) {
    const dst = parseIpv6(r.dst);
    if (r.prefix === 0 || isSpecialIpv6(dst) || (r.oif !== undefined && ownIndexes.has(r.oif))) continue;
    taken.push({ cidr: cidr6FromAddress(dst, r.prefix), owner: `host route ${r.dst}/${r.prefix}` });
  }
  return taken;
}

/**
 * `lan`: the network puts containers on an existing LAN (macvlan, ipvlan), so its IPv6 subnet is
 * the LAN's prefix, which the user names and the host may well have an address and route in (as
 * for IPv4, only other networks' subnets clash; the driver reserves the host's addresses).
 */
/**
 * On cluster networks a container's IPv6 address is the subnet's prefix + its IPv4 address (see
 * clusterAddress6): the subnet needs 32 bits of host part, and an IPv6 range has no meaning.
 */
function checkClusterIpv6(req: Ipv6Request): void {
  if (req.ipRange6) throw invalid(`an IPv6 --ip-range is not supported on cluster networks: a container's IPv6 address follows its IPv4 address, so narrow the IPv4 --ip-range instead`);
  if (req.subnet6 && parseCidr6(req.subnet6).prefix > 96) {
    throw invalid(`IPv6 subnet ${req.subnet6} is too small for a cluster network: a container's IPv6 address carries its IPv4 address in the low 32 bits, so use a /96 or wider (a /64, say)`);
  }
}

export function planIpv6(ctx: EngineContext, req: Ipv6Request, view: HostView, opts: { lan?: boolean; cluster?: boolean; driver?: string } = {}): Ipv6Plan {
  if (!req.subnet6 && (req.gateway6 || req.ipRange6)) {
    throw invalid('an IPv6 --gateway or --ip-range needs an IPv6 --subnet: pass the subnet they belong to');
  }
  if (opts.cluster) checkClusterIpv6(req);
  if (opts.lan && !req.subnet6) {
    throw invalid(`a dual-stack ${opts.driver ?? 'LAN'} network needs the LAN's IPv6 prefix: pass --subnet V6CIDR (and --gateway for its router) besides --ipv6`);
  }
  const taken = taken6(ctx, view).filter((t) => !opts.lan || t.owner.startsWith('network'));
  let subnet: Cidr6;
  if (req.subnet6) {
    subnet = parseCidr6(req.subnet6);
    if (isSpecialIpv6(subnet.network)) throw invalid(`IPv6 subnet ${subnet.text} is link-local, multicast or loopback: use a ULA (fd00::/8) or global prefix`);
    const clash = taken.find((t) => cidrs6Overlap(t.cidr, subnet));
    if (clash) throw forbidden(`Pool overlaps with other one on this address space: ${subnet.text} overlaps ${clash.owner} (${clash.cidr.text})`);
  } else {
    subnet = pickSubnet6(ulaPrefixOf(hostId(ctx)), taken.map((t) => t.cidr));
  }
  const pool = validatePool6(
    subnet,
    req.gateway6 ? parseIpv6(req.gateway6, 'IPv6 gateway') : undefined,
    req.ipRange6 ? parseCidr6(req.ipRange6, 'IPv6 ip-range') : undefined,
  );
  return { subnet6: subnet.text, gateway6: formatIpv6(pool.gateway), ipRange6: pool.ipRange?.text ?? null };
}
