/**
 * What every engine operation works with: the store (desired state), the kernel (actual state),
 * the paths under the root, and the hooks that keep the firewall and DNS in step with the store.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { Kernel } from '../kernel/kernel.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../log.js';

export interface Paths {
  root: string;
  /**
   * Runtime state that lives as long as the containers do (until a reboot): a tmpfs of berth's own,
   * shared-mounted, holding the namespace bind mounts and the per-container /etc files. Creating a
   * file there costs microseconds; on the root's disk it can cost milliseconds.
   */
  run: string;
  /** Short hash of the root: marks this daemon's links (see aliasPrefix). */
  owner: string;
  /** Bind mounts of container network namespaces; a shared mount point. */
  netns: string;
  /** Namespaces made ahead of time (engine/netns-pool.ts), apart from containers'. */
  netnsPool: string;
  containers: string;
}

export function pathsUnder(root: string): Paths {
  const owner = createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 8);
  const run = path.join(root, 'run');
  return { root, owner, run, netns: path.join(run, 'netns'), netnsPool: path.join(run, 'netns-pool'), containers: path.join(run, 'containers') };
}

/** Side effects that follow changes of the store: firewall elements and DNS records. */
export interface StateHooks {
  networkAdded(networkId: string): Promise<void>;
  networkRemoved(networkId: string): Promise<void>;
  /** A container's endpoints or ports changed (started, connected, disconnected, stopped). */
  containerChanged(containerId: string, before: ContainerNetState, after: ContainerNetState): Promise<void>;
  /** Endpoints of a cluster network on other hosts came or went (their names follow). */
  remotesChanged?(networkId: string): void;
}

/** The parts of a container's network state the firewall and DNS care about. */
export interface ContainerNetState {
  ports: import('../store/store.js').PortRecord[];
  networkIds: string[];
}

export interface EngineContext {
  store: Store;
  kernel: Kernel;
  paths: Paths;
  log: Logger;
  hooks: StateHooks;
  /** /proc/PID/ns/net of the daemon: what host-mode containers join. */
  hostNetns: string;
  /** The host's resolv.conf (or --resolv-conf), read when a container starts. */
  resolvConfPath: string;
  /** Lifecycle events and operation records, for the event stream, metrics and the topology page. */
  events: import('./events.js').EngineEvents;
  /** Container namespaces made ahead of time; undefined until the daemon is up (or with --netns-pool 0). */
  netnsPool?: import('./netns-pool.js').NetnsPool;
  /** This host's membership in a cluster (--cluster-store); undefined on a single host. */
  cluster?: import('../cluster/agent.js').ClusterAgent;
  /** This host's leased subnet of the cluster CIDR (--cluster-cidr); undefined without one. */
  hostSubnets?: import('../cluster/host-subnets/subnet-lease.js').HostSubnets;
  /** This host's BGP speaker (--bgp-asn): advertises its routed networks' blocks; undefined without one. */
  bgp?: import('../cluster/bgp/bgp-speaker.js').BgpSpeaker;
  /**
   * Set while an operation that may answer early runs (container rm): the kernel side of its
   * teardown goes here instead of being awaited, and the engine keeps its queue closed until it
   * ends, so the next operation finds the kernel settled. Unset, that work is awaited inline.
   */
  tail?: Promise<unknown>[];
}

/**
 * Work the store already counts as done (the kernel side of a teardown): handed to the running
 * operation's tail when it has one, else awaited. It never throws: what it could not undo is logged
 * and left to the reconciler, which removes berth's objects that nothing in the store references.
 */
export async function afterAnswer(ctx: EngineContext, what: string, work: () => Promise<void>): Promise<void> {
  const leftOver = (err: unknown) => ctx.log.warn(`${what}: left for the reconciler`, { error: String(err) });
  // In a tail, the work starts on the next turn of the event loop, once the answer is written:
  // its synchronous part (the firewall's nft transaction) does not delay it.
  if (ctx.tail) ctx.tail.push(new Promise((resolve) => setImmediate(resolve)).then(work).catch(leftOver));
  else await work().catch(leftOver);
}
