/**
 * Keeps berth's nftables tables in step with the store. At start-up (and on reconcile) the whole
 * ruleset is rebuilt in one transaction; afterwards each change is only element adds and deletes,
 * so publishing a port costs the same at 1 or 10,000 published ports.
 */
import { OPT_ICC } from '../constants.js';
import { setsToRedeclare } from '../firewall/legacy-sets.js';
import { buildRuleset, counterKey, declaredSets, dnsElements, iccOffPortElements, networkElements, portElementChanges, type ElementCounter, type ElementOp } from '../firewall/ruleset.js';
import { bindingsToForget } from '../kernel/conntrack.js';
import { applySetElements } from '../kernel/nft-elements.js';
import type { TableFamily } from '../firewall/names.js';
import { checkNetwork, checkPublishedPort, networkHolds, type CheckedNetwork, type DnsListener, type FirewallNetwork, type FirewallState, type PublishedPort } from '../firewall/model.js';
import { BindingIndex } from '../firewall/port-clash.js';
import { conflict } from '../errors.js';
import { cidrsOverlap } from '../ipam/ipv4.js';
import { cidrs6Overlap } from '../ipam/ipv6.js';
import type { NetworkRecord, PortRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { runHostNft } from '../kernel/host-nft.js';
import { driverOf } from '../drivers/registry.js';

/** The network's facts for the firewall, from its driver; undefined if it takes no part. */
export function firewallNetwork(n: NetworkRecord): FirewallNetwork | undefined {
  return driverOf(n)?.firewall(n);
}

function publishedPort(p: PortRecord): PublishedPort {
  return {
    containerId: p.containerId,
    protocol: p.protocol,
    hostIp: p.hostIp,
    hostPort: p.hostPort,
    containerIp: p.containerIp,
    containerPort: p.containerPort,
  };
}

/**
 * The store's state as far as the firewall can express it. A row it cannot (a binding that
 * clashes with an older one, or whose target lies in no network; an older berth could write
 * such rows) is refused and logged: a published port is dropped from the store, a network is
 * left out of the firewall. So a bad row never stops the daemon from starting or reconciling.
 */
export function expressibleState(ctx: EngineContext): FirewallState {
  const networks: CheckedNetwork[] = [];
  for (const n of ctx.store.networks()) {
    const facts = firewallNetwork(n);
    if (!facts) continue;
    try {
      const net = checkNetwork(facts);
      const clash = networks.find((o) => o.bridge === net.bridge || (o.prefix && net.prefix && cidrsOverlap(o.prefix, net.prefix)) || (o.prefix6 && net.prefix6 && cidrs6Overlap(o.prefix6, net.prefix6)));
      if (clash) throw conflict(`network ${n.name} (${net.subnet ?? net.subnet6}, bridge ${net.bridge}) clashes with network ${clash.id}`);
      networks.push(net);
    } catch (err) {
      ctx.log.error('network left out of the firewall', { network: n.name, error: (err as Error).message });
    }
  }
  const ports: PublishedPort[] = [];
  const bindings = new BindingIndex<PublishedPort>();
  for (const record of ctx.store.ports()) {
    const refuse = (why: string) => {
      ctx.log.warn('published port refused and removed', { container: record.containerId, binding: `${record.hostIp}:${record.hostPort}/${record.protocol}`, why });
      ctx.store.deletePort(record);
    };
    let port: PublishedPort;
    try {
      port = checkPublishedPort(publishedPort(record));
    } catch (err) {
      refuse((err as Error).message);
      continue;
    }
    if (!networks.some((n) => networkHolds(n, port.containerIp))) {
      refuse(`its target ${port.containerIp} is in no berth network`);
      continue;
    }
    const clash = bindings.clashWith(port);
    if (clash) {
      refuse(`it clashes with ${clash.hostIp}:${clash.hostPort}/${clash.protocol} of container ${clash.containerId}`);
      continue;
    }
    bindings.add(port);
    ports.push(port);
  }
  return { networks, ports };
}

/** What the firewall remembers of a container between changes (the store forgets it on stop). */
interface Tracked {
  /** Host ends of its veths on icc=false networks, whose elements are applied. */
  iccPorts: string[];
  /** Its addresses: when one is released, conntrack entries naming it are deleted. */
  ips: string[];
}

export class FirewallSync {
  private readonly tracked = new Map<string, Tracked>();

  /** `dnsListeners` says where the networks' resolvers listen (runtime state, not in the store). */
  constructor(
    private readonly ctx: EngineContext,
    private readonly dnsListeners: () => DnsListener[] = () => [],
  ) {}

  /** Rewrites berth's tables from the store (never touching the user's chain or other tables). */
  async applyAll(): Promise<void> {
    const state = expressibleState(this.ctx);
    const known = new Set(state.networks.map((n) => n.id));
    this.tracked.clear();
    for (const c of this.ctx.store.containers()) this.track(c.id);
    const iccOffPorts = [...this.tracked].flatMap(([containerId, t]) => t.iccPorts.map((port) => ({ containerId, port })));
    const dns = this.dnsListeners().filter((l) => known.has(l.networkId));
    const recreateSets = this.setsChecked ? [] : this.setsToRecreate();
    const counters = await this.countersNow();
    runHostNft(buildRuleset({ ...state, dns, iccOffPorts }, { recreateSets, counters }));
    this.setsChecked = true;
    this.forgetDnsFlows(dns);
  }

  /**
   * The accounting counters as they are now, so the rebuild (every 60 s) writes them back instead
   * of zeroing them. Packets counted between this read and the rebuild are lost; a failed read
   * costs only the counts, never the rebuild.
   */
  private async countersNow(): Promise<Map<string, ElementCounter>> {
    const counters = new Map<string, ElementCounter>();
    try {
      for (const r of await this.ctx.kernel.call('firewallCounters')) {
        counters.set(counterKey(r.family as TableFamily, r.set, r.key), { packets: r.packets, bytes: r.bytes });
      }
    } catch (err) {
      this.ctx.log.warn('could not read the firewall counters; the rebuild resets them', { error: (err as Error).message });
    }
    return counters;
  }

  /** Whether berth's sets were checked for flags an older berth gave them (once per daemon). */
  private setsChecked = false;

  private setsToRecreate(): string[] {
    let listing = '';
    for (const script of ['list sets ip', 'list maps ip', 'list sets ip6', 'list maps ip6']) listing += runHostNft(script);
    return setsToRedeclare(listing, declaredSets());
  }

  async dnsListenerChanged(listener: DnsListener, op: ElementOp): Promise<void> {
    await this.run(dnsElements(listener, op));
    if (op === 'add') this.forgetDnsFlows([listener]);
  }

  /**
   * A resolver that listens on a new port (a new daemon) makes earlier redirects stale: a query
   * whose flow is still tracked (30 s for UDP, refreshed by retries from the same port) would go
   * on to the old, closed port. Those flows are forgotten, so the next packet is redirected anew.
   */
  private forgetDnsFlows(listeners: DnsListener[]): void {
    const bindings = listeners.flatMap((l) => (['udp', 'tcp'] as const).map((protocol) => ({ protocol, hostIp: l.address, hostPort: 53 })));
    if (bindings.length > 0) this.forget([], bindings);
  }

  /**
   * Brings the container's icc=false port elements in line with its endpoints in the store, and
   * forgets the connections of addresses it released. Call after its published ports changed:
   * conntrack entries are deleted only once no DNAT element can recreate them.
   */
  async containerChanged(containerId: string): Promise<void> {
    const before = this.tracked.get(containerId) ?? { iccPorts: [], ips: [] };
    const after = this.track(containerId);
    const gone = before.iccPorts.filter((p) => !after.iccPorts.includes(p)).map((port) => ({ containerId, port }));
    const added = after.iccPorts.filter((p) => !before.iccPorts.includes(p)).map((port) => ({ containerId, port }));
    const script = `${gone.length ? iccOffPortElements(gone, 'delete') : ''}${added.length ? iccOffPortElements(added, 'add') : ''}`;
    if (script) await this.run(script);
    const released = before.ips.filter((ip) => !after.ips.includes(ip));
    if (released.length > 0) this.forget(released, []);
  }

  /**
   * Deletes conntrack entries without waiting: the kernel thread runs requests in order, so a
   * later setup that reuses an address is applied after the clean-up, and the caller need not
   * wait for the conntrack dump.
   */
  private forget(ips: string[], bindings: { protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number }[]): void {
    this.ctx.kernel
      .call('forgetConnections', { ips, bindings })
      .catch((err) => this.ctx.log.warn('could not delete conntrack entries', { ips, error: (err as Error).message }));
  }

  private track(containerId: string): Tracked {
    const endpoints = this.ctx.store.endpointsOfContainer(containerId);
    const t: Tracked = {
      iccPorts: endpoints.filter((e) => this.ctx.store.network(e.networkId)?.options[OPT_ICC] === 'false').flatMap((e) => (e.hostLink ? [e.hostLink] : [])),
      ips: endpoints.flatMap((e) => (e.ip ? [e.ip] : [])),
    };
    if (t.ips.length > 0) this.tracked.set(containerId, t);
    else this.tracked.delete(containerId);
    return t;
  }

  async networkAdded(id: string): Promise<void> {
    const net = this.ctx.store.network(id);
    const facts = net && firewallNetwork(net);
    if (facts) await this.run(networkElements(facts, 'add'));
  }

  async networkRemoved(id: string): Promise<void> {
    const net = this.ctx.store.network(id);
    const facts = net && firewallNetwork(net);
    if (facts) await this.run(networkElements(facts, 'delete'));
  }

  async portsChanged(before: PortRecord[], after: PortRecord[]): Promise<void> {
    const key = (p: PortRecord) => `${p.protocol}/${p.hostIp}/${p.hostPort}/${p.containerIp}/${p.containerPort}`;
    const afterKeys = new Set(after.map(key));
    const beforeKeys = new Set(before.map(key));
    const added = after.filter((p) => !beforeKeys.has(key(p)));
    // Straight to the kernel as set elements: a published port's change costs the same whatever
    // else the host's nftables hold (libnftables would read every table first).
    const changes = [
      ...before.filter((p) => !afterKeys.has(key(p))).flatMap((p) => portElementChanges(publishedPort(p), 'delete')),
      ...added.flatMap((p) => portElementChanges(publishedPort(p), 'add')),
    ];
    if (changes.length > 0) await this.applyOrRebuild(() => applySetElements(changes));
    // Flows tracked to a newly published UDP port before it existed would never be DNAT'd (see conntrack.ts).
    const stale = bindingsToForget(added);
    if (stale.length > 0) this.forget([], stale);
  }

  /**
   * Applies an incremental change. If the kernel's tables drifted from the store (someone flushed
   * them, or an element is already gone), nft rejects the whole transaction; the ruleset is then
   * rebuilt from the store, which is the truth, instead of failing the operation.
   */
  private async run(script: string): Promise<void> {
    await this.applyOrRebuild(() => runHostNft(script));
  }

  private async applyOrRebuild(apply: () => unknown): Promise<void> {
    try {
      apply();
    } catch (err) {
      this.ctx.log.warn('firewall drifted from the store; rebuilding it', { error: (err as Error).message });
      await this.applyAll();
    }
  }
}
