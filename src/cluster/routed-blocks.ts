/**
 * Address blocks of routed networks, as Calico's IPAM: a network's pool is cut into blocks
 * (`-o block_size`, /26 by default), and each host claims whole blocks by compare-and-swap, one key
 * per block on the host's lease. A host hands out addresses from its own blocks only, so what it
 * advertises over BGP is a handful of block prefixes, not a /32 per container; a host gone longer
 * than its lease's TTL loses its blocks, and another host may claim them.
 *
 * Each address is still held by its own key (cluster-ipam.ts), so removal checks, announcements and
 * restarts work as for every cluster network; the block only decides where an address comes from.
 */
import { OPT_BLOCK_SIZE } from '../constants.js';
import { BerthError, conflict, invalid } from '../errors.js';
import { allocateAddress, type PoolSpec } from '../ipam/allocator.js';
import { cidrFromAddress, formatIpv4, parseCidr, parseIpv4, type Cidr } from '../ipam/ipv4.js';
import type { NetworkRecord } from '../store/store.js';
import type { ClusterAgent } from './agent.js';
import { claimAddress } from './cluster-ipam.js';
import * as K from './keys.js';

export const DEFAULT_BLOCK_SIZE = 26;
/** Calico's range for IPv4 blocks. */
export const BLOCK_SIZE_MIN = 20;
export const BLOCK_SIZE_MAX = 32;
const ATTEMPTS = 8;

export const blocksPrefix = (networkId: string) => `${K.ROOT}blocks/${networkId}/`;
/** `/berth/v1/blocks/<networkId>/<a.b.c.d>-<len>` (a CIDR's slash would split the key). */
export const blockKey = (networkId: string, block: Cidr) => `${blocksPrefix(networkId)}${formatIpv4(block.network)}-${block.prefix}`;

export interface HeldBlock {
  hostId: string;
}

/** The network's pool as the allocator takes it (not engine/endpoints' poolOf: the driver imports this module). */
function poolOf(net: NetworkRecord): PoolSpec {
  const reserved = new Map(Object.entries(net.auxAddresses).filter(([, ip]) => !ip.includes(':')).map(([name, ip]) => [parseIpv4(ip), name]));
  return { subnet: parseCidr(net.subnet!), gateway: parseIpv4(net.gateway!), reserved };
}

/** The block size of a network: its option, checked against the pool. */
export function blockSizeOf(options: Record<string, string>, pool: Cidr): number {
  const text = options[OPT_BLOCK_SIZE] ?? String(DEFAULT_BLOCK_SIZE);
  const size = /^\d{1,2}$/.test(text) ? Number(text) : NaN;
  if (!(size >= BLOCK_SIZE_MIN && size <= BLOCK_SIZE_MAX)) {
    throw invalid(`-o ${OPT_BLOCK_SIZE}=${text} is out of range: a block is a prefix length from ${BLOCK_SIZE_MIN} to ${BLOCK_SIZE_MAX} (default ${DEFAULT_BLOCK_SIZE})`);
  }
  if (size < pool.prefix) {
    throw invalid(`pool ${pool.text} is smaller than one block (/${size}): give a larger --subnet, or a block size of at least ${pool.prefix} (-o ${OPT_BLOCK_SIZE}=${pool.prefix})`);
  }
  return size;
}

/** The block of `size` that holds `ip`. */
export function blockOf(ip: number, size: number): Cidr {
  return cidrFromAddress(ip, size);
}

/** Every block of the pool, lowest first. */
export function* blocksOfPool(pool: Cidr, size: number): Generator<Cidr> {
  const step = 2 ** (32 - size);
  const count = 2 ** (size - pool.prefix);
  for (let i = 0; i < count; i++) yield cidrFromAddress(pool.network + i * step, size);
}

/** The blocks of the network held in etcd, by block text (`10.1.0.0/26`), with their holders. */
export async function heldBlocks(agent: ClusterAgent, networkId: string): Promise<Map<string, HeldBlock>> {
  const { kvs } = await agent.etcd.list(blocksPrefix(networkId));
  const out = new Map<string, HeldBlock>();
  for (const kv of kvs) {
    const name = kv.key.slice(blocksPrefix(networkId).length).replace('-', '/');
    out.set(name, JSON.parse(kv.value) as HeldBlock);
  }
  return out;
}

/** This host's blocks of the network (what it advertises). */
export async function ownBlocks(agent: ClusterAgent, networkId: string): Promise<string[]> {
  return [...(await heldBlocks(agent, networkId))].filter(([, h]) => h.hostId === agent.hostId).map(([b]) => b);
}

/** Claims a free block for this host (CAS on its key, on the host's lease); false if another host took it first. */
async function claimBlock(agent: ClusterAgent, networkId: string, block: Cidr): Promise<boolean> {
  const key = blockKey(networkId, block);
  const value: HeldBlock = { hostId: agent.hostId };
  const txn = await agent.etcd.txn([{ key, target: 'CREATE', value: 0 }], [{ put: { key, value: JSON.stringify(value), lease: agent.leaseId } }]);
  return txn.succeeded;
}

/**
 * An address for a new endpoint from this host's blocks (claiming a block when they are full, or
 * the block of a requested address when it is free), held by its own key. Returns the address and
 * whether a block was claimed (the BGP speaker then advertises it).
 */
export async function claimBlockAddress(agent: ClusterAgent, net: NetworkRecord, endpointId: string, requested: number | undefined, localInUse: ReadonlySet<number>): Promise<{ ip: string; newBlock: boolean }> {
  const pool = poolOf(net);
  const size = blockSizeOf(net.options, pool.subnet);
  let newBlock = false;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const blocks = await heldBlocks(agent, net.id);
    const mine = [...blocks].filter(([, h]) => h.hostId === agent.hostId).map(([b]) => parseCidr(b));
    const inUse = new Set([...[...agent.heldAddresses(net.id).keys()].map((ip) => parseIpv4(ip)), ...localInUse]);
    if (requested !== undefined) {
      const block = blockOf(requested, size);
      const holder = blocks.get(block.text);
      if (holder && holder.hostId !== agent.hostId) {
        throw conflict(`address ${formatIpv4(requested)} is in block ${block.text} of network ${net.name}, held by host ${holder.hostId}: a host hands out addresses of its own blocks only, so leave --ip out or pick one in this host's blocks (${mine.map((b) => b.text).join(', ') || 'none yet'})`);
      }
      if (!holder && !(await claimBlock(agent, net.id, block))) continue;
      newBlock ||= !holder;
      return { ip: await claimAddress(agent, net, endpointId, requested, localInUse), newBlock };
    }
    for (const block of mine) {
      let ip: number;
      try {
        ip = allocateAddress({ ...pool, ipRange: block }, inUse);
      } catch {
        continue;
      }
      try {
        return { ip: await claimAddress(agent, net, endpointId, ip, localInUse), newBlock };
      } catch (err) {
        // Held meanwhile (a leftover key of this host): the next round re-reads.
        if ((err as BerthError).kind !== 'conflict') throw err;
      }
    }
    const free = firstFreeBlock(pool.subnet, size, blocks, agent.share());
    if (!free) throw conflict(`no free block of /${size} left in pool ${pool.subnet.text} of network ${net.name}, and this host's blocks are full: remove containers, or create the network with a larger --subnet or smaller blocks`);
    if (await claimBlock(agent, net.id, free)) newBlock = true;
  }
  throw new BerthError('unavailable', `could not claim an address block on network ${net.name}: ${ATTEMPTS} attempts lost to other hosts; try again`);
}

/** The first unclaimed block from this host's share of the pool on (hosts claiming at once do not race). */
function firstFreeBlock(pool: Cidr, size: number, blocks: ReadonlyMap<string, HeldBlock>, share: { index: number; of: number }): Cidr | undefined {
  const all = [...blocksOfPool(pool, size)];
  const start = Math.floor((share.index * all.length) / Math.max(1, share.of));
  for (let k = 0; k < all.length; k++) {
    const b = all[(start + k) % all.length]!;
    if (!blocks.has(b.text)) return b;
  }
  return undefined;
}

/**
 * Claims again the blocks of this host's addresses (after its lease was lost and renewed from
 * scratch, or at start): a block another host took meanwhile is reported, not taken back.
 */
export async function reclaimBlocks(agent: ClusterAgent, net: NetworkRecord, ips: readonly string[]): Promise<string[]> {
  const size = blockSizeOf(net.options, parseCidr(net.subnet!));
  const lost: string[] = [];
  const blocks = await heldBlocks(agent, net.id);
  for (const block of new Map(ips.map((ip) => { const b = blockOf(parseIpv4(ip), size); return [b.text, b]; })).values()) {
    const holder = blocks.get(block.text);
    if (holder?.hostId === agent.hostId) {
      // Same host, perhaps an old lease: put it on the current one.
      await agent.etcd.put(blockKey(net.id, block), JSON.stringify({ hostId: agent.hostId } satisfies HeldBlock), agent.leaseId);
    } else if (holder || !(await claimBlock(agent, net.id, block))) lost.push(block.text);
  }
  return lost;
}

/** Gives back this host's blocks of a network leaving it (the others' go with their leases or their own removal). */
export async function releaseOwnBlocks(agent: ClusterAgent, networkId: string): Promise<void> {
  for (const block of await ownBlocks(agent, networkId)) await agent.etcd.delete(blockKey(networkId, parseCidr(block)));
}
