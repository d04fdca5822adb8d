/**
 * The cluster agent: this host's membership in a berth cluster. It holds the host's lease (renewed
 * every TTL/3; its keys vanish from etcd when the host is gone longer than the TTL), keeps a cache
 * of the cluster's networks and endpoints fed by one watch on berth's prefix, and tells the engine
 * (a ClusterSink) what changed: networks to mirror or drop, remote endpoints to program or forget.
 *
 * A lost watch (a member went away, quorum lost) resumes where it stopped; one compacted past
 * what was seen is re-listed and the difference applied (prefix-follower.ts): nothing already
 * programmed is dropped while etcd is unreachable, so traffic on existing overlays keeps flowing.
 * The lease ID is kept on disk, so a daemon restart shorter than the TTL keeps the host's keys,
 * and peers see no change at all.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BerthError, invalid } from '../errors.js';
import type { Logger } from '../log.js';
import type { Kernel } from '../kernel/kernel.js';
import { EtcdClient, parseClusterStore, type EtcdTls, type KeyValue, type WatchEvent } from './etcd.js';
import * as K from './keys.js';
import { PrefixFollower } from './prefix-follower.js';
import type { NetworkRecord } from '../store/store.js';
import { DEFAULT_TTL_SECONDS } from '../constants.js';

export interface ClusterOptions {
  /** `etcd://IP:PORT[,IP:PORT…]`. */
  store: string;
  /** This host's underlay address, or the interface that holds it. */
  advertise: string;
  tls?: EtcdTls;
  /** Lease TTL in seconds (etcd's minimum is 2). */
  ttlSeconds?: number;
  deadlineMs?: number;
}

/** A cluster network as etcd holds it: the record every host mirrors, and its revision there. */
export interface ClusterNetwork {
  record: NetworkRecord;
  createRevision: number;
  modRevision: number;
}

/** What the engine does when the cluster changes; each call runs under the engine's mutex. */
export interface ClusterSink {
  networkAppeared(net: NetworkRecord): Promise<void>;
  networkVanished(net: NetworkRecord): Promise<void>;
  remotesChanged(networkId: string, added: K.AnnouncedEndpoint[], removed: K.AnnouncedEndpoint[]): Promise<void>;
  /** The lease was lost and a new one granted: every local endpoint is announced again. */
  reannounce(): Promise<void>;
  /** A host came, went or changed its record (a tunnel up or down). */
  hostsChanged(): Promise<void>;
}

interface Persisted {
  hostId: string;
  leaseId?: string;
}

export class ClusterAgent {
  readonly etcd: EtcdClient;
  readonly hostId: string;
  readonly ttlSeconds: number;
  /** This host's VTEP address and the interface (and MTU) it sits on. */
  readonly underlay: { ifname: string; address: string; mtu: number };
  leaseId = '0';
  /** This host's WireGuard tunnel, for encrypted networks (set by the engine). */
  tunnel: import('./tunnel.js').Tunnel | undefined;
  private readonly networks = new Map<string, ClusterNetwork>();
  private readonly endpoints = new Map<string, Map<string, K.AnnouncedEndpoint>>();
  private readonly hosts = new Map<string, K.AnnouncedHost>();
  /** Addresses held on each cluster network, by any host (from the watch). */
  private readonly held = new Map<string, Map<string, K.HeldAddress>>();
  private sink: ClusterSink | undefined;
  /** What this host announces beyond its address (its tunnel, once it has one). */
  private hostExtra: Partial<K.AnnouncedHost> = {};
  private readonly follower: PrefixFollower;
  private keepalive: NodeJS.Timeout | undefined;
  private closed = false;
  /** Sink calls run in event order, one at a time. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    etcd: EtcdClient,
    persisted: Persisted,
    underlay: { ifname: string; address: string; mtu: number },
    ttlSeconds: number,
    private readonly statePath: string,
    private readonly log: Logger,
  ) {
    this.etcd = etcd;
    this.hostId = persisted.hostId;
    this.leaseId = persisted.leaseId ?? '0';
    this.underlay = underlay;
    this.ttlSeconds = ttlSeconds;
    this.follower = new PrefixFollower({ etcd, prefix: K.ROOT, watchName: 'the cluster watch', listName: 'the cluster store', log, apply: (events) => this.apply(events), relist: () => this.relist() });
  }

  /**
   * Checks the options against the host and etcd (within the deadline) and takes this host's
   * lease: the previous one if it still lives (a quick restart), a new one otherwise.
   */
  static async join(opts: ClusterOptions, deps: { root: string; kernel: Kernel; log: Logger }): Promise<ClusterAgent> {
    const members = parseClusterStore(opts.store, Boolean(opts.tls?.cert || opts.tls?.ca));
    const ttl = opts.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl < 2 || ttl > 3600) throw invalid(`--cluster-ttl ${ttl} is out of range: use whole seconds from 2 (etcd's minimum) to 3600`);
    const underlay = await findUnderlay(deps.kernel, opts.advertise);
    const etcd = new EtcdClient(members, { tls: opts.tls, deadlineMs: opts.deadlineMs });
    try {
      await etcd.status();
    } catch (err) {
      etcd.close();
      throw new BerthError('unavailable', `cannot reach the cluster store ${opts.store}: ${(err as Error).message}`);
    }
    const statePath = path.join(deps.root, 'cluster.json');
    const persisted = readPersisted(statePath);
    const agent = new ClusterAgent(etcd, persisted, underlay, ttl, statePath, deps.log);
    await agent.takeLease();
    return agent;
  }

  /** True once the cluster has been listed: until then the cache knows no other host. */
  listed = false;

  /** Lists the cluster, hands it to the sink, and follows it from then on. */
  async start(sink: ClusterSink): Promise<void> {
    this.sink = sink;
    const revision = await this.relist();
    this.listed = true;
    await this.enqueue(() => sink.hostsChanged());
    this.follower.follow(revision + 1);
    this.keepalive = setInterval(() => void this.renew(), Math.max(500, (this.ttlSeconds * 1000) / 3)).unref();
  }

  /** Stops renewing without revoking: the keys live on for the TTL, so a quick restart changes nothing. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.keepalive);
    this.follower.close();
    await this.queue.catch(() => undefined);
    this.etcd.close();
  }

  /* the cache, for the engine and the drivers */

  network(name: string): ClusterNetwork | undefined {
    return this.networks.get(name);
  }

  networkById(id: string): ClusterNetwork | undefined {
    for (const n of this.networks.values()) if (n.record.id === id) return n;
    return undefined;
  }

  allNetworks(): ClusterNetwork[] {
    return [...this.networks.values()];
  }

  /** Endpoints of the network on other hosts. */
  remoteEndpointsOf(networkId: string): K.AnnouncedEndpoint[] {
    return [...(this.endpoints.get(networkId)?.values() ?? [])].filter((e) => e.hostId !== this.hostId);
  }

  /** Addresses held on the network, as the watch last said (a lost CAS re-reads them). */
  heldAddresses(networkId: string): ReadonlyMap<string, K.HeldAddress> {
    return this.held.get(networkId) ?? new Map();
  }

  /** Notes an address this host just took or freed (the watch will say so too, a moment later). */
  noteHeld(networkId: string, ip: string, h: K.HeldAddress | undefined): void {
    const ips = this.held.get(networkId) ?? this.held.set(networkId, new Map()).get(networkId)!;
    if (h) ips.set(ip, h);
    else ips.delete(ip);
  }

  /** This host's place among the hosts (by id) and how many there are: its share of each range. */
  share(): { index: number; of: number } {
    const ids = [...this.hosts.keys()].sort();
    return { index: Math.max(0, ids.indexOf(this.hostId)), of: Math.max(1, ids.length) };
  }

  /** Every endpoint of the network, on every host. */
  endpointsOf(networkId: string): K.AnnouncedEndpoint[] {
    return [...(this.endpoints.get(networkId)?.values() ?? [])];
  }

  hostList(): K.AnnouncedHost[] {
    return [...this.hosts.values()];
  }

  /* lease */

  private async takeLease(): Promise<void> {
    let ttl = 0;
    if (this.leaseId !== '0') ttl = await this.etcd.keepAlive(this.leaseId).catch(() => 0);
    const fresh = ttl <= 0;
    if (fresh) this.leaseId = (await this.etcd.grantLease(this.ttlSeconds)).id;
    writePersisted(this.statePath, { hostId: this.hostId, leaseId: this.leaseId });
    await this.putHost();
    this.log.info(fresh ? 'joined the cluster with a new lease' : 'rejoined the cluster on its previous lease', { host: this.hostId, address: this.underlay.address, lease: this.leaseId, ttl: this.ttlSeconds });
  }

  private async putHost(): Promise<void> {
    const me: K.AnnouncedHost = { id: this.hostId, hostname: os.hostname(), address: this.underlay.address, started: new Date().toISOString(), ...this.hostExtra };
    this.hosts.set(this.hostId, me);
    await this.etcd.put(K.hostKey(this.hostId), JSON.stringify(me), this.leaseId);
  }

  /** Changes what the host record says (its tunnel) and writes it. */
  async updateHost(extra: Partial<K.AnnouncedHost>): Promise<void> {
    this.hostExtra = { ...this.hostExtra, ...extra };
    await this.putHost();
  }

  /** A host's record, this one's included. */
  hostById(id: string): K.AnnouncedHost | undefined {
    return this.hosts.get(id);
  }

  private renewing = false;

  private async renew(): Promise<void> {
    // One renewal in flight at most: under load they would otherwise pile up past the deadline.
    if (this.closed || this.renewing) return;
    this.renewing = true;
    try {
      const ttl = await this.etcd.keepAlive(this.leaseId);
      if (ttl > 0) return;
      // Gone longer than the TTL (a partition, a stopped clock): peers have dropped our endpoints.
      this.log.warn('the cluster lease expired: joining again and re-announcing this host’s endpoints', { lease: this.leaseId });
      this.leaseId = '0';
      await this.takeLease();
      await this.enqueue(() => this.sink!.reannounce());
    } catch (err) {
      this.log.warn('could not renew the cluster lease', { error: (err as Error).message });
    } finally {
      this.renewing = false;
    }
  }

  /* watch */

  /**
   * Lists again and applies the difference (the periodic reconcile): a watch that went silent
   * without ending (a member cut off behind a live TCP connection) cannot leave the cache behind
   * for longer than one period.
   */
  async resync(): Promise<void> {
    if (this.listed && !this.closed) await this.relist();
  }

  /** Reads everything under the prefix and applies the difference to the cache; returns the revision read. */
  private async relist(): Promise<number> {
    const { kvs, revision } = await this.etcd.list(K.ROOT);
    const seen = new Set(kvs.map((kv) => kv.key));
    const events: WatchEvent[] = kvs.map((kv) => ({ type: 'put', kv }));
    for (const key of this.cachedKeys()) if (!seen.has(key)) events.push({ type: 'delete', kv: { key, value: '', createRevision: 0, modRevision: 0, lease: '0' } });
    this.apply(events);
    this.follower.listed(revision);
    await this.queue;
    return revision;
  }

  private cachedKeys(): string[] {
    const keys = [...this.networks.keys()].map(K.networkKey);
    keys.push(...[...this.hosts.keys()].map(K.hostKey));
    for (const [netId, eps] of this.endpoints) for (const id of eps.keys()) keys.push(K.endpointKey(netId, id));
    for (const [netId, ips] of this.held) for (const ip of ips.keys()) keys.push(K.ipamKey(netId, ip));
    return keys;
  }

  /** Updates the cache at once (so later calls see it) and queues the sink's work in order. */
  private apply(events: WatchEvent[]): void {
    const added = new Map<string, K.AnnouncedEndpoint[]>();
    const removed = new Map<string, K.AnnouncedEndpoint[]>();
    const push = (m: Map<string, K.AnnouncedEndpoint[]>, e: K.AnnouncedEndpoint) => (m.get(e.networkId) ?? m.set(e.networkId, []).get(e.networkId)!).push(e);
    const flushEndpoints = () => {
      for (const netId of new Set([...added.keys(), ...removed.keys()])) {
        const a = (added.get(netId) ?? []).filter((e) => e.hostId !== this.hostId);
        const r = (removed.get(netId) ?? []).filter((e) => e.hostId !== this.hostId);
        if (a.length || r.length) this.enqueue(() => this.sink!.remotesChanged(netId, a, r));
      }
      added.clear();
      removed.clear();
    };
    for (const ev of events) {
      const key = K.parseKey(ev.kv.key);
      if (key.kind === 'endpoint') {
        const eps = this.endpoints.get(key.networkId) ?? this.endpoints.set(key.networkId, new Map()).get(key.networkId)!;
        const old = eps.get(key.endpointId);
        if (ev.type === 'delete') {
          if (old) {
            eps.delete(key.endpointId);
            push(removed, old);
          }
        } else {
          const ep = parseJson<K.AnnouncedEndpoint>(ev.kv, this.log);
          if (!ep) continue;
          eps.set(key.endpointId, ep);
          if (old && (old.mac !== ep.mac || old.ip !== ep.ip)) push(removed, old);
          push(added, ep);
        }
      } else if (key.kind === 'ipam') {
        const ips = this.held.get(key.networkId) ?? this.held.set(key.networkId, new Map()).get(key.networkId)!;
        if (ev.type === 'delete') ips.delete(key.ip);
        else {
          const h = parseJson<K.HeldAddress>(ev.kv, this.log);
          if (h) ips.set(key.ip, h);
        }
      } else if (key.kind === 'network') {
        // Endpoint changes queued so far go first: a network's endpoints never outlive it in the sink.
        flushEndpoints();
        this.applyNetwork(key.name, ev);
      } else if (key.kind === 'host') {
        // Hosts first, so a new host's tunnel is known before its endpoints are programmed.
        flushEndpoints();
        if (ev.type === 'delete') this.hosts.delete(key.hostId);
        else {
          const h = parseJson<K.AnnouncedHost>(ev.kv, this.log);
          if (h) this.hosts.set(key.hostId, h);
        }
        this.enqueue(() => this.sink!.hostsChanged());
      }
    }
    flushEndpoints();
  }

  private applyNetwork(name: string, ev: WatchEvent): void {
    const old = this.networks.get(name);
    if (ev.type === 'delete') {
      if (!old) return;
      this.networks.delete(name);
      this.endpoints.delete(old.record.id);
      this.held.delete(old.record.id);
      this.enqueue(() => this.sink!.networkVanished(old.record));
      return;
    }
    const record = parseJson<NetworkRecord>(ev.kv, this.log);
    if (!record) return;
    if (old?.modRevision === ev.kv.modRevision) return;
    this.networks.set(name, { record, createRevision: ev.kv.createRevision, modRevision: ev.kv.modRevision });
    if (old && old.record.id !== record.id) this.enqueue(() => this.sink!.networkVanished(old.record));
    if (!old || old.record.id !== record.id) this.enqueue(() => this.sink!.networkAppeared(record));
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.queue.then(fn).catch((err) => this.log.warn('applying a cluster change failed', { error: (err as Error).message }));
    this.queue = next;
    return next;
  }

  /** Applied by the engine itself (its own create): the cache knows the network before the watch says so. */
  noteNetwork(net: ClusterNetwork): void {
    this.networks.set(net.record.name, net);
  }

  forgetNetwork(name: string): void {
    const old = this.networks.get(name);
    if (!old) return;
    this.networks.delete(name);
    this.endpoints.delete(old.record.id);
  }

  noteEndpoint(ep: K.AnnouncedEndpoint): void {
    (this.endpoints.get(ep.networkId) ?? this.endpoints.set(ep.networkId, new Map()).get(ep.networkId)!).set(ep.id, ep);
  }

  forgetEndpoint(networkId: string, endpointId: string): void {
    this.endpoints.get(networkId)?.delete(endpointId);
  }
}

function parseJson<T>(kv: KeyValue, log: Logger): T | undefined {
  try {
    return JSON.parse(kv.value) as T;
  } catch {
    log.warn('ignored an unreadable cluster record', { key: kv.key });
    return undefined;
  }
}

function readPersisted(file: string): Persisted {
  try {
    const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Persisted;
    if (typeof p.hostId === 'string' && /^[0-9a-f]{16}$/.test(p.hostId)) return p;
  } catch {
    /* first start */
  }
  return { hostId: randomBytes(8).toString('hex') };
}

function writePersisted(file: string, p: Persisted): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(p), { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

/** The advertise address (or the interface holding one) must be this host's. */
export async function findUnderlay(kernel: Kernel, advertise: string): Promise<{ ifname: string; address: string; mtu: number }> {
  const isAddress = /^\d{1,3}(\.\d{1,3}){3}$/.test(advertise);
  if (!isAddress && !/^[a-zA-Z0-9_.-]{1,15}$/.test(advertise)) throw invalid(`--advertise-addr "${advertise}" is neither an IPv4 address nor an interface name`);
  const found = await kernel.call('underlayOf', isAddress ? { address: advertise } : { ifname: advertise });
  if (!found) {
    throw invalid(
      isAddress
        ? `--advertise-addr ${advertise} is not an address of this host: give an address on the interface that reaches the other hosts (see ip -4 addr)`
        : `--advertise-addr ${advertise}: this host has no interface ${advertise} with an IPv4 address`,
    );
  }
  if (found.address.startsWith('127.')) throw invalid(`--advertise-addr ${advertise} is a loopback address: other hosts cannot reach it`);
  return found;
}
