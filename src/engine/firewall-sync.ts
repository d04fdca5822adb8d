/**
 * Keeps berth's nftables tables in step with the store. At start-up (and on reconcile) the whole
 * ruleset is rebuilt in one transaction; afterwards each change is only element adds and deletes,
 * so publishing a port costs the same at 1 or 10,000 published ports.
 */
import { OPT_ICC, OPT_MASQUERADE } from '../constants.js';
import { buildRuleset, networkElements, portElements } from '../firewall/ruleset.js';
import type { FirewallNetwork, FirewallState, PublishedPort } from '../firewall/model.js';
import type { NetworkRecord, PortRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { isBridgeNetwork } from './networks.js';

export function firewallNetwork(n: NetworkRecord): FirewallNetwork {
  return {
    id: n.id,
    bridge: n.bridge!,
    subnet: n.subnet!,
    gateway: n.gateway!,
    internal: n.internal,
    icc: n.options[OPT_ICC] !== 'false',
    masquerade: n.options[OPT_MASQUERADE] !== 'false',
  };
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

export function firewallState(ctx: EngineContext): FirewallState {
  return {
    networks: ctx.store.networks().filter(isBridgeNetwork).map(firewallNetwork),
    ports: ctx.store.ports().map(publishedPort),
  };
}

export class FirewallSync {
  constructor(private readonly ctx: EngineContext) {}

  /** Rewrites berth's tables from the store (never touching the user's chain or other tables). */
  async applyAll(): Promise<void> {
    await this.ctx.kernel.call('nft', { script: buildRuleset(firewallState(this.ctx)) });
  }

  async networkAdded(id: string): Promise<void> {
    const net = this.ctx.store.network(id);
    if (net && isBridgeNetwork(net)) await this.run(networkElements(firewallNetwork(net), 'add'));
  }

  async networkRemoved(id: string): Promise<void> {
    const net = this.ctx.store.network(id);
    if (net && isBridgeNetwork(net)) await this.run(networkElements(firewallNetwork(net), 'delete'));
  }

  async portsChanged(before: PortRecord[], after: PortRecord[]): Promise<void> {
    const key = (p: PortRecord) => `${p.protocol}/${p.hostIp}/${p.hostPort}/${p.containerIp}/${p.containerPort}`;
    const afterKeys = new Set(after.map(key));
    const beforeKeys = new Set(before.map(key));
    const script = [
      ...before.filter((p) => !afterKeys.has(key(p))).map((p) => portElements(publishedPort(p), 'delete')),
      ...after.filter((p) => !beforeKeys.has(key(p))).map((p) => portElements(publishedPort(p), 'add')),
    ].join('\n');
    if (script.trim()) await this.run(script);
  }

  /**
   * Applies an incremental change. If the kernel's tables drifted from the store (someone flushed
   * them, or an element is already gone), nft rejects the whole transaction; the ruleset is then
   * rebuilt from the store, which is the truth, instead of failing the operation.
   */
  private async run(script: string): Promise<void> {
    try {
      await this.ctx.kernel.call('nft', { script });
    } catch (err) {
      this.ctx.log.warn('firewall drifted from the store; rebuilding it', { error: (err as Error).message });
      await this.applyAll();
    }
  }
}
