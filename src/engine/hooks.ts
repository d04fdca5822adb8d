/** The daemon's wiring of store changes to the firewall and the embedded DNS. */
import type { EngineContext, StateHooks } from './context.js';
import { DnsSync } from './dns-sync.js';
import { FirewallSync } from './firewall-sync.js';

export interface DaemonHooks extends StateHooks {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Rewrites the firewall from the store (after a reconcile or an `nft flush ruleset`). */
  resync(): Promise<void>;
}

export function createHooks(ctx: EngineContext): DaemonHooks {
  const firewall = new FirewallSync(ctx);
  const dns = new DnsSync(ctx);
  return {
    async start() {
      await firewall.applyAll();
      await dns.start();
    },
    async stop() {
      await dns.stop();
    },
    async resync() {
      await firewall.applyAll();
    },
    async networkAdded(id) {
      await firewall.networkAdded(id);
      await dns.networkAdded(id);
    },
    async networkRemoved(id) {
      await dns.networkRemoved(id);
      await firewall.networkRemoved(id);
    },
    async containerChanged(id, before, after) {
      await firewall.portsChanged(before.ports, after.ports);
      dns.containerChanged(id, before.networkIds, after.networkIds);
    },
  };
}
