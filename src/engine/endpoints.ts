/**
 * Endpoints: a container's interface on a network; the network's driver does the kernel work. Joining follows the engine's rule for
 * every operation: reserve in the store (the address, as a `pending` endpoint, guarded by a unique
 * index), apply to the kernel, then mark it active; on failure undo the kernel work and release.
 */
import { randomBytes } from 'node:crypto';
import { BerthError, conflict, forbidden, invalid } from '../errors.js';
import { allocateAddress, checkRequestedAddress, type PoolSpec } from '../ipam/allocator.js';
import { formatIpv4, macFromIpv4, parseCidr, parseIpv4, parseMac } from '../ipam/ipv4.js';
import { formatIpv6, parseCidr6, parseIpv6 } from '../ipam/ipv6.js';
import { allocate6, checkRequested6, validatePool6 } from '../ipam/pool6.js';
import { driverOf, isClusterScoped } from '../drivers/registry.js';
import type { ClusterAgent } from '../cluster/agent.js';
import { announceEndpoint, claimAddress, releaseAddress } from '../cluster/cluster-ipam.js';
import type { AnnouncedEndpoint } from '../cluster/keys.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { newId } from './ids.js';
import { isDefaultBridge } from './networks.js';

export interface JoinRequest {
  ip?: string;
  /** `--ip6`: the IPv6 address on a dual-stack network. */
  ip6?: string;
  aliases: string[];
  mac?: string;
  /** The interface name inside the sandbox; the next free ethN when unset. */
  ifname?: string;
  /** Create the sandbox's namespace first (a new container's first network). */
  createSandbox?: boolean;
}

export function poolOf(net: NetworkRecord): PoolSpec {
  return {
    subnet: parseCidr(net.subnet!),
    gateway: parseIpv4(net.gateway!),
    ipRange: net.ipRange ? parseCidr(net.ipRange) : undefined,
    reserved: new Map(Object.entries(net.auxAddresses).filter(([, ip]) => !ip.includes(':')).map(([name, ip]) => [parseIpv4(ip), name])),
  };
}

function chooseAddress(ctx: EngineContext, net: NetworkRecord, requested: string | undefined): string {
  const pool = poolOf(net);
  const inUse = ctx.store.ipv4InUse(net.id);
  if (requested === undefined) return formatIpv4(allocateAddress(pool, inUse, net.name));
  if (isDefaultBridge(net)) {
    throw invalid(`user specified IP address is not supported on the default bridge network: create a network with --subnet and use it`);
  }
  if (!net.userSubnet) {
    throw invalid(
      `user specified IP address is supported only when connecting to networks with user configured subnets: network ${net.name} was created without --subnet`,
    );
  }
  const ip = parseIpv4(requested, 'IP address');
  checkRequestedAddress(pool, ip, inUse, net.name);
  return formatIpv4(ip);
}

/** The endpoint's IPv6 address on a dual-stack network (null on an IPv4-only one). */
function chooseAddress6(ctx: EngineContext, net: NetworkRecord, requested: string | undefined): string | null {
  if (!net.subnet6) {
    if (requested !== undefined) throw invalid(`--ip6 ${requested}: network ${net.name} has no IPv6 (create it with --ipv6), so its containers get no IPv6 address`);
    return null;
  }
  const pool = validatePool6(parseCidr6(net.subnet6), parseIpv6(net.gateway6!), net.ipRange6 ? parseCidr6(net.ipRange6) : undefined);
  // Reserved addresses of either family sit in auxAddresses (a LAN host's own IPv6 address, say).
  const reserved = Object.values(net.auxAddresses).filter((ip) => ip.includes(':'));
  const inUse = new Set([...ctx.store.addresses6InUse(net.id), ...reserved].map((ip) => parseIpv6(ip)));
  if (requested === undefined) return formatIpv6(allocate6(pool, inUse, net.name));
  const ip = parseIpv6(requested, '--ip6 address');
  checkRequested6(pool, ip, inUse, net.name);
  return formatIpv6(ip);
}

/** A locally administered MAC with Docker's 02:42 prefix and 32 random bits. */
function randomDockerMac(): string {
  return ['02', '42', ...[...randomBytes(4)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The next free interface name in the container: eth0, eth1, … */
export function nextIfname(ctx: EngineContext, containerId: string): string {
  const used = new Set(ctx.store.endpointsOfContainer(containerId).map((e) => e.ifname));
  for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
}

export async function joinNetwork(
  ctx: EngineContext,
  container: ContainerRecord,
  net: NetworkRecord,
  req: JoinRequest,
  netnsPath: string,
): Promise<EndpointRecord> {
  return (await startJoin(ctx, container, net, req, netnsPath)).applied;
}

/** An endpoint reserved in the store whose kernel side is under way (see startJoin). */
export interface PendingJoin {
  /** The reservation: its addresses and interface name are final (a driver may still pick the MAC). */
  endpoint: EndpointRecord;
  /** The active endpoint, once the driver's kernel work is done; on failure the reservation is already undone. */
  applied: Promise<EndpointRecord>;
}

/**
 * Reserves the endpoint and asks its driver for the kernel side without waiting for it, so the
 * caller can do its own part (ports, files, firewall elements) meanwhile. The kernel thread runs
 * requests in order: what the caller asks of it next runs after this join's interface is made.
 */
export async function startJoin(
  ctx: EngineContext,
  container: ContainerRecord,
  net: NetworkRecord,
  req: JoinRequest,
  netnsPath: string,
): Promise<PendingJoin> {
  const driver = driverOf(net);
  if (!driver) {
    throw invalid(`container cannot be disconnected from ${net.name} network or connected to ${net.name} network`);
  }
  if (ctx.store.endpointsOfContainer(container.id).some((e) => e.networkId === net.id)) {
    throw forbidden(`endpoint with name ${container.name} already exists in network ${net.name}`);
  }
  const id = newId();
  const cluster = isClusterScoped(net) ? ctx.cluster : undefined;
  if (isClusterScoped(net) && !cluster) throw invalid(`network ${net.name} is a cluster network and this daemon has no cluster store: start it with --cluster-store`);
  if (cluster && req.ip6 !== undefined) {
    throw invalid(`--ip6 ${req.ip6}: on cluster network ${net.name} a container's IPv6 address follows its IPv4 address (the IPv6 subnet's prefix + the IPv4 address, unique cluster-wide with it): pin it with --ip`);
  }
  const ip6 = cluster ? null : chooseAddress6(ctx, net, req.ip6);
  if (!net.subnet && req.ip !== undefined) {
    throw invalid(`--ip ${req.ip}: network ${net.name} is IPv6-only, so its containers get no IPv4 address: pin an IPv6 one with --ip6`);
  }
  const ip = cluster ? await claimClusterAddress(ctx, net, id, req.ip) : net.subnet ? chooseAddress(ctx, net, req.ip) : null;
  const release = () => (cluster && ip ? releaseAddress(cluster, net.id, ip).catch((err) => ctx.log.warn('could not free a cluster address', { ip, error: String(err) })) : undefined);
  // Docker derives the MAC from the IPv4 address; an IPv6-only endpoint gets a random one of the same prefix.
  const mac = req.mac ? parseMac(req.mac) : ip ? macFromIpv4(parseIpv4(ip)) : randomDockerMac();
  const ifname = req.ifname ?? nextIfname(ctx, container.id);
  if (ctx.store.endpointsOfContainer(container.id).some((e) => e.ifname === ifname)) {
    await release();
    throw conflict(`interface ${ifname} already exists in container ${container.name}`);
  }
  const endpoint: EndpointRecord = {
    id,
    containerId: container.id,
    networkId: net.id,
    ifname,
    ip,
    ip6: cluster ? clusterAddress6(net, ip!) : ip6,
    mac,
    aliases: req.aliases,
    hostLink: driver.hostLinkOf(net, id),
    state: 'pending',
  };
  try {
    ctx.store.insertEndpoint(endpoint);
  } catch (err) {
    await release();
    if (String(err).includes('UNIQUE')) throw conflict(`Address already in use: ${String(err).includes('ip6') ? ip6 : ip} on network ${net.name}`);
    throw err;
  }
  // The first interface carries the default route; later ones only reach their own subnet.
  const spec = { netnsPath, defaultRoute: ctx.store.endpointsOfContainer(container.id).length === 1, createSandbox: req.createSandbox };
  const applied = applyJoin(ctx, container, net, endpoint, spec, release);
  // Awaited by the caller; this only keeps a failure the caller meets later from counting as unhandled meanwhile.
  applied.catch(() => undefined);
  return { endpoint, applied };
}

async function applyJoin(
  ctx: EngineContext,
  container: ContainerRecord,
  net: NetworkRecord,
  endpoint: EndpointRecord,
  spec: { netnsPath: string; defaultRoute: boolean; createSandbox?: boolean },
  release: () => Promise<void> | undefined,
): Promise<EndpointRecord> {
  const driver = driverOf(net)!;
  const { id } = endpoint;
  const { netnsPath } = spec;
  const cluster = isClusterScoped(net) ? ctx.cluster : undefined;
  let joined: { mac?: string } | void;
  try {
    joined = await driver.join(ctx, net, endpoint, spec);
  } catch (err) {
    ctx.store.deleteEndpoint(id);
    await release();
    throw new BerthError('internal', `could not connect ${container.name} to ${net.name}: ${(err as Error).message}`, { cause: err });
  }
  const actualMac = joined?.mac ?? endpoint.mac;
  const active: EndpointRecord = { ...endpoint, mac: actualMac, state: 'active' };
  if (cluster) {
    try {
      // Peers program it from this announcement; this host already has every peer programmed.
      await announceEndpoint(cluster, announcementOf(cluster, container, active));
    } catch (err) {
      driver.leave(ctx, net, endpoint, { netnsPath })();
      ctx.store.deleteEndpoint(id);
      await release();
      throw err;
    }
  }
  ctx.store.setEndpointState(id, 'active', actualMac === endpoint.mac ? undefined : actualMac);
  return active;
}

async function claimClusterAddress(ctx: EngineContext, net: NetworkRecord, endpointId: string, requested: string | undefined): Promise<string> {
  if (requested !== undefined && !net.userSubnet) {
    throw invalid(`user specified IP address is supported only when connecting to networks with user configured subnets: network ${net.name} was created without --subnet`);
  }
  const inUse = new Set(ctx.store.addressesInUse(net.id).map((ip) => parseIpv4(ip)));
  const ip = requested === undefined ? undefined : parseIpv4(requested, 'IP address');
  const driver = driverOf(net)!;
  return driver.claimAddress ? driver.claimAddress(ctx, net, endpointId, ip, inUse) : claimAddress(ctx.cluster!, net, endpointId, ip, inUse);
}

/**
 * A cluster endpoint's IPv6 address: the IPv6 subnet's prefix with the IPv4 address as its low 32
 * bits. The IPv4 address is held cluster-wide by one CAS, so the IPv6 one is unique with it at no
 * second round trip to etcd (the subnet is /96 or wider, and the gateway ::1 is never an IPv4 address).
 */
export function clusterAddress6(net: NetworkRecord, ip: string): string | null {
  if (!net.subnet6) return null;
  return formatIpv6(parseCidr6(net.subnet6).network | BigInt(parseIpv4(ip)));
}

/** What peers learn about a local endpoint of a cluster network. */
export function announcementOf(cluster: ClusterAgent, container: ContainerRecord, e: EndpointRecord): AnnouncedEndpoint {
  return {
    id: e.id,
    networkId: e.networkId,
    containerId: container.id,
    name: container.name,
    aliases: e.aliases,
    ip: e.ip!,
    ...(e.ip6 && { ip6: e.ip6 }),
    mac: e.mac,
    hostId: cluster.hostId,
    vtep: cluster.underlay.address,
  };
}

/**
 * Removes an endpoint from the store and returns the kernel work still to do: deleting its interface.
 * That delete blocks for 16-40 ms in the kernel (RCU grace periods), so callers start it last,
 * after their own firewall and DNS updates, and do not wait for it: the kernel thread runs
 * requests in order, so anything asked of it later (a new veth with the same interface name, say)
 * happens after the delete. A failure is logged; the reconciler removes a veth whose endpoint is gone.
 */
export function leaveNetwork(
  ctx: EngineContext,
  endpoint: EndpointRecord,
  netnsPath: string | null,
  opts: { moveDefaultRoute?: boolean } = {},
): () => void {
  ctx.store.deleteEndpoint(endpoint.id);
  const net = ctx.store.network(endpoint.networkId);
  const driver = net && driverOf(net);
  if (!driver) return () => undefined;

  const nextDefaultRoute = netnsPath && opts.moveDefaultRoute ? nextGateway(ctx, endpoint.containerId) : undefined;
  return driver.leave(ctx, net, endpoint, netnsPath ? { netnsPath, nextDefaultRoute } : null);
}

/**
 * The gateway a container's default route moves to when the network carrying it goes: its
 * remaining endpoint joined first (lowest ethN) on a network that has a way out (an internal
 * network never gets the default route, as in Docker).
 */
function nextGateway(ctx: EngineContext, containerId: string): { ifname: string; gateway: string; gateway6?: string } | undefined {
  for (const e of ctx.store.endpointsOfContainer(containerId).sort((a, b) => ifnameOrder(a.ifname) - ifnameOrder(b.ifname))) {
    const net = ctx.store.network(e.networkId);
    if (net?.gateway && !net.internal) return { ifname: e.ifname, gateway: net.gateway, ...(net.gateway6 && e.ip6 && { gateway6: net.gateway6 }) };
  }
  return undefined;
}

const ifnameOrder = (ifname: string) => Number(/\d+$/.exec(ifname)?.[0] ?? Number.MAX_SAFE_INTEGER);
