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
import type { NetworkRecord } from '../store/store.js';
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

  /** Rebuilds one network's names from its endpoints: name, hostname, short id, aliases, name.network. */
  refreshNetwork(networkId: string): void {
    const net = this.ctx.store.network(networkId);
    if (!servesDns(net)) return;
    const records: DnsRecord[] = this.ctx.store.dnsRecordsOfNetwork(networkId).map((r) => ({
      ip: r.ip,
      // The first name answers PTR lookups: `name.network`, as Docker answers.
      names: [...new Set([`${r.name}.${net.name}`, r.name, r.hostname, shortId(r.id), ...r.aliases])],
      upstreams: upstreamsOf(r.dns),
    }));
    this.directory.setNetwork(networkId, { internal: net.internal, records });
  }

  async networkAdded(networkId: string): Promise<void> {
    const net = this.ctx.store.network(networkId);
    if (!servesDns(net) || this.listening.has(networkId)) return;
    this.refreshNetwork(networkId);
    await this.resolver.listen(networkId, net.gateway!, DNS_PORT);
    this.listening.add(networkId);
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
