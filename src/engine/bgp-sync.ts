/**
 * What the BGP speaker's configuration is made of, from the engine's state: the other hosts of the
 * cluster (the iBGP mesh), and what this host advertises: its blocks of cluster routed networks,
 * the whole pool of host-local ones.
 */
import type { BgpSources } from '../cluster/bgp/bgp-speaker.js';
import { ownBlocks } from '../cluster/routed-blocks.js';
import { isClusterScoped } from '../drivers/registry.js';
import type { EngineContext } from './context.js';

export function bgpSources(ctx: EngineContext): BgpSources {
  return {
    mesh: () => (ctx.cluster?.hostList() ?? []).map((h) => h.address).filter((a) => a !== ctx.cluster?.underlay.address),
    async advertise() {
      const out: string[] = [];
      for (const net of ctx.store.networks()) {
        if (net.driver !== 'routed' || !net.subnet) continue;
        // Unreachable etcd throws here: the speaker keeps its configuration, nothing is withdrawn.
        if (isClusterScoped(net) && ctx.cluster) out.push(...(await ownBlocks(ctx.cluster, net.id)));
        else if (!isClusterScoped(net)) out.push(net.subnet);
      }
      return out;
    },
  };
}
