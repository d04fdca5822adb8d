/**
 * Cluster-wide IPAM: one etcd key per address held, created with compare-and-swap on the host's
 * lease, so no address is ever held twice across hosts and a dead host's addresses return to the
 * pool when its lease ends. Per-address keys rather than per-host blocks: any host can use the
 * whole subnet (a /24 overlay shared by 50 hosts would strand most of it in blocks). Each host
 * scans from its own share of the range, and knows what is held from its watch, so an address
 * costs one CAS: bench/tools/ipam-race.ts measured 3 hosts allocating 180 addresses at once at
 * 1.9 ms p50 with no conflict, level with per-host /28 blocks (1.7 ms), where every host
 * scanning from the bottom lost 154 races.
 *
 * The same transaction checks that the network still exists (its key's create revision), so an
 * address is never held on a network that another host has just removed.
 */
import { BerthError, conflict, notFound } from '../errors.js';
import { allocateAddressInShare, checkRequestedAddress } from '../ipam/allocator.js';
import { formatIpv4, parseIpv4 } from '../ipam/ipv4.js';
import { poolOf } from '../engine/endpoints.js';
import type { NetworkRecord } from '../store/store.js';
import type { ClusterAgent } from './agent.js';
import * as K from './keys.js';

const ATTEMPTS = 16;

/** Holds an address for `endpointId`: `requested` or the lowest free one. */
export async function claimAddress(agent: ClusterAgent, net: NetworkRecord, endpointId: string, requested: number | undefined, localInUse: ReadonlySet<number>): Promise<string> {
  const cached = agent.networkById(net.id);
  if (!cached) throw notFound(`network ${net.name} is no longer in the cluster`);
  const pool = poolOf(net);
  // The watch keeps the held addresses current: one CAS per address, a re-read only after a lost race.
  let held = new Map([...agent.heldAddresses(net.id)].map(([ip, h]) => [parseIpv4(ip), h]));
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const inUse = new Set([...held.keys(), ...localInUse]);
    let ip: number;
    if (requested !== undefined) {
      const holder = held.get(requested);
      if (holder && !(holder.hostId === agent.hostId && holder.endpointId === endpointId)) {
        throw conflict(`address ${formatIpv4(requested)} is already in use on network "${net.name}" (held by ${holder.hostId === agent.hostId ? 'this host' : `host ${holder.hostId}`})`);
      }
      checkRequestedAddress(pool, requested, new Set(localInUse), net.name);
      ip = requested;
    } else {
      const { index, of } = agent.share();
      ip = allocateAddressInShare(pool, inUse, index, of, net.name);
    }
    const key = K.ipamKey(net.id, formatIpv4(ip));
    const value: K.HeldAddress = { hostId: agent.hostId, endpointId };
    const txn = await agent.etcd.txn(
      [
        { key, target: 'CREATE', value: 0 },
        { key: K.networkKey(net.name), target: 'CREATE', value: cached.createRevision },
      ],
      [{ put: { key, value: JSON.stringify(value), lease: agent.leaseId } }],
    );
    if (txn.succeeded) {
      agent.noteHeld(net.id, formatIpv4(ip), value);
      return formatIpv4(ip);
    }
    if (!(await agent.etcd.get(K.networkKey(net.name)))) throw notFound(`network ${net.name} was removed from the cluster meanwhile`);
    // Another host took it first (or the cache was behind): read what is held, and try again.
    const { kvs } = await agent.etcd.list(K.ipamPrefix(net.id));
    held = new Map();
    for (const kv of kvs) {
      const k = K.parseKey(kv.key);
      if (k.kind === 'ipam') held.set(parseIpv4(k.ip), JSON.parse(kv.value) as K.HeldAddress);
    }
  }
  throw new BerthError('unavailable', `could not hold an address on network ${net.name}: ${ATTEMPTS} attempts lost to other hosts; try again`);
}

export async function releaseAddress(agent: ClusterAgent, networkId: string, ip: string): Promise<void> {
  agent.noteHeld(networkId, ip, undefined);
  await agent.etcd.delete(K.ipamKey(networkId, ip));
}

/** Tells the cluster about a local endpoint (on this host's lease). */
export async function announceEndpoint(agent: ClusterAgent, ep: K.AnnouncedEndpoint): Promise<void> {
  await agent.etcd.put(K.endpointKey(ep.networkId, ep.id), JSON.stringify(ep), agent.leaseId);
  agent.noteEndpoint(ep);
}

/** Withdraws an endpoint and frees its address in one transaction. */
export async function withdrawEndpoint(agent: ClusterAgent, networkId: string, endpointId: string, ip: string): Promise<void> {
  agent.forgetEndpoint(networkId, endpointId);
  agent.noteHeld(networkId, ip, undefined);
  await agent.etcd.txn([], [{ delete: { key: K.endpointKey(networkId, endpointId) } }, { delete: { key: K.ipamKey(networkId, ip) } }]);
}
