/**
 * Cluster networks in etcd: created and removed with compare-and-swap so that names, subnets and
 * VNIs stay unique across the cluster however many hosts create networks at once. Every create and
 * remove also bumps one guard key; a create succeeds only if the guard is unchanged since the
 * networks were read, so two hosts cannot both pass the overlap check with clashing subnets.
 */
import { BerthError, conflict, forbidden, invalid } from '../errors.js';
import { cidrContains, cidrsOverlap, parseCidr } from '../ipam/ipv4.js';
import { cidrs6Overlap, formatIpv6, parseCidr6, parseIpv6, pickSubnet6, ulaPrefixOf, type Cidr6 } from '../ipam/ipv6.js';
import { newId } from '../engine/ids.js';
import type { NetworkRecord } from '../store/store.js';
import type { ClusterAgent, ClusterNetwork } from './agent.js';
import * as K from './keys.js';

/** Docker's option for an overlay's VNI. */
export const OPT_VXLAN_ID = 'com.docker.network.driver.overlay.vxlanid_list';
/** Allocated VNIs start here, as Docker's (lower ones are left to the user's own -o). */
export const VNI_FIRST = 4096;
export const VNI_LAST = 0xffffff;
const ATTEMPTS = 8;

export interface PublishRequest {
  /** The record as the creating host built it; its subnet may still be a proposal (see pickSubnet). */
  record: NetworkRecord;
  /** True when the user gave --subnet: a clash is then an error, not a reason to pick another. */
  userSubnet: boolean;
  /** Picks a subnet clear of `taken` (when the user gave none). */
  pickSubnet: (taken: string[]) => { subnet: string; gateway: string };
  /** True when the user gave an IPv6 --subnet; otherwise a dual-stack record's is re-picked from the cluster's ULA /48. */
  userSubnet6?: boolean;
  /** IPv6 subnets this host's addresses and routes already use (the cluster pick avoids them too). */
  hostTaken6?: Cidr6[];
}

/** Writes a new cluster network; returns it as stored (subnet and VNI chosen). */
export async function publishNetwork(agent: ClusterAgent, req: PublishRequest): Promise<ClusterNetwork> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const [{ kvs }, guard] = await Promise.all([agent.etcd.list(K.NETWORKS), agent.etcd.get(K.NETWORKS_GUARD)]);
    const others = kvs.map((kv) => JSON.parse(kv.value) as NetworkRecord);
    if (others.some((n) => n.name === req.record.name)) throw conflict(`network with name ${req.record.name} already exists in the cluster`);
    const record: NetworkRecord = { ...req.record, options: { ...req.record.options } };
    const taken = others.map((n) => n.subnet!).filter(Boolean);
    const clash = others.find((n) => n.subnet && cidrsOverlap(parseCidr(n.subnet), parseCidr(record.subnet!)));
    if (clash) {
      if (req.userSubnet) throw forbidden(`Pool overlaps with other one on this address space: ${record.subnet} overlaps cluster network ${clash.name} (${clash.subnet})`);
      Object.assign(record, req.pickSubnet(taken));
    }
    if (record.subnet6) await placeSubnet6(agent, req, record, others);
    const vnis = new Set(others.map((n) => Number(n.options[OPT_VXLAN_ID])));
    const asked = record.options[OPT_VXLAN_ID];
    if (asked !== undefined) {
      const vni = Number(asked);
      if (vnis.has(vni)) throw conflict(`VNI ${vni} is taken by cluster network ${others.find((n) => Number(n.options[OPT_VXLAN_ID]) === vni)!.name}: choose another -o ${OPT_VXLAN_ID}=VNI or leave it out`);
    } else {
      let vni = VNI_FIRST;
      while (vnis.has(vni)) vni++;
      if (vni > VNI_LAST) throw conflict('no VNI left in the cluster');
      record.options[OPT_VXLAN_ID] = String(vni);
    }
    const txn = await agent.etcd.txn(
      [
        { key: K.NETWORKS_GUARD, target: 'MOD', value: guard?.modRevision ?? 0 },
        { key: K.networkKey(record.name), target: 'CREATE', value: 0 },
      ],
      [{ put: { key: K.networkKey(record.name), value: JSON.stringify(record) } }, { put: { key: K.NETWORKS_GUARD, value: record.id } }],
    );
    if (txn.succeeded) {
      const net = { record, createRevision: txn.revision, modRevision: txn.revision };
      agent.noteNetwork(net);
      return net;
    }
  }
  throw new BerthError('unavailable', `could not create network ${req.record.name}: other hosts kept creating networks at the same time (${ATTEMPTS} attempts); try again`);
}

/**
 * The IPv6 side of a cluster network: the user's subnet must not overlap another cluster
 * network's; without one, the first free /64 of the cluster's ULA /48 (every host picks from the
 * same prefix, so one cluster network has one IPv6 subnet everywhere). A user's IPv6 gateway must
 * not be an address a container would get (prefix + an IPv4 address of the subnet).
 */
async function placeSubnet6(agent: ClusterAgent, req: PublishRequest, record: NetworkRecord, others: NetworkRecord[]): Promise<void> {
  const theirs = others.filter((n) => n.subnet6).map((n) => ({ name: n.name, cidr: parseCidr6(n.subnet6!) }));
  if (req.userSubnet6) {
    const mine = parseCidr6(record.subnet6!);
    const clash = theirs.find((t) => cidrs6Overlap(t.cidr, mine));
    if (clash) throw forbidden(`Pool overlaps with other one on this address space: ${record.subnet6} overlaps cluster network ${clash.name} (${clash.cidr.text})`);
  } else {
    const picked = pickSubnet6(ulaPrefixOf(await clusterId(agent)), [...theirs.map((t) => t.cidr), ...(req.hostTaken6 ?? [])]);
    record.subnet6 = picked.text;
    record.gateway6 = formatIpv6(picked.network + 1n);
  }
  const low = Number(parseIpv6(record.gateway6!) & 0xffffffffn);
  if (cidrContains(parseCidr(record.subnet!), low)) {
    throw invalid(`IPv6 gateway ${record.gateway6} ends in an IPv4 address of ${record.subnet}: on cluster networks a container's IPv6 address is the IPv6 prefix + its IPv4 address, so choose a gateway outside those (the default is ::1)`);
  }
}

/** The cluster's random id, made by the first host that needs it (one CAS; the loser reads the winner's). */
async function clusterId(agent: ClusterAgent): Promise<string> {
  const have = await agent.etcd.get(K.CLUSTER_ID);
  if (have) return have.value;
  const id = newId();
  const txn = await agent.etcd.txn([{ key: K.CLUSTER_ID, target: 'CREATE', value: 0 }], [{ put: { key: K.CLUSTER_ID, value: id } }], [{ get: { key: K.CLUSTER_ID } }]);
  return txn.succeeded ? id : txn.ranges[0]![0]!.value;
}

/**
 * Removes a cluster network if no host holds an endpoint or address on it (checked in the same
 * transaction as the delete, so a container starting meanwhile on another host wins or loses cleanly).
 */
export async function unpublishNetwork(agent: ClusterAgent, net: NetworkRecord): Promise<void> {
  const stored = await agent.etcd.get(K.networkKey(net.name));
  if (!stored) return agent.forgetNetwork(net.name);
  if ((JSON.parse(stored.value) as NetworkRecord).id !== net.id) return agent.forgetNetwork(net.name);
  const txn = await agent.etcd.txn(
    [
      { key: K.networkKey(net.name), target: 'MOD', value: stored.modRevision },
      { key: K.endpointsPrefix(net.id), target: 'CREATE', value: 0, prefix: true },
      { key: K.ipamPrefix(net.id), target: 'CREATE', value: 0, prefix: true },
    ],
    [{ delete: { key: K.networkKey(net.name) } }, { put: { key: K.NETWORKS_GUARD, value: net.id } }],
    [{ get: { key: K.endpointsPrefix(net.id), prefix: true } }, { get: { key: K.ipamPrefix(net.id), prefix: true } }],
  );
  if (txn.succeeded) return agent.forgetNetwork(net.name);
  const endpoints = (txn.ranges[0] ?? []).map((kv) => JSON.parse(kv.value) as K.AnnouncedEndpoint);
  const hosts = new Map(agent.hostList().map((h) => [h.id, h.hostname]));
  const where = endpoints.map((e) => `${e.name} on ${hosts.get(e.hostId) ?? `host ${e.hostId}`}`);
  const held = (txn.ranges[1] ?? []).length;
  throw forbidden(
    `error while removing network: network ${net.name} id ${net.id} has active endpoints in the cluster (${where.length ? `containers: ${where.join(', ')}` : `${held} address(es) being assigned`}): disconnect or remove them first`,
  );
}

/** A VNI the user asked for: a whole number in VXLAN's 24 bits. */
export function checkVni(value: string | undefined): void {
  if (value === undefined) return;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > VNI_LAST) {
    throw invalid(`-o ${OPT_VXLAN_ID}=${value} is out of range: a VNI is a whole number from 1 to ${VNI_LAST} (berth allocates from ${VNI_FIRST} up when it is left out)`);
  }
}
