/**
 * What this host does when the cluster changes (the cluster agent's sink): mirror cluster networks
 * other hosts create, drop those they remove, program and forget other hosts' endpoints in the
 * kernel and the resolver, and announce this host's endpoints again when its lease was renewed
 * from scratch. Network changes run under the engine's mutex; remote endpoints do not wait for it
 * (a container start must not delay another host's convergence), since programming them only
 * touches the network's VXLAN device, and is idempotent.
 */
import type { ClusterAgent, ClusterSink } from '../cluster/agent.js';
import type { AnnouncedEndpoint, HeldAddress } from '../cluster/keys.js';
import * as K from '../cluster/keys.js';
import { announceEndpoint } from '../cluster/cluster-ipam.js';
import { reclaimBlocks } from '../cluster/routed-blocks.js';
import { isClusterScoped } from '../drivers/registry.js';
import { linkOf } from '../drivers/options.js';
import { isEncrypted, remotesFor } from '../drivers/overlay/overlay-driver.js';
import type { EndpointRecord, NetworkRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { announcementOf } from './endpoints.js';
import { dropNetwork, mirrorNetwork } from './networks.js';

export function clusterSink(ctx: EngineContext, exclusive: <T>(fn: () => Promise<T>) => Promise<T>): ClusterSink {
  const cluster = ctx.cluster!;
  return {
    networkAppeared: (record) => exclusive(() => mirrorNetwork(ctx, record)),
    networkVanished: (record) =>
      exclusive(async () => {
        const local = ctx.store.network(record.id);
        if (!local) return;
        if (ctx.store.endpointsOfNetwork(local.id).length > 0) {
          ctx.log.error('a cluster network was removed while containers here use it; kept on this host until they leave', { network: local.name });
          return;
        }
        await dropNetwork(ctx, local);
      }),
    async remotesChanged(networkId, added, removed) {
      const net = ctx.store.network(networkId);
      const vxlan = net && linkOf(net, 'vxlan');
      if (vxlan) {
        try {
          await ctx.kernel.call('programRemotes', {
            vxlan,
            add: remotesFor(ctx, net, added),
            remove: removed.filter((r) => !added.some((a) => a.mac === r.mac)).map(({ mac, ip, ip6 }) => ({ mac, ip, ...(ip6 && { ip6 }) })),
          });
        } catch (err) {
          // The device is not made yet: ensure() programs every remote from the cache when it is.
          if ((err as { errno?: number }).errno !== 2) throw err;
        }
      }
      ctx.hooks.remotesChanged?.(networkId);
    },
    reannounce: () => exclusive(() => announceLocalEndpoints(ctx, cluster)),
    async hostsChanged() {
      // The iBGP mesh follows the hosts.
      await ctx.bgp?.refresh();
      // A host's tunnel came or went: WireGuard's peers follow, and encrypted networks' remote
      // endpoints are programmed towards the tunnel addresses now known.
      if (!cluster.tunnel?.address) return;
      await cluster.tunnel.syncPeers();
      for (const net of ctx.store.networks()) {
        const vxlan = linkOf(net, 'vxlan');
        if (!vxlan || !isClusterScoped(net) || !isEncrypted(net)) continue;
        const add = remotesFor(ctx, net, cluster.remoteEndpointsOf(net.id));
        if (add.length > 0) await ctx.kernel.call('programRemotes', { vxlan, add, remove: [] });
      }
    },
  };
}

/**
 * Puts this host's addresses and endpoints of cluster networks in etcd on its current lease, and
 * deletes keys of this host that no longer match a local endpoint (containers that went while the
 * daemon was down). An address another host took meanwhile (this host was gone past its TTL) is
 * reported, not taken back.
 */
export async function announceLocalEndpoints(ctx: EngineContext, cluster: ClusterAgent): Promise<void> {
  const local = new Map(
    ctx.store
      .endpoints()
      .filter((e) => e.state === 'active')
      .filter((e) => {
        const net = ctx.store.network(e.networkId);
        return net !== undefined && isClusterScoped(net);
      })
      .map((e) => [e.id, e]),
  );
  const [ipam, announced] = await Promise.all([cluster.etcd.list(K.IPAM), cluster.etcd.list(K.ENDPOINTS)]);
  for (const kv of ipam.kvs) {
    const held = JSON.parse(kv.value) as HeldAddress;
    if (held.hostId === cluster.hostId && !local.has(held.endpointId)) await cluster.etcd.delete(kv.key);
  }
  for (const kv of announced.kvs) {
    const ep = JSON.parse(kv.value) as AnnouncedEndpoint;
    if (ep.hostId === cluster.hostId && !local.has(ep.id)) await cluster.etcd.delete(kv.key);
  }
  await reclaimRoutedBlocks(ctx, cluster, [...local.values()]);
  for (const e of local.values()) {
    const container = ctx.store.container(e.containerId);
    if (!container) continue;
    const key = K.ipamKey(e.networkId, e.ip!);
    const value = JSON.stringify({ hostId: cluster.hostId, endpointId: e.id } satisfies HeldAddress);
    const txn = await cluster.etcd.txn(
      [{ key, target: 'CREATE', value: 0 }],
      [{ put: { key, value, lease: cluster.leaseId } }],
      [{ get: { key } }],
    );
    if (!txn.succeeded) {
      const holder = txn.ranges[0]?.[0];
      const held = holder ? (JSON.parse(holder.value) as HeldAddress) : undefined;
      if (held && (held.hostId !== cluster.hostId || held.endpointId !== e.id)) {
        ctx.log.error('an address of a container here was taken by another host while this host was away: its cluster traffic will clash until one of them is removed', { container: container.name, ip: e.ip, holder: held.hostId });
        continue;
      }
      await cluster.etcd.put(key, value, cluster.leaseId);
    }
    await announceEndpoint(cluster, announcementOf(cluster, container, e));
  }
}

/** The blocks of this host's routed addresses, on its current lease (lost ones are reported, not taken back). */
async function reclaimRoutedBlocks(ctx: EngineContext, cluster: ClusterAgent, local: EndpointRecord[]): Promise<void> {
  const byNet = new Map<string, string[]>();
  for (const e of local) if (e.ip) (byNet.get(e.networkId) ?? byNet.set(e.networkId, []).get(e.networkId)!).push(e.ip);
  for (const [netId, ips] of byNet) {
    const net = ctx.store.network(netId);
    if (net?.driver !== 'routed') continue;
    const lost = await reclaimBlocks(cluster, net, ips);
    if (lost.length > 0) ctx.log.error('blocks of containers here were claimed by another host while this host was away: their traffic will clash until they are removed', { network: net.name, blocks: lost });
  }
  await ctx.bgp?.refresh();
}

/** Cluster networks this host mirrors that the cluster no longer has (removed while it was down). */
export function orphanedMirrors(ctx: EngineContext, cluster: ClusterAgent): NetworkRecord[] {
  return ctx.store.networks().filter((n) => isClusterScoped(n) && !cluster.networkById(n.id));
}
