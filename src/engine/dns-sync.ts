/**
 * Feeds the embedded resolver from the store. The resolver listens on each user-defined network's
 * gateway address in the daemon's (host) namespace, as Podman's aardvark-dns does: the socket a
 * query arrives on tells which network asks, so names stay scoped to their network. It listens on
 * a free port, not 53: containers still ask gateway:53, and the firewall redirects only queries
 * that arrive on the network's own bridge (and drops anyone else's), so a host DNS server on
 * *:53 keeps working beside berth and nobody outside the network gets answers. Forwarded queries
 * leave from the host namespace, so loopback upstreams (127.0.0.53) work.
 * The default `bridge` network gets no resolver, as in Docker. Containers of networks that cannot
 * reach the host (macvlan without the host shim, ipvlan) get a resolver inside their own namespace
 * instead, on 127.0.0.11:53 as Docker's: sockets bound there by the kernel thread and served here.
 */
import * as fs from 'node:fs';
import { MemoryDirectory, type DnsRecord } from '../dns/directory.js';
import { DnsResolver } from '../dns/resolver.js';
import { parseResolvConf, upstreamsOf } from '../dns/resolv-conf.js';
import type { DnsListener } from '../firewall/model.js';
import type { DnsRow, NetworkRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { shortId } from './ids.js';
import { isDefaultBridge } from './networks.js';
import { driverOf } from '../drivers/registry.js';
import { SANDBOX_DNS_ADDRESS } from '../drivers/driver.js';

export function servesDns(net: NetworkRecord | undefined): net is NetworkRecord {
  return net !== undefined && driverOf(net)?.dns(net) !== undefined && !isDefaultBridge(net);
}

/**
 * The networks whose names a container's in-sandbox resolver serves (its first user-defined
 * network, the one resolv.conf names, then its other in-sandbox ones), with its address on the first.
 */
function sandboxDnsOf(ctx: EngineContext, containerId: string): { networkIds: string[]; ip: string; netnsPath: string } | undefined {
  const c = ctx.store.container(containerId);
  if (!c || c.state !== 'running' || !c.netnsPath || c.sharesWith) return undefined;
  const users = ctx.store
    .endpointsOfContainer(containerId)
    .map((e) => ({ e, net: ctx.store.network(e.networkId) }))
    .filter((x): x is { e: typeof x.e; net: NetworkRecord } => x.net !== undefined && !isDefaultBridge(x.net));
  const inSandbox = users.filter(({ net }) => driverOf(net)?.dns(net)?.in === 'sandbox');
  if (users.length === 0 || inSandbox[0] !== users[0]) return undefined;
  return { networkIds: inSandbox.map(({ net }) => net.id), ip: users[0]!.e.ip!, netnsPath: c.netnsPath };
}

export class DnsSync {
  readonly directory = new MemoryDirectory();
  readonly resolver: DnsResolver;
  /** Networks with names loaded; a host listener's address once it listens (none for in-sandbox DNS). */
  private readonly listening = new Map<string, DnsListener | undefined>();
  /** Containers whose namespace has a resolver of its own, with the networks it serves (joined by ','). */
  private readonly sandboxes = new Map<string, string>();

  constructor(private readonly ctx: EngineContext) {
    this.resolver = new DnsResolver({ directory: this.directory, log: ctx.log, onOutcome: (outcome) => ctx.events.dnsQuery(outcome) });
  }

  /** The host's resolvers, re-read at each start (the file may change under us). */
  refreshHostUpstreams(): void {
    let servers: string[] = [];
    try {
      servers = parseResolvConf(fs.readFileSync(this.ctx.resolvConfPath, 'utf8')).nameservers;
    } catch {
      /* no resolv.conf: nothing to forward to */
    }
    this.directory.setHostUpstreams(upstreamsOf(servers).slice(0, 3));
  }

  /** Sets one network's names from the store, all at once (when its resolver starts). */
  loadNetwork(networkId: string): void {
    const net = this.ctx.store.network(networkId);
    if (!servesDns(net)) return;
    this.directory.setNetwork(networkId, { internal: net.internal, records: [] });
    for (const r of this.ctx.store.dnsRecordsOfNetwork(networkId)) this.directory.upsertRecord(networkId, r.id, this.record(net, r));
    this.remotes.delete(networkId);
    this.remotesChanged(networkId);
  }

  /** Records of a cluster network's endpoints on other hosts, as their hosts announced them. */
  private readonly remotes = new Map<string, Set<string>>();

  /** Sets a cluster network's remote names to what the cluster agent holds now. */
  remotesChanged(networkId: string): void {
    const net = this.ctx.store.network(networkId);
    if (!this.ctx.cluster || !servesDns(net) || !this.listening.has(networkId)) return;
    const had = this.remotes.get(networkId) ?? new Set<string>();
    const now = new Set<string>();
    for (const e of this.ctx.cluster.remoteEndpointsOf(networkId)) {
      const key = `remote/${e.id}`;
      now.add(key);
      this.directory.upsertRecord(networkId, key, { ip: e.ip, ...(e.ip6 && { ip6: e.ip6 }), names: [...new Set([`${e.name}.${net.name}`, e.name, shortId(e.containerId), ...e.aliases])], weakNames: [], upstreams: [] });
    }
    for (const key of had) if (!now.has(key)) this.directory.removeRecord(networkId, key);
    this.remotes.set(networkId, now);
  }

  /** Updates one container's names on the networks it joined or left: O(1) in the network's size. */
  containerChanged(containerId: string, before: string[], after: string[]): void {
    for (const networkId of before) if (!after.includes(networkId) && this.listening.has(networkId)) this.directory.removeRecord(networkId, containerId);
    for (const networkId of after) {
      const net = this.ctx.store.network(networkId);
      const r = this.ctx.store.dnsRecordOf(networkId, containerId);
      if (servesDns(net) && r && this.listening.has(networkId)) this.directory.upsertRecord(networkId, containerId, this.record(net, r));
    }
  }

  /**
   * name.network comes first: it answers PTR lookups, as Docker answers. The hostname is a weak
   * name: a container picks it itself, so it must not take another container's name or alias.
   */
  private record(net: NetworkRecord, r: DnsRow): DnsRecord {
    return {
      ...(r.ip && { ip: r.ip }),
      ...(r.ip6 && { ip6: r.ip6 }),
      names: [...new Set([`${r.name}.${net.name}`, r.name, shortId(r.id), ...r.aliases])],
      weakNames: [r.hostname],
      upstreams: upstreamsOf(r.dns),
    };
  }

  /** Starts the network's resolver; returns where it listens (undefined if it serves no DNS). */
  async networkAdded(networkId: string): Promise<DnsListener | undefined> {
    const net = this.ctx.store.network(networkId);
    if (!servesDns(net) || this.listening.has(networkId)) return undefined;
    this.listening.set(networkId, undefined);
    this.loadNetwork(networkId);
    try {
      const placement = driverOf(net)!.dns(net)!;
      // In-sandbox DNS listens per container (syncSandbox); the network only needs its names loaded.
      if (placement.in === 'sandbox') return undefined;
      const { udpPort } = await this.resolver.listen(networkId, placement.address, 0);
      const listener = { networkId, bridge: placement.ifname, address: placement.address, port: udpPort };
      this.listening.set(networkId, listener);
      return listener;
    } catch (err) {
      this.listening.delete(networkId);
      throw err;
    }
  }

  /** Stops the network's resolver; returns where it listened. */
  async networkRemoved(networkId: string): Promise<DnsListener | undefined> {
    const listener = this.listening.get(networkId);
    if (!this.listening.delete(networkId)) return undefined;
    await this.resolver.unlisten(networkId);
    this.directory.removeNetwork(networkId);
    this.remotes.delete(networkId);
    return listener;
  }

  /**
   * Gives a running container on an in-sandbox DNS network (macvlan, ipvlan) its resolver at
   * 127.0.0.11:53 inside its namespace, or takes it away when it stops or leaves that network.
   */
  async syncSandbox(containerId: string): Promise<void> {
    const want = sandboxDnsOf(this.ctx, containerId);
    const wantKey = want?.networkIds.join(',');
    const have = this.sandboxes.get(containerId);
    if (have !== undefined && have === wantKey) return;
    const listenerId = `sandbox/${containerId}`;
    if (have !== undefined) {
      this.sandboxes.delete(containerId);
      await this.resolver.unlisten(listenerId);
    }
    if (!want) return;
    const fds = await this.ctx.kernel.call('openSandboxDns', { netnsPath: want.netnsPath, address: SANDBOX_DNS_ADDRESS, port: 53 });
    await this.resolver.adopt(listenerId, want.networkIds, fds, want.ip);
    this.sandboxes.set(containerId, wantKey!);
  }

  /** Every resolver socket, for the firewall's redirect and access elements. */
  listeners(): DnsListener[] {
    return [...this.listening.values()].filter((l): l is DnsListener => l !== undefined);
  }

  async start(): Promise<void> {
    this.refreshHostUpstreams();
    // One network that cannot get its resolver (its bridge could not be restored) must not keep the daemon down.
    for (const net of this.ctx.store.networks()) {
      await this.networkAdded(net.id).catch((err) => this.ctx.log.warn('no DNS for a network', { network: net.name, error: String(err) }));
    }
    for (const c of this.ctx.store.containers()) {
      if (c.state === 'running') await this.syncSandbox(c.id).catch((err) => this.ctx.log.warn('no DNS in a container', { container: c.name, error: String(err) }));
    }
  }

  async stop(): Promise<void> {
    await this.resolver.close();
    this.listening.clear();
    this.sandboxes.clear();
  }
}
