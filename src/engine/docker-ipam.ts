/**
 * berth as dockerd's IPAM driver (`--ipam-driver berth`). Pools and the addresses handed out from
 * them are kept in the store, because dockerd never replays them (the driver reports
 * RequiresRequestReplay false). A pool berth picks clears berth's networks, other pools, the
 * host's addresses and routes, and the cluster's networks; a pool equal to an existing berth
 * network's subnet is that network (dockerd adopting it), whose own and cluster-held addresses are
 * never handed out.
 */
import { forbidden, invalid, notFound } from '../errors.js';
import { allocateAddress, checkRequestedAddress, type PoolSpec } from '../ipam/allocator.js';
import { cidrContains, cidrsOverlap, firstHost, formatIpv4, parseCidr, parseIpv4, type Cidr } from '../ipam/ipv4.js';
import { pickDefaultSubnet } from '../ipam/default-pools.js';
import type { NetworkRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { newId } from './ids.js';
import { takenSubnets } from './networks.js';

/** Docker's option marking RequestAddress for the network's gateway. */
export const REQUEST_ADDRESS_TYPE = 'RequestAddressType';
export const GATEWAY_ADDRESS_TYPE = 'com.docker.network.gateway';

export async function requestPool(ctx: EngineContext, req: { pool: string; subPool: string; v6: boolean }): Promise<{ id: string; pool: string }> {
  if (req.v6) throw invalid("berth's IPAM driver gives IPv4 pools only: drop --ipv6, or use --ipam-driver default for a dual-stack network");
  const view = await ctx.kernel.call('inspect', {});
  const pools = ctx.store.dockerPools().map((p) => ({ cidr: parseCidr(p.subnet), owner: `dockerd's pool ${p.subnet}` }));
  let subnet: Cidr;
  if (req.pool) {
    subnet = parseCidr(req.pool, 'subnet');
    const clash = pools.find((t) => cidrsOverlap(t.cidr, subnet));
    if (clash) throw forbidden(`Pool overlaps with other one on this address space: ${subnet.text} overlaps ${clash.owner}`);
    // A berth network of exactly this subnet is adopted (-o berth.name); any other overlap is refused.
    const nets = takenSubnets(ctx, view).filter((t) => t.owner.includes('network') && cidrsOverlap(t.cidr, subnet) && t.cidr.text !== subnet.text);
    if (nets[0]) throw forbidden(`Pool overlaps with other one on this address space: ${subnet.text} overlaps ${nets[0].owner} (${nets[0].cidr.text})`);
  } else {
    subnet = pickDefaultSubnet([...takenSubnets(ctx, view).map((t) => t.cidr), ...pools.map((p) => p.cidr)]);
  }
  const ipRange = req.subPool ? parseCidr(req.subPool, 'ip-range') : null;
  if (ipRange && !(cidrContains(subnet, ipRange.network) && ipRange.prefix >= subnet.prefix)) throw invalid(`--ip-range ${ipRange.text} is not inside --subnet ${subnet.text}`);
  const id = newId();
  ctx.store.insertDockerPool({ id, subnet: subnet.text, ipRange: ipRange?.text ?? null, v6: false });
  return { id, pool: subnet.text };
}

export function releasePool(ctx: EngineContext, poolId: string): void {
  ctx.store.deleteDockerPool(poolId);
}

/** The berth network behind a pool, if one has been made (or adopted) with its subnet. */
function networkOfPool(ctx: EngineContext, subnet: string): NetworkRecord | undefined {
  return ctx.store.networks().find((n) => n.subnet === subnet);
}

/** An address of the pool, as `ip/prefix`: the one asked for, the gateway, or the lowest free one. */
export function requestAddress(ctx: EngineContext, req: { poolId: string; address: string; options: Record<string, string> }): string {
  const pool = ctx.store.dockerPools().find((p) => p.id === req.poolId);
  if (!pool) throw notFound(`pool ${req.poolId} is unknown to berth's IPAM driver: remove the network and create it again`);
  const subnet = parseCidr(pool.subnet);
  const net = networkOfPool(ctx, pool.subnet);
  const gateway = net?.gateway ? parseIpv4(net.gateway) : firstHost(subnet);
  const withPrefix = (ip: number) => `${formatIpv4(ip)}/${subnet.prefix}`;
  if (req.options[REQUEST_ADDRESS_TYPE] === GATEWAY_ADDRESS_TYPE) {
    const ip = req.address ? parseIpv4(req.address, 'gateway') : gateway;
    if (!cidrContains(subnet, ip)) throw invalid(`gateway ${formatIpv4(ip)} is outside the subnet ${subnet.text}`);
    if (net?.gateway && ip !== gateway) throw invalid(`gateway ${formatIpv4(ip)}: berth network ${net.name} on ${subnet.text} has gateway ${net.gateway}: pass --gateway ${net.gateway} or none`);
    ctx.store.claimDockerPoolAddress(pool.id, formatIpv4(ip));
    return withPrefix(ip);
  }
  const spec: PoolSpec = { subnet, gateway, ...(pool.ipRange && { ipRange: parseCidr(pool.ipRange) }) };
  const inUse = new Set([
    ...ctx.store.dockerPoolAddresses(pool.id),
    ...(net ? ctx.store.addressesInUse(net.id) : []),
    ...(net ? Object.values(net.auxAddresses).filter((a) => !a.includes(':')) : []),
    ...(net && ctx.cluster ? ctx.cluster.heldAddresses(net.id).keys() : []),
  ].map((ip) => parseIpv4(ip)));
  const name = net?.name ?? pool.subnet;
  let ip: number;
  if (req.address) {
    ip = parseIpv4(req.address, 'IP address');
    checkRequestedAddress(spec, ip, inUse, name);
  } else {
    ip = allocateAddress(spec, inUse, name);
  }
  ctx.store.claimDockerPoolAddress(pool.id, formatIpv4(ip));
  return withPrefix(ip);
}

export function releaseAddress(ctx: EngineContext, poolId: string, address: string): void {
  ctx.store.releaseDockerPoolAddress(poolId, address.split('/')[0]!);
}
