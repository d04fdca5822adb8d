/** The daemon's wiring of store changes to the firewall and the embedded DNS. */
import type { EngineContext, StateHooks } from './context.js';
import { DnsSync } from './dns-sync.js';
import { FirewallSync } from './firewall-sync.js';
import { FirewallWatch } from './firewall-watch.js';
import { ensureDockerUserRule } from '../kernel/docker-user.js';
import { FORWARD_MARK } from '../firewall/names.js';
import { portHolds } from './port-holds.js';

export interface DaemonHooks extends StateHooks {
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Rewrites the firewall from the store (after a reconcile or an `nft flush ruleset`). `periodic`:
   * only if the watch may have missed a change. At 1,000 containers a rewrite holds the event loop
   * for ~0.2 s and loses the packets counted between its counter read and its load.
   */
  resync(opts?: { periodic?: boolean }): Promise<void>;
}

export function createHooks(ctx: EngineContext): DaemonHooks {
  const dns = new DnsSync(ctx);
  const firewall = new FirewallSync(ctx, () => dns.listeners());
  const holds = portHolds(ctx);
  // A failure here (iptables refusing, say) is logged: it must not keep the daemon down.
  const besideDocker = async () => {
    try {
      if ((await ensureDockerUserRule(FORWARD_MARK)) === 'added') ctx.log.info("added berth's rule to Docker's DOCKER-USER chain");
    } catch (err) {
      ctx.log.error("could not add berth's rule to Docker's DOCKER-USER chain", { error: (err as Error).message });
    }
  };
  const watch = new FirewallWatch(ctx, () => firewall.applyAll(), besideDocker);
  // Ports published before a restart are held again; one a host process took meanwhile still
  // works for remote clients (DNAT comes first) but a local client may reach that process.
  const holdStoredPorts = () => {
    for (const p of holds.sync(ctx.store.ports())) {
      ctx.log.warn('a host process has bound a published port', { binding: `${p.hostIp}:${p.hostPort}/${p.protocol}`, container: p.containerId });
    }
  };
  return {
    async start() {
      // Resolvers first: the ruleset redirects to the ports they listen on.
      await dns.start();
      await firewall.applyAll();
      holdStoredPorts();
      await besideDocker();
      watch.start();
    },
    async stop() {
      watch.stop();
      await dns.stop();
    },
    async resync(opts = {}) {
      if (!(opts.periodic && watch.watching)) {
        await firewall.applyAll();
        await besideDocker();
      }
      holdStoredPorts();
    },
    async networkAdded(id) {
      await firewall.networkAdded(id);
      const listener = await dns.networkAdded(id);
      if (listener) await firewall.dnsListenerChanged(listener, 'add');
    },
    async networkRemoved(id) {
      const listener = await dns.networkRemoved(id);
      if (listener) await firewall.dnsListenerChanged(listener, 'delete');
      await firewall.networkRemoved(id);
    },
    remotesChanged(networkId) {
      dns.remotesChanged(networkId);
    },
    async containerChanged(id, before, after) {
      try {
        await firewall.portsChanged(before.ports, after.ports);
        await firewall.containerChanged(id);
      } finally {
        // The store already says so: held ports and names follow it even when nft failed.
        const kept = new Set(after.ports.map((p) => `${p.protocol}/${p.hostIp}/${p.hostPort}`));
        holds.release(before.ports.filter((p) => !kept.has(`${p.protocol}/${p.hostIp}/${p.hostPort}`)));
        dns.containerChanged(id, before.networkIds, after.networkIds);
        await dns.syncSandbox(id).catch((err) => ctx.log.warn('could not update the resolver inside a container', { container: id, error: String(err) }));
      }
    },
  };
}
