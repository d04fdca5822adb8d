/**
 * The host-subnet lease manager (Flannel's model, in Flannel's keys): this host leases one subnet
 * of the cluster CIDR in etcd, on an etcd lease of its own renewed every TTL/3, and follows every
 * other host's lease to program (or remove) the path to its subnet through the backend.
 *
 * Everything that can refuse is checked before anything is made: the CIDR against the host's
 * routes, the cluster's config key, a free subnet, and (after the backend's device is up) every
 * existing peer; a refusal removes what was made and revokes the lease, so nothing is left.
 * The lease is recorded in <root>/subnet.env (Flannel's format), so a restart while the lease
 * lives re-claims the same subnet and peers see no change at all.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomInt } from 'node:crypto';
import { BerthError, invalid } from '../../errors.js';
import { cidrContainsCidr, cidrFromAddress, cidrsOverlap, parseCidr, parseIpv4, type Cidr } from '../../ipam/ipv4.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Logger } from '../../log.js';
import { RTPROT_BERTH } from '../../kernel/netlink/peer-routes.js';
import { EtcdClient, parseClusterStore, type KeyValue, type WatchEvent } from '../etcd.js';
import { findUnderlay, type ClusterOptions } from '../agent.js';
import type { BackendType, HostSubnetBackend, LocalHost, PeerLease } from './backend.js';
import { pathsUnder } from '../../engine/context.js';
import * as F from './flannel-keys.js';
import { PrefixFollower } from '../prefix-follower.js';
import { DEFAULT_TTL_SECONDS } from '../../constants.js';

export interface HostSubnetOptions {
  /** --cluster-cidr */
  cidr: string;
  /** --host-subnet-size */
  size: number;
  backend: BackendType;
}

export interface ClaimDeps {
  root: string;
  kernel: Kernel;
  log: Logger;
  backend: HostSubnetBackend;
  /** Refuses a subnet this host cannot take (the default bridge has containers on another one). */
  vet?: (subnet: string) => void;
}

const CLAIM_ATTEMPTS = 5;

export class HostSubnets {
  /** Other hosts' leases, by subnet: what the backend has programmed. */
  private readonly peers = new Map<string, PeerLease>();
  private readonly follower: PrefixFollower;
  private keepalive: NodeJS.Timeout | undefined;
  private closed = false;
  private renewing = false;
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly etcd: EtcdClient,
    readonly local: LocalHost,
    readonly backend: HostSubnetBackend,
    private readonly value: string,
    private leaseId: string,
    readonly ttlSeconds: number,
    readonly mtu: number,
    private readonly envPath: string,
    private readonly log: Logger,
  ) {
    this.follower = new PrefixFollower({
      etcd,
      prefix: F.SUBNETS,
      watchName: 'the subnet watch',
      listName: 'the subnet leases',
      log,
      apply: (events) => this.apply(events),
      relist: async () => {
        const { kvs, revision } = await this.etcd.list(F.SUBNETS);
        await this.enqueue(() => this.programAll(kvs, false));
        return revision;
      },
    });
  }

  get subnet(): string {
    return this.local.subnet;
  }

  get clusterCidr(): string {
    return this.local.clusterCidr;
  }

  /** Peers programmed now (for the reconciler and `berth info`). */
  peerList(): PeerLease[] {
    return [...this.peers.values()];
  }

  /** Checks, leases a subnet, starts the backend and programs every existing peer; all or nothing. */
  static async claim(cluster: ClusterOptions, opts: HostSubnetOptions, deps: ClaimDeps): Promise<HostSubnets> {
    const cidr = F.checkClusterCidr(opts.cidr, opts.size);
    const ttl = cluster.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    const underlay = await findUnderlay(deps.kernel, cluster.advertise);
    await checkHostRoutes(deps.kernel, cidr, deps.root);
    const etcd = new EtcdClient(parseClusterStore(cluster.store, Boolean(cluster.tls?.cert || cluster.tls?.ca)), { tls: cluster.tls, deadlineMs: cluster.deadlineMs });
    let started = false;
    let leaseId: string | undefined;
    let fresh = false;
    try {
      await etcd.status().catch((err) => {
        throw new BerthError('unavailable', `cannot reach the cluster store ${cluster.store}: ${(err as Error).message}`);
      });
      await checkConfig(etcd, { network: cidr.text, subnetLen: opts.size, backendType: opts.backend });
      const envPath = path.join(deps.root, 'subnet.env');
      const remembered = readEnv(envPath);
      const mtu = deps.backend.mtu(underlay.mtu);
      for (let attempt = 0; ; attempt++) {
        const { kvs, revision } = await etcd.list(F.SUBNETS);
        const pick = chooseSubnet(kvs, cidr, opts.size, underlay.address, remembered);
        deps.vet?.(pick.subnet);
        const local: LocalHost = { subnet: pick.subnet, clusterCidr: cidr.text, publicIp: underlay.address, underlay: { ifname: underlay.ifname, mtu: underlay.mtu }, root: deps.root };
        const data = await deps.backend.start(local);
        started = true;
        const value = F.leaseJson({ publicIp: underlay.address, backendType: opts.backend, backendData: data });
        const key = F.subnetKey(pick.subnet);
        // A live lease of ours on the same key is kept (a quick restart); otherwise a fresh one.
        leaseId = pick.ours?.lease && pick.ours.lease !== '0' && (await etcd.keepAlive(pick.ours.lease).catch(() => 0)) > 0 ? pick.ours.lease : undefined;
        fresh = leaseId === undefined;
        leaseId ??= (await etcd.grantLease(ttl)).id;
        const guard = pick.ours ? { key, target: 'MOD' as const, value: pick.ours.modRevision } : { key, target: 'CREATE' as const, value: 0 };
        const txn = await etcd.txn([guard], [{ put: { key, value, lease: leaseId } }]);
        if (txn.succeeded) {
          const lease = new HostSubnets(etcd, local, deps.backend, value, leaseId, ttl, mtu, envPath, deps.log);
          // Every existing peer is programmed before this host counts as started: one it cannot
          // reach refuses the start (host-gw across segments), naming it.
          await lease.programAll(kvs, true);
          // Watched from the list on: a host that leased between the list and the txn is seen too.
          lease.follower.listed(revision);
          writeEnv(envPath, { network: cidr.text, subnet: pick.subnet, mtu, ipMasq: true, backend: opts.backend, leaseId });
          deps.log.info(pick.ours ? 'kept this host’s subnet lease' : 'leased a subnet for this host', { subnet: pick.subnet, cluster: cidr.text, backend: opts.backend, lease: leaseId });
          return lease;
        }
        // Another host took it in between: try another (bounded).
        if (fresh) await etcd.revokeLease(leaseId).catch(() => undefined);
        leaseId = undefined;
        if (attempt + 1 >= CLAIM_ATTEMPTS) throw new BerthError('unavailable', `could not lease a subnet of ${cidr.text} after ${CLAIM_ATTEMPTS} attempts: other hosts took each one first; start again`);
      }
    } catch (err) {
      // The key goes with its lease (a kept one too: this host is not starting).
      if (leaseId) await etcd.revokeLease(leaseId).catch(() => undefined);
      if (started) await deps.backend.stop({ remove: true }).catch((e) => deps.log.warn('could not remove the host-subnet backend’s devices', { error: String(e) }));
      etcd.close();
      throw err;
    }
  }

  /** Follows other hosts' leases from the claim on, and renews this host's. */
  follow(): void {
    this.follower.follow(this.follower.revision + 1);
    this.keepalive = setInterval(() => void this.renew(), Math.max(500, (this.ttlSeconds * 1000) / 3)).unref();
  }

  /** Stops renewing and watching; the lease lives on for its TTL, and the kernel state stays (as Flannel's). */
  async close(opts: { release?: boolean } = {}): Promise<void> {
    this.closed = true;
    clearInterval(this.keepalive);
    this.follower.close();
    await this.queue.catch(() => undefined);
    if (opts.release) await this.etcd.revokeLease(this.leaseId).catch(() => undefined);
    await this.backend.stop({ remove: opts.release === true }).catch((err) => this.log.warn('could not stop the host-subnet backend', { error: String(err) }));
    this.etcd.close();
  }

  /** Restores every peer's path (the reconciler): entries or routes deleted by hand come back. */
  async repair(): Promise<string[]> {
    return this.enqueue(() => this.backend.repair(this.peerList()));
  }

  /* peers */

  /** Applies a full list: new and changed peers added, missing ones removed. */
  private async programAll(kvs: KeyValue[], strict: boolean): Promise<void> {
    const seen = new Set<string>();
    for (const kv of kvs) {
      const lease = this.leaseOf(kv);
      if (!lease) continue;
      seen.add(lease.subnet);
      await this.addPeer(lease, strict);
    }
    for (const [subnet, old] of this.peers) if (!seen.has(subnet)) await this.removePeer(old);
  }

  private leaseOf(kv: KeyValue): PeerLease | undefined {
    const lease = F.parseLease(kv.key, kv.value);
    if (!lease) {
      if (F.subnetOfKey(kv.key)) this.log.warn('ignored an unreadable subnet lease', { key: kv.key });
      return undefined;
    }
    if (lease.subnet === this.local.subnet || !cidrContainsCidr(parseCidr(this.local.clusterCidr), parseCidr(lease.subnet))) return undefined;
    return lease;
  }

  private async addPeer(lease: PeerLease, strict: boolean): Promise<void> {
    const old = this.peers.get(lease.subnet);
    if (old && JSON.stringify(old) === JSON.stringify(lease)) return;
    try {
      if (old) await this.backend.removePeer(old);
      await this.backend.addPeer(lease);
      this.peers.set(lease.subnet, lease);
      this.log.info('programmed the path to a host’s subnet', { subnet: lease.subnet, host: lease.publicIp, backend: this.backend.type });
    } catch (err) {
      this.peers.delete(lease.subnet);
      if (strict) throw err;
      // A host that joined later and cannot be reached this way: the others keep working.
      this.log.warn('skipped a host whose subnet this host cannot reach', { subnet: lease.subnet, host: lease.publicIp, error: (err as Error).message });
    }
  }

  private async removePeer(lease: PeerLease): Promise<void> {
    this.peers.delete(lease.subnet);
    await this.backend.removePeer(lease);
    this.log.info('removed the path to a host’s subnet (its lease is gone)', { subnet: lease.subnet, host: lease.publicIp });
  }

  private apply(events: WatchEvent[]): void {
    for (const ev of events) {
      const subnet = F.subnetOfKey(ev.kv.key);
      if (!subnet) continue;
      if (ev.type === 'delete') {
        const old = this.peers.get(subnet);
        if (old) void this.enqueue(() => this.removePeer(old));
        // Our own key gone (revoked, or expired while etcd could not be reached): put it back now.
        else if (subnet === this.local.subnet) void this.renew();
      } else {
        const lease = this.leaseOf(ev.kv);
        if (lease) void this.enqueue(() => this.addPeer(lease, false));
      }
    }
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn);
    this.queue = next.then(
      () => undefined,
      (err) => this.log.warn('applying a host-subnet change failed', { error: (err as Error).message }),
    );
    return next;
  }

  /* lease */

  private async renew(): Promise<void> {
    if (this.closed || this.renewing) return;
    this.renewing = true;
    try {
      const ttl = await this.etcd.keepAlive(this.leaseId);
      const key = F.subnetKey(this.local.subnet);
      if (ttl > 0) {
        const kv = await this.etcd.get(key);
        if (kv) return;
        await this.etcd.put(key, this.value, this.leaseId);
        this.log.warn('this host’s subnet key was deleted while its lease lived: written again', { subnet: this.local.subnet });
        return;
      }
      // Gone longer than the TTL: the subnet is taken again if it is still free (Flannel would exit).
      const id = (await this.etcd.grantLease(this.ttlSeconds)).id;
      const txn = await this.etcd.txn([{ key, target: 'CREATE', value: 0 }], [{ put: { key, value: this.value, lease: id } }], [{ get: { key } }]);
      if (!txn.succeeded) {
        await this.etcd.revokeLease(id).catch(() => undefined);
        this.log.error('this host’s subnet lease expired and another host leased the subnet: restart the daemon to lease a new one', { subnet: this.local.subnet, holder: txn.ranges[0]?.[0]?.value });
        return;
      }
      this.leaseId = id;
      writeEnv(this.envPath, { network: this.local.clusterCidr, subnet: this.local.subnet, mtu: this.mtu, ipMasq: true, backend: this.backend.type, leaseId: id });
      this.log.warn('this host’s subnet lease expired: leased the same subnet again', { subnet: this.local.subnet, lease: id });
    } catch (err) {
      this.log.warn('could not renew the subnet lease', { error: (err as Error).message });
    } finally {
      this.renewing = false;
    }
  }
}

/** The config key, made by the first host (CAS) and checked by every other: refuses naming both values. */
async function checkConfig(etcd: EtcdClient, want: F.NetworkConfig): Promise<void> {
  const txn = await etcd.txn([{ key: F.CONFIG_KEY, target: 'CREATE', value: 0 }], [{ put: { key: F.CONFIG_KEY, value: F.configJson(want) } }], [{ get: { key: F.CONFIG_KEY } }]);
  if (txn.succeeded) return;
  const kv = txn.ranges[0]?.[0];
  if (!kv) return;
  const have = F.parseConfig(kv.value);
  const fix = `start every host with the cluster's values, or, if no host uses it any more, delete ${F.CONFIG_KEY} (and ${F.SUBNETS}) from etcd first`;
  if (have.network !== want.network) throw invalid(`--cluster-cidr ${want.network} differs from the cluster's network ${have.network} in etcd (${F.CONFIG_KEY}): ${fix}`);
  if (have.subnetLen !== want.subnetLen) throw invalid(`--host-subnet-size ${want.subnetLen} differs from the cluster's SubnetLen ${have.subnetLen} in etcd (${F.CONFIG_KEY}): ${fix}`);
  if (have.backendType !== want.backendType) throw invalid(`--backend ${want.backendType} differs from the cluster's backend ${have.backendType} in etcd (${F.CONFIG_KEY}): every host of a cluster uses one backend; ${fix}`);
}

/**
 * The cluster CIDR must not overlap a route or address of the host that berth did not make (the
 * underlay's LAN, a VPN): containers' traffic to it would go to the wrong place.
 */
async function checkHostRoutes(kernel: Kernel, cidr: Cidr, root: string): Promise<void> {
  const mine = `berth:${pathsUnder(root).owner}:`;
  const view = await kernel.call('inspect', {});
  const own = new Set(view.links.filter((l) => l.alias?.startsWith(mine)).map((l) => l.index));
  for (const a of view.addresses) {
    if (own.has(a.index) || a.address.startsWith('127.')) continue;
    const c = cidrFromAddress(parseIpv4(a.address), a.prefix);
    if (cidrsOverlap(c, cidr)) throw invalid(`--cluster-cidr ${cidr.text} overlaps host address ${a.address}/${a.prefix}: choose a cluster CIDR no address or route of the host uses`);
  }
  for (const r of view.routes) {
    if (r.prefix === 0 || r.protocol === RTPROT_BERTH || (r.oif !== undefined && own.has(r.oif))) continue;
    const c = cidrFromAddress(parseIpv4(r.dst), r.prefix);
    if (cidrsOverlap(c, cidr)) throw invalid(`--cluster-cidr ${cidr.text} overlaps host route ${c.text}${r.gateway ? ` via ${r.gateway}` : ''}: choose a cluster CIDR no address or route of the host uses`);
  }
}

interface Pick {
  subnet: string;
  /** The key already holds this host's lease (a restart): kept, compared by revision. */
  ours?: KeyValue;
}

/**
 * This host's subnet: the one it had (subnet.env) if its key is free or still ours, else one
 * leased to its PublicIP (subnet.env lost), else a random free one (as Flannel picks).
 */
export function chooseSubnet(kvs: KeyValue[], cidr: Cidr, size: number, publicIp: string, remembered: F.SubnetEnv | undefined): Pick {
  const held = new Map<string, { kv: KeyValue; lease: PeerLease | undefined }>();
  for (const kv of kvs) {
    const subnet = F.subnetOfKey(kv.key);
    if (subnet) held.set(subnet, { kv, lease: F.parseLease(kv.key, kv.value) });
  }
  const fits = (s: string) => {
    const c = parseCidr(s);
    return c.prefix === size && cidrContainsCidr(cidr, c) && c.network !== cidr.network;
  };
  if (remembered && remembered.network === cidr.text && fits(remembered.subnet)) {
    const h = held.get(remembered.subnet);
    if (!h) return { subnet: remembered.subnet };
    if (h.lease?.publicIp === publicIp) return { subnet: remembered.subnet, ours: h.kv };
  }
  for (const [subnet, h] of held) if (h.lease?.publicIp === publicIp && fits(subnet)) return { subnet, ours: h.kv };
  const free = F.freeSubnets(cidr, size, new Set(held.keys()), []);
  if (free.length === 0) {
    const total = F.leasableSubnets(cidr, size).length;
    throw new BerthError('conflict', `the cluster CIDR ${cidr.text} is full: all ${total} of its /${size} host subnets are leased (by ${[...held.values()].map((h) => h.lease?.publicIp ?? '?').slice(0, 5).join(', ')}${held.size > 5 ? ', …' : ''}); a subnet frees when its host's lease expires, or use a larger --cluster-cidr for a new cluster`);
  }
  return { subnet: free[randomInt(free.length)]!.text };
}

function readEnv(file: string): F.SubnetEnv | undefined {
  try {
    return F.parseSubnetEnv(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function writeEnv(file: string, e: F.SubnetEnv): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, F.formatSubnetEnv(e), { mode: 0o644 });
  fs.renameSync(`${file}.tmp`, file);
}
