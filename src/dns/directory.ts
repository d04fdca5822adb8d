/**
 * What the embedded resolver knows about containers. The engine owns the truth and implements (or
 * feeds) a `DnsDirectory`; the resolver only asks it questions, so the resolver can be tested with
 * no engine at all and the engine never has to know the DNS wire format.
 */
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { invalid } from '../errors.js';

export interface DnsDirectory {
  /** Addresses (IPv4, and IPv6 of dual-stack endpoints) that `name` (lower-case, no trailing dot) resolves to for a client on `networkId`: container names, hostnames, aliases, short ids. Empty array = not a container name (forward it). */
  lookup(networkId: string, name: string): readonly string[];
  /** Container name for a PTR lookup of `ip` (either family, canonical text) on that network, or undefined. */
  reverse(networkId: string, ip: string): string | undefined;
  /**
   * The other networks the container at `clientIp` on `networkId` is on: Docker's resolver answers
   * a container the names of every network it joined, whichever network's resolver it asks.
   */
  otherNetworksOf?(networkId: string, clientIp: string): readonly string[];
  /** Upstream resolvers for a query from `clientIp` on `networkId`: the container's own --dns servers if it has any, else the host's; [] for internal networks (no forwarding). */
  upstreams(networkId: string, clientIp: string): readonly Upstream[];
}

export interface Upstream {
  address: string;
  port: number;
}

/** One container endpoint on a network. */
export interface DnsRecord {
  /** The endpoint's IPv4 address; absent on an IPv6-only network. */
  ip?: string;
  /** The endpoint's IPv6 address on a dual-stack network (canonical text): its names answer AAAA with it. */
  ip6?: string;
  /** Every name the endpoint answers to. The first one is what a PTR lookup of `ip` returns. */
  names: readonly string[];
  /**
   * Names the endpoint answers to only while no endpoint of the network has them among its
   * `names` (a hostname, which the container chose itself, must not take over another
   * container's name or alias).
   */
  weakNames?: readonly string[];
  /** The container's own `--dns` servers; when absent or empty the host's are used. */
  upstreams?: readonly Upstream[];
}

export interface NetworkRecords {
  /** Internal networks never forward: no route out is the point of them. */
  internal: boolean;
  records: readonly DnsRecord[];
}

/**
 * One change to a `MemoryDirectory`, as its method was called: a replica that applies the same
 * changes in the same order answers the same (the resolver's batch thread keeps one).
 */
export type DirectoryChange =
  | { op: 'setNetwork'; networkId: string; network: NetworkRecords }
  | { op: 'removeNetwork'; networkId: string }
  | { op: 'upsertRecord'; networkId: string; key: string; record: DnsRecord }
  | { op: 'removeRecord'; networkId: string; key: string }
  | { op: 'setHostUpstreams'; upstreams: readonly Upstream[] };

/** A network's records indexed for O(1) answers; rebuilt whole on every `setNetwork`. */
interface NetworkIndex {
  internal: boolean;
  /** What setNetwork was given, for snapshots. */
  base: NetworkRecords;
  /** Records added one at a time (upsertRecord), so they can be removed one at a time. */
  byKey: Map<string, { ips: string[]; names: string[]; weakNames: string[]; record: DnsRecord }>;
  byName: Map<string, readonly string[]>;
  byWeakName: Map<string, readonly string[]>;
  byIp: Map<string, string>;
  /** Which record (container) holds an address, to find the container's other networks. */
  keyByIp: Map<string, string>;
  upstreamsByIp: Map<string, readonly Upstream[]>;
}

const NONE: readonly string[] = Object.freeze([]);
const NO_UPSTREAMS: readonly Upstream[] = Object.freeze([]);

/**
 * In-memory directory. Updates are synchronous and answers are never cached, so a container that
 * joins or leaves is visible (or gone) for the very next query.
 */
export class MemoryDirectory implements DnsDirectory {
  private readonly networks = new Map<string, NetworkIndex>();
  /** The networks each record key (a container) has a record on. */
  private readonly networksByKey = new Map<string, Set<string>>();
  private hostUpstreams: readonly Upstream[] = NO_UPSTREAMS;
  private readonly watchers = new Set<(change: DirectoryChange) => void>();

  /**
   * Calls `fn` after every change that took effect. Returns the function that stops it.
   */
  watch(fn: (change: DirectoryChange) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /** The changes that rebuild what is known now, for a replica that starts empty. */
  snapshot(): DirectoryChange[] {
    const changes: DirectoryChange[] = [{ op: 'setHostUpstreams', upstreams: this.hostUpstreams }];
    for (const [networkId, index] of this.networks) {
      changes.push({ op: 'setNetwork', networkId, network: index.base });
      for (const [key, { record }] of index.byKey) changes.push({ op: 'upsertRecord', networkId, key, record });
    }
    return changes;
  }

  /** Applies a change as its method would (a replica's side of watch()). */
  apply(change: DirectoryChange): void {
    switch (change.op) {
      case 'setNetwork':
        return this.setNetwork(change.networkId, change.network);
      case 'removeNetwork':
        return this.removeNetwork(change.networkId);
      case 'upsertRecord':
        return this.upsertRecord(change.networkId, change.key, change.record);
      case 'removeRecord':
        return this.removeRecord(change.networkId, change.key);
      case 'setHostUpstreams':
        return this.setHostUpstreams(change.upstreams);
    }
  }

  private changed(change: DirectoryChange): void {
    for (const fn of this.watchers) fn(change);
  }

  /** Replaces everything known about `networkId`. Throws `invalid` and changes nothing on bad input. */
  setNetwork(networkId: string, network: NetworkRecords): void {
    const index = buildIndex(networkId, network);
    for (const key of this.networks.get(networkId)?.byKey.keys() ?? []) this.forgetMembership(key, networkId);
    this.networks.set(networkId, index);
    this.changed({ op: 'setNetwork', networkId, network });
  }

  removeNetwork(networkId: string): void {
    for (const key of this.networks.get(networkId)?.byKey.keys() ?? []) this.forgetMembership(key, networkId);
    if (this.networks.delete(networkId)) this.changed({ op: 'removeNetwork', networkId });
  }

  private forgetMembership(key: string, networkId: string): void {
    const nets = this.networksByKey.get(key);
    nets?.delete(networkId);
    if (nets?.size === 0) this.networksByKey.delete(key);
  }

  /**
   * Adds or replaces one endpoint's record (`key` names it, e.g. the container id), in time
   * proportional to its names, not to the network's size. The network must have been set.
   */
  upsertRecord(networkId: string, key: string, record: DnsRecord): void {
    const index = this.networks.get(networkId);
    if (!index) throw invalid(`DNS: network ${networkId} is not known`);
    validateRecord(networkId, record);
    const upstreams = record.upstreams?.length ? freezeUpstreams(record.upstreams, `upstreams of ${record.ip} on network ${networkId}`) : undefined;
    this.dropRecord(networkId, key);
    const names = [...new Set(record.names.map(normalizeName))];
    const weakNames = [...new Set((record.weakNames ?? []).map(normalizeName))].filter((n) => !names.includes(n));
    const ips = addressesOf(record);
    for (const name of names) index.byName.set(name, Object.freeze([...(index.byName.get(name) ?? []), ...ips]));
    for (const name of weakNames) index.byWeakName.set(name, Object.freeze([...(index.byWeakName.get(name) ?? []), ...ips]));
    for (const ip of ips) if (names[0] && !index.byIp.has(ip)) index.byIp.set(ip, names[0]);
    if (upstreams) for (const ip of ips) index.upstreamsByIp.set(ip, upstreams);
    for (const ip of ips) index.keyByIp.set(ip, key);
    index.byKey.set(key, { ips, names, weakNames, record });
    this.networksByKey.set(key, (this.networksByKey.get(key) ?? new Set()).add(networkId));
    this.changed({ op: 'upsertRecord', networkId, key, record });
  }

  /** Forgets one endpoint's record; nothing happens if it is not there. */
  removeRecord(networkId: string, key: string): void {
    if (this.dropRecord(networkId, key)) this.changed({ op: 'removeRecord', networkId, key });
  }

  /** removeRecord's work, unannounced (upsertRecord's replacement is announced as itself); false if there was none. */
  private dropRecord(networkId: string, key: string): boolean {
    const index = this.networks.get(networkId);
    const old = index?.byKey.get(key);
    if (!index || !old) return false;
    for (const [map, names] of [[index.byName, old.names], [index.byWeakName, old.weakNames]] as const) {
      for (const name of names) {
        const left = (map.get(name) ?? []).filter((ip) => !old.ips.includes(ip));
        if (left.length) map.set(name, Object.freeze(left));
        else map.delete(name);
      }
    }
    for (const ip of old.ips) {
      if (index.byIp.get(ip) === old.names[0]) index.byIp.delete(ip);
      if (index.keyByIp.get(ip) === key) index.keyByIp.delete(ip);
      index.upstreamsByIp.delete(ip);
    }
    index.byKey.delete(key);
    this.forgetMembership(key, networkId);
    return true;
  }

  /** The host's resolvers (from its resolv.conf), used when a container has no `--dns` of its own. */
  setHostUpstreams(upstreams: readonly Upstream[]): void {
    this.hostUpstreams = freezeUpstreams(upstreams, 'host upstreams');
    this.changed({ op: 'setHostUpstreams', upstreams: this.hostUpstreams });
  }

  /** A container's own names and aliases win; hostnames answer only for names nobody holds. */
  lookup(networkId: string, name: string): readonly string[] {
    const index = this.networks.get(networkId);
    const key = normalizeName(name);
    return index?.byName.get(key) ?? index?.byWeakName.get(key) ?? NONE;
  }

  otherNetworksOf(networkId: string, clientIp: string): readonly string[] {
    const key = this.networks.get(networkId)?.keyByIp.get(clientIp);
    const nets = key === undefined ? undefined : this.networksByKey.get(key);
    return nets ? [...nets].filter((n) => n !== networkId) : NONE;
  }

  reverse(networkId: string, ip: string): string | undefined {
    return this.networks.get(networkId)?.byIp.get(ip);
  }

  /** An unknown network gets no upstreams: failing closed keeps an internal network from leaking while it is being set up or torn down. */
  upstreams(networkId: string, clientIp: string): readonly Upstream[] {
    const network = this.networks.get(networkId);
    if (!network || network.internal) return NO_UPSTREAMS;
    return network.upstreamsByIp.get(clientIp) ?? this.hostUpstreams;
  }
}

/** DNS names compare case-insensitively and the root label is implicit. */
export function normalizeName(name: string): string {
  return (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
}

function buildIndex(networkId: string, network: NetworkRecords): NetworkIndex {
  const byName = new Map<string, string[]>();
  const byWeakName = new Map<string, string[]>();
  const byIp = new Map<string, string>();
  const upstreamsByIp = new Map<string, readonly Upstream[]>();
  for (const record of network.records) {
    validateRecord(networkId, record);
    for (const ip of addressesOf(record)) {
      for (const raw of record.names) addAddress(byName, normalizeName(raw), ip);
      for (const raw of record.weakNames ?? []) addAddress(byWeakName, normalizeName(raw), ip);
      if (!byIp.has(ip) && record.names.length > 0) byIp.set(ip, normalizeName(record.names[0]!));
      if (record.upstreams && record.upstreams.length > 0) {
        upstreamsByIp.set(ip, freezeUpstreams(record.upstreams, `upstreams of ${record.ip} on network ${networkId}`));
      }
    }
  }
  for (const addresses of [...byName.values(), ...byWeakName.values()]) Object.freeze(addresses);
  return { internal: network.internal, base: network, byKey: new Map(), byName, byWeakName, byIp, keyByIp: new Map(), upstreamsByIp };
}

function addAddress(byName: Map<string, string[]>, name: string, ip: string): void {
  const addresses = byName.get(name);
  if (!addresses) byName.set(name, [ip]);
  else if (!addresses.includes(ip)) addresses.push(ip);
}

const addressesOf = (record: DnsRecord): string[] => [record.ip, record.ip6].filter((ip): ip is string => ip !== undefined);

function validateRecord(networkId: string, record: DnsRecord): void {
  if (record.ip === undefined && record.ip6 === undefined) throw invalid(`DNS record on network ${networkId} has no address`);
  if (record.ip !== undefined && !isIPv4(record.ip)) throw invalid(`DNS record on network ${networkId}: "${record.ip}" is not an IPv4 address`);
  if (record.ip6 !== undefined && !isIPv6(record.ip6)) throw invalid(`DNS record ${record.ip ?? ''} on network ${networkId}: "${record.ip6}" is not an IPv6 address`);
  for (const name of [...record.names, ...(record.weakNames ?? [])]) {
    if (normalizeName(name).length === 0) throw invalid(`DNS record ${record.ip ?? record.ip6} on network ${networkId}: empty name`);
  }
}

function freezeUpstreams(upstreams: readonly Upstream[], what: string): readonly Upstream[] {
  for (const u of upstreams) {
    if (isIP(u.address) === 0) throw invalid(`${what}: "${u.address}" is not an IP address`);
    if (!Number.isInteger(u.port) || u.port < 1 || u.port > 65535) throw invalid(`${what}: port ${u.port} is out of range 1-65535`);
  }
  return Object.freeze(upstreams.map((u) => Object.freeze({ address: u.address, port: u.port })));
}
