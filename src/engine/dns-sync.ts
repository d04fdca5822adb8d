/**
 * Feeds the embedded resolver from the store. The resolver listens on each user-defined network's
 * gateway address, port 53, in the daemon's (host) namespace, as Podman's aardvark-dns does: the
 * socket a query arrives on tells which network asks, so names stay scoped to their network.
 * Forwarded queries leave from the host namespace, so loopback upstreams (127.0.0.53) work.
 * The default `bridge` network gets no resolver, as in Docker.
 */
import * as fs from 'node:fs';
import { MemoryDirectory, type DnsRecord } from '../dns/directory.js';
import { DnsResolver } from '../dns/resolver.js';
import { parseResolvConf, upstreamsOf } from '../dns/resolv-conf.js';
import type { DnsRow, NetworkRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { shortId } from './ids.js';
import { isBridgeNetwork, isDefaultBridge } from './networks.js';

export const DNS_PORT = 53;

export function servesDns(net: NetworkRecord | undefined): net is NetworkRecord {
  return net !== undefined && isBridgeNetwork(net) && !isDefaultBridge(net);
}

export class DnsSync {
  readonly directory = new MemoryDirectory();
  readonly resolver: DnsResolver;
  private readonly listening = new Set<string>();

  constructor(private readonly ctx: EngineContext) {
    this.resolver = new DnsResolver({ directory: this.directory });
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

  /** name.network comes first: it answers PTR lookups, as Docker answers. */
  private record(net: NetworkRecord, r: DnsRow): DnsRecord {
    return {
      ip: r.ip,
      names: [...new Set([`${r.name}.${net.name}`, r.name, r.hostname, shortId(r.id), ...r.aliases])],
      upstreams: upstreamsOf(r.dns),
    };
  }

  async networkAdded(networkId: string): Promise<void> {
    const net = this.ctx.store.network(networkId);
    if (!servesDns(net) || this.listening.has(networkId)) return;
    this.listening.add(networkId);
    this.loadNetwork(networkId);
    try {
      await this.resolver.listen(networkId, net.gateway!, DNS_PORT);
    } catch (err) {
      this.listening.delete(networkId);
      throw err;
    }
  }

  async networkRemoved(networkId: string): Promise<void> {
    if (!this.listening.delete(networkId)) return;
    await this.resolver.unlisten(networkId);
    this.directory.removeNetwork(networkId);
  }

  async start(): Promise<void> {
    this.refreshHostUpstreams();
    for (const net of this.ctx.store.networks()) await this.networkAdded(net.id);
  }

  async stop(): Promise<void> {
    await this.resolver.close();
    this.listening.clear();
  }
}
