/** Network operations: create, remove, prune, and the predefined `bridge`, `host` and `none`. */
import {
  DEFAULT_BRIDGE,
  DEFAULT_MTU,
  DEFAULT_NETWORK,
  NAME_PATTERN,
  OPT_BRIDGE_NAME,
  OPT_DEFAULT_BRIDGE,
  OPT_HOST_BINDING,
  OPT_ICC,
  OPT_MASQUERADE,
  OPT_MTU,
  OPT_ROUTED_PEERS,
  OPT_SCOPE,
} from '../constants.js';
import { BerthError, conflict, forbidden, invalid } from '../errors.js';
import { cidrFromAddress, cidrsOverlap, firstHost, formatIpv4, parseCidr, parseIpv4, type Cidr } from '../ipam/ipv4.js';
import { DEFAULT_BRIDGE_SUBNET, pickDefaultSubnet } from '../ipam/default-pools.js';
import { validatePoolSpec } from '../ipam/allocator.js';
import type { HostView } from '../kernel/ops.js';
import { checkOptionKeys } from '../drivers/options.js';
import { driverNamed, driverNames, driverOf, isClusterScoped } from '../drivers/registry.js';
import { publishNetwork, unpublishNetwork } from '../cluster/cluster-networks.js';
import type { NetworkRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { newId } from './ids.js';
import { getNetwork } from './lookup.js';
import { planIpv6, taken6 } from './network-ipv6.js';
import { cidrs6Overlap, parseCidr6 } from '../ipam/ipv6.js';

/** Drivers whose networks may be dual stack (`--ipv6`); the others refuse it by name. */
const IPV6_DRIVERS = new Set(['bridge', 'ptp', 'macvlan', 'ipvlan', 'overlay']);
/** Drivers that put containers on an existing LAN: its IPv6 prefix is the LAN's, given by the user. */
const LAN_DRIVERS = new Set(['macvlan', 'ipvlan']);

export interface CreateNetworkRequest {
  name: string;
  driver?: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  /** `--aux-address NAME=IP`: addresses IPAM never hands out. */
  auxAddresses?: Record<string, string>;
  internal?: boolean;
  labels?: Record<string, string>;
  options?: Record<string, string>;
  /** `--ipv6`: the network is dual stack; the IPv6 subnet is `subnet6`, or a /64 of the host's ULA prefix. */
  ipv6?: boolean;
  /** `--ipv4=false` (IPv6-only, Docker 28). */
  ipv4?: boolean;
  subnet6?: string;
  gateway6?: string;
  ipRange6?: string;
}

/** A network with a driver and an address pool (every network but `host` and `none`). */
export function hasDriver(net: NetworkRecord): boolean {
  return driverOf(net) !== undefined;
}

function validateName(name: string): void {
  if (!name) throw invalid('a network name is required');
  if (!NAME_PATTERN.test(name)) {
    throw invalid(`invalid network name "${name}": use letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
}

/** Subnets already spoken for: other networks' and every address or route of the host. */
export function takenSubnets(ctx: EngineContext, view: HostView): { cidr: Cidr; owner: string }[] {
  const taken = ctx.store
    .networks()
    .filter((n) => n.subnet)
    .map((n) => ({ cidr: parseCidr(n.subnet!), owner: `network ${n.name}` }));
  for (const n of ctx.store.networks()) {
    for (const range of driverOf(n)?.routedRanges?.(n) ?? []) taken.push({ cidr: parseCidr(range), owner: `network ${n.name} (it routes ${range})` });
  }
  for (const c of ctx.cluster?.allNetworks() ?? []) {
    if (c.record.subnet && !ctx.store.network(c.record.id)) taken.push({ cidr: parseCidr(c.record.subnet), owner: `cluster network ${c.record.name}` });
  }
  const ownLinks = new Set(ctx.store.networks().flatMap((n) => n.links.filter((l) => l.owned).map((l) => l.name)));
  const ownIndexes = new Set(view.links.filter((l) => ownLinks.has(l.name)).map((l) => l.index));
  for (const a of view.addresses) {
    if (ownIndexes.has(a.index) || a.address.startsWith('127.')) continue;
    taken.push({ cidr: cidrFromAddress(parseIpv4(a.address), a.prefix), owner: `host address ${a.address}/${a.prefix}` });
  }
  for (const r of view.routes) {
    if (r.prefix === 0 || (r.oif !== undefined && ownIndexes.has(r.oif))) continue;
    taken.push({ cidr: cidrFromAddress(parseIpv4(r.dst), r.prefix), owner: `host route ${r.dst}/${r.prefix}` });
  }
  return taken;
}

export async function createNetwork(ctx: EngineContext, req: CreateNetworkRequest): Promise<NetworkRecord> {
  validateName(req.name);
  const driverName = req.driver || 'bridge';
  const driver = driverNamed(driverName);
  if (!driver) {
    if (['host', 'null', 'none'].includes(driverName)) throw forbidden(`only one instance of "${driverName}" network is allowed`);
    throw new BerthError('not-found', `plugin "${driverName}" not found: berth's network drivers are ${driverNames().join(', ')}`);
  }
  const existing = ctx.store.networkByName(req.name);
  if (existing) throw conflict(`network with name ${req.name} already exists`);
  const global = driver.scope === 'global' || (driver.scope === 'either' && ctx.cluster !== undefined);
  if (global && !ctx.cluster) {
    throw invalid(`-d ${driver.name} needs a cluster store: start the daemon with --cluster-store etcd://IP:PORT[,IP:PORT…] --advertise-addr IP (see docs/overlay.md)`);
  }
  if (ctx.cluster?.network(req.name)) throw conflict(`network with name ${req.name} already exists in the cluster`);
  const options = { ...(req.options ?? {}) };
  checkOptionKeys(driver, options);
  const aux = Object.entries(req.auxAddresses ?? {});
  if (!req.subnet && (req.gateway || req.ipRange || aux.length > 0)) {
    throw invalid('--gateway, --ip-range and --aux-address need --subnet: pass the subnet they belong to');
  }

  if ((req.subnet6 || req.gateway6 || req.ipRange6) && !req.ipv6) {
    throw invalid('an IPv6 --subnet, --gateway or --ip-range needs --ipv6: add --ipv6 to make the network dual stack');
  }
  const ipv4 = req.ipv4 !== false;
  if (!ipv4) checkIpv6Only(req, driver.name);
  const view = await ctx.kernel.call('inspect', { ipv6: req.ipv6 === true });
  if (req.ipv6 && !IPV6_DRIVERS.has(driver.name)) {
    throw invalid(`--ipv6 is not supported by the ${driver.name} driver yet: berth's dual-stack networks are ${[...IPV6_DRIVERS].join(', ')}`);
  }
  const ipv6 = req.ipv6 ? planIpv6(ctx, req, view, { lan: LAN_DRIVERS.has(driver.name) && !req.internal, cluster: global, driver: driver.name }) : {};
  const taken = takenSubnets(ctx, view);
  const derived = ipv4 ? driver.subnetFor?.(ctx, options, view) : undefined;
  if (derived) checkDerivedSubnet(req, derived, driver.name);
  const v4 = ipv4 ? planIpv4(derived ? { ...req, ...derived } : req, taken) : undefined;

  const id = newId();
  const auxAddresses = v4?.auxAddresses ?? {};
  const plan = driver.plan(
    ctx,
    { id, name: req.name, internal: req.internal ?? false, options, ...(v4 && { subnet: v4.subnet, gateway: v4.gateway }), ...(ipv6.subnet6 && { subnet6: ipv6.subnet6, gateway6: ipv6.gateway6! }), auxAddresses },
    view,
  );
  if (driver.scope === 'either') plan.options[OPT_SCOPE] = global ? 'global' : 'local';
  for (const name of Object.keys(plan.auxAddresses ?? {})) {
    if (auxAddresses[name] !== undefined) throw invalid(`aux-address name ${name} is berth's own on ${driver.name} networks: choose another name`);
  }
  let record: NetworkRecord = {
    id,
    name: req.name,
    driver: driver.name,
    links: plan.links,
    subnet: v4?.subnet ?? null,
    gateway: v4?.gateway ?? null,
    ipRange: v4?.ipRange ?? null,
    ...ipv6,
    auxAddresses: { ...auxAddresses, ...plan.auxAddresses },
    internal: req.internal ?? false,
    userSubnet: Boolean(req.subnet),
    options: plan.options,
    labels: req.labels ?? {},
    created: new Date().toISOString(),
    predefined: false,
  };
  if (global) {
    const published = await publishNetwork(ctx.cluster!, {
      record,
      userSubnet: Boolean(req.subnet),
      userSubnet6: Boolean(req.subnet6),
      hostTaken6: req.ipv6 ? taken6(ctx, view).map((t) => t.cidr) : [],
      pickSubnet: (clusterTaken) => {
        const s = pickDefaultSubnet([...taken.map((t) => t.cidr), ...clusterTaken.map((c) => parseCidr(c))]);
        return { subnet: s.text, gateway: formatIpv4(firstHost(s)) };
      },
    });
    record = published.record;
  }
  const unpublish = async () => {
    if (global) await unpublishNetwork(ctx.cluster!, record).catch((err) => ctx.log.warn('could not remove a half-made network from the cluster store', { network: req.name, error: String(err) }));
  };
  try {
    ctx.store.insertNetwork(record);
  } catch (err) {
    await unpublish();
    if (String(err).includes('owned_link_names')) throw conflict(`a link of network ${req.name} is already used by another network: ${plan.links.map((l) => l.name).join(', ')}`);
    if (String(err).includes('UNIQUE')) throw conflict(`network with name ${req.name} already exists`);
    throw err;
  }
  try {
    await driver.ensure(ctx, record);
    await ctx.hooks.networkAdded(record.id);
  } catch (err) {
    // networkAdded may have done part of its work (firewall elements, a DNS listener): undo it.
    await ctx.hooks.networkRemoved(record.id).catch((undoErr) => ctx.log.warn('could not undo a network’s firewall and DNS', { network: req.name, error: String(undoErr) }));
    await driver.remove(ctx, record).catch(() => undefined);
    ctx.store.deleteNetwork(record.id);
    await unpublish();
    throw err instanceof BerthError ? err : new BerthError('internal', `could not create network ${req.name}: ${(err as Error).message}`, { cause: err });
  }
  return record;
}

/** A --subnet or --gateway given for a network whose driver derives them must say the same. */
function checkDerivedSubnet(req: CreateNetworkRequest, derived: { subnet: string; gateway: string }, driver: string): void {
  if (req.subnet && parseCidr(req.subnet).text !== derived.subnet) {
    throw invalid(`--subnet ${req.subnet} does not match this host's: a ${driver} network's subnet follows from its options and the host's address (here ${derived.subnet}); drop --subnet`);
  }
  if (req.gateway && formatIpv4(parseIpv4(req.gateway, 'gateway')) !== derived.gateway) {
    throw invalid(`--gateway ${req.gateway} does not match: a ${driver} network's gateway is the first address of its subnet (here ${derived.gateway}); drop --gateway`);
  }
}

/** The IPv4 side of a new network: the user's subnet or the next free default pool, its gateway, range and reserved addresses. */
function planIpv4(req: CreateNetworkRequest, taken: { cidr: Cidr; owner: string }[]): { subnet: string; gateway: string; ipRange: string | null; auxAddresses: Record<string, string> } {
  let subnet: Cidr;
  if (req.subnet) {
    subnet = parseCidr(req.subnet);
    const clash = taken.find((t) => t.owner.startsWith('network') && cidrsOverlap(t.cidr, subnet));
    if (clash) throw forbidden(`Pool overlaps with other one on this address space: ${subnet.text} overlaps ${clash.owner} (${clash.cidr.text})`);
  } else {
    subnet = pickDefaultSubnet(taken.map((t) => t.cidr));
  }
  const aux = Object.entries(req.auxAddresses ?? {});
  const pool = validatePoolSpec(
    subnet,
    req.gateway ? parseIpv4(req.gateway, 'gateway') : undefined,
    req.ipRange ? parseCidr(req.ipRange, 'ip-range') : undefined,
    new Map(aux.map(([name, ip]) => [name, parseIpv4(ip, `aux-address ${name}`)])),
  );
  const auxAddresses = Object.fromEntries([...(pool.reserved ?? new Map<number, string>())].map(([ip, name]) => [name, formatIpv4(ip)]));
  return { subnet: subnet.text, gateway: formatIpv4(pool.gateway), ipRange: pool.ipRange?.text ?? null, auxAddresses };
}

/**
 * `--ipv4=false` (Docker 28): an IPv6-only network. A bridge network only, for now: the other
 * drivers' kernel and cluster paths assume an IPv4 address per endpoint.
 */
function checkIpv6Only(req: CreateNetworkRequest, driver: string): void {
  if (!req.ipv6) throw invalid('--ipv4=false makes an IPv6-only network: add --ipv6 (and an IPv6 --subnet, or take a /64 of the host\'s ULA prefix)');
  if (driver !== 'bridge') throw invalid(`--ipv4=false is not supported by the ${driver} driver yet: IPv6-only networks are bridge networks; drop --ipv4=false for a dual-stack ${driver} network`);
  if (req.subnet || req.gateway || req.ipRange || Object.keys(req.auxAddresses ?? {}).length > 0) {
    throw invalid('an IPv4 --subnet, --gateway, --ip-range or --aux-address was given for an IPv6-only network (--ipv4=false): drop them, or drop --ipv4=false for dual stack');
  }
}

/** Makes (or restores) what the network owns in the kernel; true if something was made. */
export async function ensureNetwork(ctx: EngineContext, net: NetworkRecord): Promise<boolean> {
  const driver = driverOf(net);
  return driver ? driver.ensure(ctx, net) : false;
}

export async function removeNetwork(ctx: EngineContext, ref: string): Promise<NetworkRecord> {
  const net = getNetwork(ctx.store, ref);
  if (net.predefined) throw forbidden(`${net.name} is a pre-defined network and cannot be removed`);
  const endpoints = ctx.store.endpointsOfNetwork(net.id);
  if (endpoints.length > 0) {
    const names = endpoints.map((e) => ctx.store.container(e.containerId)?.name ?? e.containerId);
    throw forbidden(
      `error while removing network: network ${net.name} id ${net.id} has active endpoints (containers: ${names.join(', ')}): disconnect or remove them first`,
    );
  }
  // Another host's endpoints keep a cluster network: the store refuses in the same transaction.
  if (isClusterScoped(net) && ctx.cluster) await unpublishNetwork(ctx.cluster, net);
  await dropNetwork(ctx, net);
  return net;
}

/** Takes the network off this host: resolver, firewall, kernel objects, record. */
export async function dropNetwork(ctx: EngineContext, net: NetworkRecord): Promise<void> {
  await ctx.hooks.networkRemoved(net.id);
  await driverOf(net)?.remove(ctx, net);
  ctx.store.deleteNetwork(net.id);
}

/**
 * Mirrors a cluster network another host created: the record, its kernel objects, firewall and
 * resolver. A local network with its name or an overlapping subnet keeps it off this host (logged).
 */
export async function mirrorNetwork(ctx: EngineContext, record: NetworkRecord): Promise<void> {
  if (ctx.store.network(record.id)) return;
  const byName = ctx.store.networkByName(record.name);
  const subnet = parseCidr(record.subnet!);
  const overlap = ctx.store.networks().find((n) => n.subnet && cidrsOverlap(parseCidr(n.subnet), subnet));
  const subnet6 = record.subnet6 ? parseCidr6(record.subnet6) : undefined;
  const overlap6 = subnet6 && ctx.store.networks().find((n) => n.subnet6 && cidrs6Overlap(parseCidr6(n.subnet6), subnet6));
  if (byName || overlap || overlap6) {
    ctx.log.error('cluster network cannot exist on this host', {
      network: record.name,
      reason: byName
        ? `a local network is named ${record.name}`
        : overlap
          ? `its subnet ${record.subnet} overlaps local network ${overlap.name} (${overlap.subnet})`
          : `its IPv6 subnet ${record.subnet6} overlaps local network ${overlap6!.name} (${overlap6!.subnet6})`,
    });
    return;
  }
  ctx.store.insertNetwork(record);
  try {
    await driverOf(record)!.ensure(ctx, record);
    await ctx.hooks.networkAdded(record.id);
  } catch (err) {
    ctx.log.error('could not set up a cluster network on this host; the reconciler retries', { network: record.name, error: String(err) });
  }
}

/** Removes every user-defined network without endpoints; returns their names. */
export async function pruneNetworks(ctx: EngineContext, keep: (n: NetworkRecord) => boolean = () => false): Promise<string[]> {
  const removed: string[] = [];
  for (const net of ctx.store.networks()) {
    // Cluster networks are the cluster's: a prune on one host leaves them (remove them by name).
    if (net.predefined || keep(net) || isClusterScoped(net) || ctx.store.endpointsOfNetwork(net.id).length > 0) continue;
    await removeNetwork(ctx, net.id);
    removed.push(net.name);
  }
  return removed;
}

/**
 * The default `bridge` network's subnet: 172.17.0.0/16, as Docker's, unless it overlaps a host
 * address or route of a link berth does not own (docker0 on a host that runs Docker, a LAN): then
 * the first free default pool, by the same rule as user networks.
 */
export function defaultBridgeSubnet(taken: readonly Cidr[]): Cidr {
  const clear = (c: Cidr) => !taken.some((t) => t.prefix > 0 && cidrsOverlap(c, t));
  return clear(DEFAULT_BRIDGE_SUBNET) ? DEFAULT_BRIDGE_SUBNET : pickDefaultSubnet(taken);
}

/**
 * What the default bridge must be under --cluster-cidr: the host's leased subnet, the backend's
 * MTU, and the cluster CIDR as its routed peers (exchanged without NAT, new connections accepted
 * both ways); undefined on a host without host subnets.
 */
function hostSubnetBridge(ctx: EngineContext): { subnet: Cidr; mtu: number; routedPeers: string } | undefined {
  const hs = ctx.hostSubnets;
  return hs && { subnet: parseCidr(hs.subnet), mtu: hs.mtu, routedPeers: hs.clusterCidr };
}

/** Whether the stored default bridge no longer matches the host's lease (or the lease is gone). */
function defaultBridgeStale(ctx: EngineContext, net: NetworkRecord): boolean {
  const want = hostSubnetBridge(ctx);
  if (!want) return net.options[OPT_ROUTED_PEERS] !== undefined;
  return net.subnet !== want.subnet.text || net.options[OPT_MTU] !== String(want.mtu) || net.options[OPT_ROUTED_PEERS] !== want.routedPeers;
}

/**
 * Refuses a leased subnet the default bridge cannot take: it has containers on another subnet
 * (Flannel's "cni0 already has an IP address different from …", refused before anything changes).
 */
export function vetDefaultBridgeSubnet(ctx: EngineContext, subnet: string): void {
  const net = ctx.store.networkByName(DEFAULT_NETWORK);
  if (!net || !isDefaultBridge(net) || net.subnet === subnet) return;
  const endpoints = ctx.store.endpointsOfNetwork(net.id);
  if (endpoints.length === 0) return;
  const names = endpoints.map((e) => ctx.store.container(e.containerId)?.name ?? e.containerId);
  throw conflict(
    `the default bridge network (${DEFAULT_BRIDGE}) has subnet ${net.subnet} and containers on it (${names.join(', ')}), but this host leased ${subnet} of the cluster CIDR: stop or disconnect those containers (berth rm -f ${names.join(' ')}) and start the daemon again, so ${DEFAULT_BRIDGE} can take ${subnet}`,
  );
}

/**
 * The default `bridge` network (berth0) plus `host` and `none`, made on first start; the subnet is
 * chosen once, or is the host's leased subnet under --cluster-cidr (remade, while it has no
 * containers, when the lease or the backend's MTU changed).
 */
export async function ensurePredefinedNetworks(ctx: EngineContext): Promise<void> {
  const base = { internal: false, userSubnet: false, labels: {}, created: new Date().toISOString(), predefined: true, ipRange: null, auxAddresses: {} };
  const stored = ctx.store.networkByName(DEFAULT_NETWORK);
  if (stored && isDefaultBridge(stored) && defaultBridgeStale(ctx, stored)) {
    if (ctx.store.endpointsOfNetwork(stored.id).length > 0) {
      ctx.log.warn('the default bridge keeps its subnet and options while containers use it', { subnet: stored.subnet });
    } else {
      await driverOf(stored)?.remove(ctx, stored);
      ctx.store.deleteNetwork(stored.id);
      ctx.log.info('remade the default bridge for this host’s subnet', { was: stored.subnet, now: ctx.hostSubnets?.subnet ?? 'the default pool' });
    }
  }
  if (!ctx.store.networkByName(DEFAULT_NETWORK)) {
    const leased = hostSubnetBridge(ctx);
    const subnet = leased?.subnet ?? defaultBridgeSubnet(takenSubnets(ctx, await ctx.kernel.call('inspect', {})).map((t) => t.cidr));
    ctx.store.insertNetwork({
      ...base,
      id: newId(),
      name: DEFAULT_NETWORK,
      driver: 'bridge',
      links: [{ role: 'bridge', name: DEFAULT_BRIDGE, owned: true }],
      subnet: subnet.text,
      gateway: formatIpv4(firstHost(subnet)),
      options: {
        [OPT_DEFAULT_BRIDGE]: 'true',
        [OPT_ICC]: 'true',
        [OPT_MASQUERADE]: 'true',
        [OPT_HOST_BINDING]: '0.0.0.0',
        [OPT_BRIDGE_NAME]: DEFAULT_BRIDGE,
        [OPT_MTU]: String(leased?.mtu ?? DEFAULT_MTU),
        ...(leased && { [OPT_ROUTED_PEERS]: leased.routedPeers }),
      },
    });
  }
  for (const [name, driver] of [['host', 'host'], ['none', 'null']] as const) {
    if (!ctx.store.networkByName(name)) {
      ctx.store.insertNetwork({ ...base, id: newId(), name, driver, links: [], subnet: null, gateway: null, options: {} });
    }
  }
}

export function isDefaultBridge(net: NetworkRecord): boolean {
  return net.name === DEFAULT_NETWORK && net.predefined;
}
