/**
 * The engine: every door (CLI through the API, the CNI plugin, the library) calls these methods.
 * Mutations run one at a time (see mutex.ts) and each is logged once with its duration.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Kernel } from '../kernel/kernel.js';
import { Store, type NetworkRecord } from '../store/store.js';
import { conflict, invalid } from '../errors.js';
import { logged, type Logger } from '../log.js';
import { pathsUnder, type EngineContext, type StateHooks } from './context.js';
import { NetnsPool } from './netns-pool.js';
import { joinNetwork, leaveNetwork } from './endpoints.js';
import { writeEtcFiles } from './etc-files.js';
import { findContainer, getContainer, getNetwork } from './lookup.js';
import { Mutex } from './mutex.js';
import { bindingsTo } from './ports.js';
import * as containers from './containers.js';
import { ProcessWatch } from '../runtime/process-watch.js';
import * as networks from './networks.js';
import * as cni from './cni.js';
import type { CniEnv, PluginConfig } from '../cni/protocol.js';
import { containerSummary, containerView, networkView } from './views.js';
import { reconcile, type ReconcileReport } from './reconcile.js';
import { ClusterAgent, type ClusterOptions } from '../cluster/agent.js';
import { Tunnel } from '../cluster/tunnel.js';
import { BgpSpeaker, findBird, type BgpOptions } from '../cluster/bgp/bgp-speaker.js';
import { bgpSources } from './bgp-sync.js';
import { isEncrypted } from '../drivers/overlay/overlay-driver.js';
import { announceLocalEndpoints, clusterSink, orphanedMirrors } from './cluster-sync.js';
import { EngineEvents } from './events.js';
import { HostSubnets, type HostSubnetOptions } from '../cluster/host-subnets/subnet-lease.js';
import { backendFor } from '../cluster/host-subnets/backends.js';
import { DEFAULT_NETNS_POOL } from '../constants.js';

export interface EngineOptions {
  root: string;
  log: Logger;
  resolvConfPath?: string;
  /** Builds the firewall/DNS hooks once the context exists; tests may pass none. */
  hooks?: (ctx: EngineContext) => StateHooks & { start?(): Promise<void>; stop?(): Promise<void>; resync?(opts?: { periodic?: boolean }): Promise<void> };
  /** How long a started container may go without a reported PID before it counts as dead (default 30 s). */
  reapGraceMs?: number;
  /** Join a cluster (--cluster-store): overlay networks across hosts. */
  cluster?: ClusterOptions;
  /** Run a BGP speaker (--bgp-asn; needs `cluster`): routed networks' blocks to the other hosts and routers. */
  bgp?: BgpOptions;
  /** Lease a subnet of a cluster CIDR for the default bridge (--cluster-cidr; needs `cluster`). */
  hostSubnets?: HostSubnetOptions;
  /** How many container namespaces to keep made ahead of time (--netns-pool; DEFAULT_NETNS_POOL if unset, 0 for none). */
  netnsPool?: number;
}

const REAP_GRACE_MS = 30_000;

const RECONCILE_EVERY_MS = 60_000;

const NO_HOOKS: StateHooks = {
  async networkAdded() {},
  async networkRemoved() {},
  async containerChanged() {},
};

export class Engine {
  readonly ctx: EngineContext;
  private readonly mutex = new Mutex();
  private readonly lifecycle: { start?(): Promise<void>; stop?(): Promise<void>; resync?(opts?: { periodic?: boolean }): Promise<void> };
  private watcher: NodeJS.Timeout | undefined;
  /** Containers whose process this daemon spawned: their exit event tells us, no polling needed. */
  private readonly children = new Set<string>();
  private reconciler: NodeJS.Timeout | undefined;
  /** When this daemon started each running container: the reaper's grace for an unreported PID counts from there. */
  private readonly startedAt = new Map<string, number>();
  private readonly openedAt = Date.now();
  private reapTicks = 0;
  private readonly reapGraceMs: number;
  /** The processes the reaper watches (pidfds). */
  private readonly processes = new ProcessWatch();
  /** The reaper's list of running containers, read again after any operation (one could have changed it). */
  private watched: ReturnType<Store['watchedProcesses']> | undefined;
  /** A hook failed part-way: the firewall may hold elements the store does not (or lack some). */
  private firewallStale = false;

  private constructor(opts: EngineOptions) {
    this.reapGraceMs = opts.reapGraceMs ?? REAP_GRACE_MS;
    const paths = pathsUnder(opts.root);
    this.ctx = {
      store: new Store(opts.root),
      kernel: new Kernel(),
      paths,
      log: opts.log,
      hooks: NO_HOOKS,
      hostNetns: `/proc/${process.pid}/ns/net`,
      resolvConfPath: opts.resolvConfPath ?? '/etc/resolv.conf',
      events: new EngineEvents((err) => opts.log.warn('an event listener failed', { error: String(err) })),
    };
    const hooks = opts.hooks?.(this.ctx);
    this.ctx.hooks = this.emittingConnects(hooks ? this.flaggingFailures(hooks) : NO_HOOKS);
    this.lifecycle = hooks ?? {};
  }

  /** Opens the store, prepares the run directory, restores networks and repairs drift. */
  static async open(opts: EngineOptions): Promise<Engine> {
    const engine = new Engine(opts);
    const { ctx } = engine;
    // The cluster flags are checked first: a daemon refused for them leaves nothing on the host.
    // It joins before the reconcile, too: restoring an overlay's devices needs the underlay.
    if (opts.cluster) {
      try {
        // The subnet lease first: its refusals (CIDR, config, full, an unreachable peer) leave no keys at all.
        if (opts.hostSubnets) {
          const backend = backendFor(opts.hostSubnets.backend, { kernel: ctx.kernel, log: ctx.log });
          ctx.hostSubnets = await HostSubnets.claim(opts.cluster, opts.hostSubnets, { root: opts.root, kernel: ctx.kernel, log: ctx.log, backend, vet: (subnet) => networks.vetDefaultBridgeSubnet(ctx, subnet) });
        }
        ctx.cluster = await ClusterAgent.join(opts.cluster, { root: opts.root, kernel: ctx.kernel, log: ctx.log });
        ctx.cluster.tunnel = new Tunnel(ctx.cluster, { root: opts.root, owner: ctx.paths.owner, kernel: ctx.kernel, log: ctx.log });
        if (opts.bgp) ctx.bgp = new BgpSpeaker(opts.bgp, ctx.cluster.underlay.address, findBird(), path.join(opts.root, 'bgp'), bgpSources(ctx), ctx.log);
      } catch (err) {
        await ctx.hostSubnets?.close({ release: true });
        await ctx.kernel.close();
        ctx.store.close();
        throw err;
      }
    }
    await ctx.kernel.call('prepareRunDir', { dir: ctx.paths.run });
    fs.mkdirSync(ctx.paths.netns, { recursive: true, mode: 0o755 });
    fs.mkdirSync(ctx.paths.containers, { recursive: true, mode: 0o755 });
    // Containers reach beyond the host only if the host namespace forwards.
    await ctx.kernel.call('writeSysctl', { key: 'net/ipv4/ip_forward', value: '1' });
    await networks.ensurePredefinedNetworks(ctx);
    await engine.mutex.run(() => reconcile(ctx));
    const poolSize = opts.netnsPool ?? DEFAULT_NETNS_POOL;
    if (poolSize > 0) {
      const pool = new NetnsPool(ctx.kernel, ctx.paths.netnsPool, poolSize, ctx.log);
      await pool.open();
      ctx.netnsPool = pool;
    }
    await engine.lifecycle.start?.();
    if (ctx.cluster) await engine.startCluster(ctx.cluster);
    // After the cluster is listed: the first configuration already has every host and block.
    await ctx.bgp?.start();
    ctx.hostSubnets?.follow();
    engine.watcher = setInterval(() => {
      void engine.reapDeadContainers();
      if (engine.firewallStale) void engine.rebuildFirewall();
    }, 1000).unref();
    engine.reconciler = setInterval(() => void engine.reconcile({ periodic: true }).catch((err) => ctx.log.warn('periodic reconcile failed', { error: String(err) })), RECONCILE_EVERY_MS).unref();
    return engine;
  }

  /** Follows the cluster, drops mirrors of networks removed meanwhile, and announces this host's endpoints. */
  private async startCluster(cluster: ClusterAgent): Promise<void> {
    await cluster.start(clusterSink(this.ctx, (fn) => this.mutex.run(fn)));
    await this.mutex.run(async () => {
      for (const net of orphanedMirrors(this.ctx, cluster)) {
        if (this.ctx.store.endpointsOfNetwork(net.id).length === 0) await networks.dropNetwork(this.ctx, net);
      }
      // A tunnel whose encrypted networks were all removed while this daemon was down goes too.
      const encrypted = this.ctx.store.networks().some((n) => n.driver === 'overlay' && isEncrypted(n));
      if (!encrypted && cluster.tunnel?.hasProcess()) await cluster.tunnel.stop();
      await announceLocalEndpoints(this.ctx, cluster);
    });
  }

  async close(): Promise<void> {
    clearInterval(this.watcher);
    clearInterval(this.reconciler);
    this.processes.close();
    await this.ctx.bgp?.stop();
    await this.ctx.cluster?.close();
    await this.ctx.hostSubnets?.close();
    await this.mutex.run(async () => {
      await this.ctx.netnsPool?.close();
      await this.lifecycle.stop?.();
      await this.ctx.kernel.close();
      this.ctx.store.close();
    });
  }

  /**
   * Runs a mutating operation in the engine's queue. With `answerEarly`, the caller gets its answer
   * once the operation's own part is done, and the work it left in ctx.tail (a teardown's kernel
   * side) ends afterwards, still holding the queue: the next operation starts on a settled kernel.
   */
  private op<T>(name: string, fields: Record<string, unknown>, fn: () => Promise<T>, opts: { answerEarly?: boolean } = {}): Promise<T> {
    let answer!: { resolve: (value: T) => void; reject: (err: unknown) => void };
    const answered = new Promise<T>((resolve, reject) => (answer = { resolve, reject }));
    void this.mutex.run(async () => {
      const start = performance.now();
      let outcome: 'ok' | 'error' = 'error';
      const tail: Promise<unknown>[] = [];
      let settle: () => void;
      try {
        if (opts.answerEarly) this.ctx.tail = tail;
        const result = await logged(this.ctx.log, name, fields, fn);
        outcome = 'ok';
        settle = () => answer.resolve(result);
      } catch (err) {
        settle = () => answer.reject(err);
      } finally {
        this.ctx.tail = undefined;
        this.watched = undefined;
        this.ctx.events.operation({ kind: name, ms: performance.now() - start, outcome });
      }
      if (opts.answerEarly) settle();
      if (tail.length > 0) {
        await Promise.all(tail);
        // How long the kernel side took in all (from the operation's start), beside its answer's time.
        this.ctx.log.info(`${name} settled`, { ...fields, ms: +(performance.now() - start).toFixed(2), outcome: 'ok' });
      }
      if (!opts.answerEarly) settle();
    });
    return answered;
  }

  private networkEvent(action: 'create' | 'destroy', net: NetworkRecord): void {
    this.ctx.events.emit('network', action, net.id, { name: net.name, type: net.driver });
  }

  private containerEvent(action: 'create' | 'start' | 'die' | 'stop' | 'destroy', id: string, name: string, extra: Record<string, string> = {}): void {
    this.ctx.events.emit('container', action, id, { name, ...extra });
  }

  /** Runs a container operation and reports what it did to the container's life: start, die, destroy. */
  private async tracked<T>(ref: string, fn: () => Promise<T>, opts: { stop?: boolean } = {}): Promise<T> {
    const before = this.ctx.store.container(ref) ?? findContainer(this.ctx.store, ref);
    const result = await fn();
    if (!before) return result;
    const after = this.ctx.store.container(before.id);
    if (before.state === 'running' && after?.state !== 'running') {
      this.containerEvent('die', before.id, before.name, { exitCode: String(after?.exitCode ?? 0) });
      if (opts.stop) this.containerEvent('stop', before.id, before.name);
    }
    if (before.state !== 'running' && after?.state === 'running') this.containerEvent('start', before.id, before.name);
    if (!after) this.containerEvent('destroy', before.id, before.name);
    return result;
  }

  /* networks */

  createNetwork(req: networks.CreateNetworkRequest) {
    return this.op('network create', { name: req.name }, async () => {
      const net = await networks.createNetwork(this.ctx, req);
      this.networkEvent('create', net);
      return networkView(this.ctx.store, net);
    });
  }

  removeNetwork(ref: string) {
    return this.op('network rm', { network: ref }, async () => {
      this.networkEvent('destroy', await networks.removeNetwork(this.ctx, ref));
    });
  }

  pruneNetworks(keep?: (n: NetworkRecord) => boolean) {
    return this.op('network prune', {}, async () => {
      const before = this.ctx.store.networks();
      const removed = await networks.pruneNetworks(this.ctx, keep);
      for (const net of before) if (removed.includes(net.name)) this.networkEvent('destroy', net);
      return removed;
    });
  }

  listNetworks() {
    return this.ctx.store.networks().map((n) => networkView(this.ctx.store, n, false));
  }

  inspectNetwork(ref: string) {
    return networkView(this.ctx.store, getNetwork(this.ctx.store, ref));
  }

  connect(netRef: string, containerRef: string, req: { ip?: string; ip6?: string; aliases?: string[] }) {
    return this.op('network connect', { network: netRef, container: containerRef }, async () => {
      const net = getNetwork(this.ctx.store, netRef);
      const c = getContainer(this.ctx.store, containerRef);
      if (c.sharesWith) throw invalid(`container ${c.name} shares the network of another container: connect that one instead`);
      const mode = containers.parseNetworkMode(c.config.networkMode);
      if (mode.kind === 'host') throw invalid(`container ${c.name} uses the host network: it cannot be connected to other networks`);
      if (c.state !== 'running' || !c.netnsPath) {
        throw conflict(`container ${c.name} is not running: berth connects running containers (start it first)`);
      }
      const before = containers.netState(this.ctx, c.id);
      const endpoint = await joinNetwork(this.ctx, c, net, { ip: req.ip, ip6: req.ip6, aliases: req.aliases ?? [] }, c.netnsPath);
      try {
        writeEtcFiles(this.ctx, getContainer(this.ctx.store, c.id));
        await this.ctx.hooks.containerChanged(c.id, before, containers.netState(this.ctx, c.id));
      } catch (err) {
        // Nothing half-made: the interface and its address go again (the firewall follows, see flaggingFailures).
        leaveNetwork(this.ctx, endpoint, c.netnsPath)();
        try {
          writeEtcFiles(this.ctx, getContainer(this.ctx.store, c.id));
        } catch (undoErr) {
          this.ctx.log.warn('could not rewrite /etc files after a failed connect', { container: c.name, error: String(undoErr) });
        }
        throw err;
      }
    });
  }

  disconnect(netRef: string, containerRef: string, force: boolean) {
    return this.op('network disconnect', { network: netRef, container: containerRef }, async () => {
      const net = getNetwork(this.ctx.store, netRef);
      const c = getContainer(this.ctx.store, containerRef);
      const endpoint = this.ctx.store.endpointsOfContainer(c.id).find((e) => e.networkId === net.id);
      if (!endpoint) {
        if (force) return;
        if (!networks.hasDriver(net)) throw invalid(`container cannot be disconnected from ${net.name} network or connected to ${net.name} network`);
        throw invalid(`container ${c.id} is not connected to network ${net.name}`);
      }
      const before = containers.netState(this.ctx, c.id);
      // Published ports point at the first endpoint's address; they go with it.
      const ports = bindingsTo(this.ctx.store.portsOfContainer(c.id), endpoint);
      if (ports.length > 0) this.ctx.store.deletePortsOfContainer(c.id);
      const deleteVeth = leaveNetwork(this.ctx, endpoint, c.netnsPath, { moveDefaultRoute: true });
      writeEtcFiles(this.ctx, getContainer(this.ctx.store, c.id));
      await this.ctx.hooks.containerChanged(c.id, before, containers.netState(this.ctx, c.id));
      deleteVeth();
    });
  }

  /* containers */

  createContainer(req: containers.CreateContainerRequest) {
    return this.op('container create', { name: req.name }, async () => {
      const c = containers.createContainer(this.ctx, req);
      this.containerEvent('create', c.id, c.name);
      return c;
    });
  }

  /** Sets up the network; with `detach` also spawns the process. Returns what an attached client needs to spawn it. */
  startContainer(ref: string, detach: boolean) {
    return this.op('container start', { container: ref, detach }, () => this.tracked(ref, () => this.start(ref, detach)));
  }

  /**
   * Create and start in one operation (one request, one trip through the queue). If the start
   * fails the new container is removed again: nothing half-made is left.
   */
  runContainer(req: containers.CreateContainerRequest, detach: boolean) {
    return this.op('container run', { name: req.name, detach }, async () => {
      const c = containers.createContainer(this.ctx, req);
      // Docker's order: create, then the network connects of the start, then start.
      this.containerEvent('create', c.id, c.name);
      try {
        const started = await this.start(c.id, detach);
        this.containerEvent('start', c.id, c.name);
        return started;
      } catch (err) {
        await containers.removeContainer(this.ctx, c.id, true).catch(() => undefined);
        this.containerEvent('destroy', c.id, c.name);
        throw err;
      }
    });
  }

  private async start(ref: string, detach: boolean): Promise<{ id: string; argv: string[] }> {
    // Before the store says running: a reaper tick in between must already see the grace.
    this.startedAt.set(getContainer(this.ctx.store, ref).id, Date.now());
    const c = await containers.startNetwork(this.ctx, ref);
    if (detach) {
      this.children.add(c.id);
      const pid = containers.spawnDetached(this.ctx, c, (code) => {
        this.children.delete(c.id);
        this.containerExited(c.id, code).catch((err) => this.ctx.log.debug('exit after removal', { error: String(err) }));
      });
      containers.recordPid(this.ctx, c.id, pid);
    }
    return { id: c.id, argv: containers.launchArgvFor(this.ctx, c) };
  }

  /** An attached client spawned the process itself and reports its PID. */
  recordPid(ref: string, pid: number) {
    return this.op('container pid', { container: ref, pid }, async () => containers.recordPid(this.ctx, getContainer(this.ctx.store, ref).id, pid));
  }

  containerExited(ref: string, exitCode: number) {
    return this.op('container exited', { container: ref, exitCode }, async () => {
      // A process that exits after its container was removed has nothing left to free.
      const c = this.ctx.store.container(ref) ?? findContainer(this.ctx.store, ref);
      if (!c) return;
      await this.tracked(c.id, async () => {
        await containers.stopNetwork(this.ctx, c.id, exitCode);
        if (c.config.autoRemove) await containers.removeContainer(this.ctx, c.id, true);
      });
    });
  }

  stopContainer(ref: string, graceMs = containers.STOP_GRACE_MS) {
    return this.op('container stop', { container: ref }, () => this.tracked(ref, () => containers.stopContainer(this.ctx, ref, graceMs), { stop: true }));
  }

  /** With `settle`, answers only once the kernel side of the teardown is done too (the CLI waits so). */
  removeContainer(ref: string, force: boolean, settle = false) {
    return this.op('container rm', { container: ref, force }, () => this.tracked(ref, () => containers.removeContainer(this.ctx, ref, force)), { answerEarly: !settle });
  }

  listContainers(all: boolean) {
    return this.ctx.store
      .containers()
      .filter((c) => all || c.state === 'running')
      .map((c) => containerSummary(this.ctx.store, c));
  }

  inspectContainer(ref: string) {
    return containerView(this.ctx.store, getContainer(this.ctx.store, ref));
  }

  /* CNI attachments (the runtime owns the container and its namespace) */

  cniAdd(env: CniEnv, config: PluginConfig) {
    return this.op('cni add', { container: env.containerId, ifname: env.ifname }, () => cni.cniAdd(this.ctx, env, config));
  }

  cniDel(env: CniEnv) {
    return this.op('cni del', { container: env.containerId, ifname: env.ifname }, () => cni.cniDel(this.ctx, env));
  }

  cniCheck(env: CniEnv, config: PluginConfig) {
    return this.op('cni check', { container: env.containerId, ifname: env.ifname }, () => cni.cniCheck(this.ctx, env, config));
  }

  cniGc(config: PluginConfig) {
    return this.op('cni gc', { network: config.network ?? config.name }, () => cni.cniGc(this.ctx, config));
  }

  cniStatus(config: PluginConfig) {
    cni.cniStatus(this.ctx, config);
  }

  /* Docker's plugin protocol (dockerd owns the sandbox; see docker-plugin.ts) */

  /** Runs one of dockerd's plugin calls as an engine operation (one at a time, logged). */
  dockerPlugin<T>(call: string, fields: Record<string, unknown>, fn: (ctx: EngineContext) => Promise<T>): Promise<T> {
    return this.op(`docker ${call}`, fields, () => fn(this.ctx));
  }

  /* maintenance */

  /**
   * Repairs drift between store and kernel, then rewrites the firewall from the store; the
   * periodic one leaves the firewall alone while its watch sees every change (firewall-watch.ts).
   */
  reconcile(opts: { periodic?: boolean } = {}): Promise<ReconcileReport> {
    return this.op('reconcile', opts.periodic ? { periodic: true } : {}, async () => {
      const report = await reconcile(this.ctx);
      await this.lifecycle.resync?.(opts);
      // Endpoints the reconcile rolled back leave the cluster too; lost announcements come back.
      if (this.ctx.cluster) {
        const cluster = this.ctx.cluster;
        await announceLocalEndpoints(this.ctx, cluster).catch((err) => this.ctx.log.warn('could not re-announce to the cluster', { error: String(err) }));
        // The sink's network changes take the mutex this reconcile holds: they run after it.
        void cluster.resync().catch((err) => this.ctx.log.warn('could not list the cluster store', { error: String(err) }));
      }
      return report;
    });
  }

  /**
   * A hook that fails part-way leaves the firewall (and DNS listeners) out of step with the store,
   * whichever operation it was part of; the store is the truth, so they are rebuilt from it, every
   * second until that succeeds (the kernel may refuse for a while), not at the next reconcile.
   */
  /**
   * Docker's network connect and disconnect events, for every way a container's networks change
   * (start, connect, disconnect, stop, rm, CNI): every one goes through containerChanged.
   */
  private emittingConnects(hooks: StateHooks): StateHooks {
    return {
      ...hooks,
      containerChanged: async (id, before, after) => {
        await hooks.containerChanged(id, before, after);
        const name = this.ctx.store.container(id)?.name ?? '';
        for (const [action, from, to] of [['disconnect', before, after], ['connect', after, before]] as const) {
          for (const networkId of from.networkIds) {
            if (to.networkIds.includes(networkId)) continue;
            const net = this.ctx.store.network(networkId);
            this.ctx.events.emit('network', action, networkId, { container: id, name: net?.name ?? networkId, type: net?.driver ?? '', ...(name && { containerName: name }) });
          }
        }
      },
    };
  }

  private flaggingFailures(hooks: StateHooks): StateHooks {
    const flagged =
      <A extends unknown[]>(fn: (...args: A) => Promise<void>) =>
      async (...args: A) => {
        try {
          await fn(...args);
        } catch (err) {
          this.firewallStale = true;
          throw err;
        }
      };
    return {
      networkAdded: flagged((id) => hooks.networkAdded(id)),
      networkRemoved: flagged((id) => hooks.networkRemoved(id)),
      containerChanged: flagged((id, before, after) => hooks.containerChanged(id, before, after)),
      remotesChanged: hooks.remotesChanged?.bind(hooks),
    };
  }

  private rebuildFirewall(): Promise<void> {
    return this.mutex.run(async () => {
      if (!this.firewallStale) return;
      try {
        await this.lifecycle.resync?.();
        this.firewallStale = false;
        this.ctx.log.info('firewall rebuilt from the store after a failed update');
      } catch (err) {
        this.ctx.log.debug('firewall rebuild failed; retrying', { error: String(err) });
      }
    });
  }

  /**
   * Each second: marks containers whose process is gone as exited and frees their network. Each
   * process is watched through a pidfd (runtime/process-watch.ts): one poll(2) a tick says which
   * exited, and a reused PID cannot be mistaken for the container's. The list of running
   * containers is read from the store again only after an operation (or every 10 ticks).
   */
  private async reapDeadContainers(): Promise<void> {
    const graceStart = Date.now() - this.reapGraceMs;
    const tick = this.reapTicks++;
    if (tick % 10 === 0) this.watched = undefined;
    const running = (this.watched ??= this.ctx.store.watchedProcesses());
    const byId = new Map(running.map((c) => [c.id, c]));
    // Not running for longer than the grace: stopped, removed, or a start that failed.
    for (const [id, at] of this.startedAt) if (!byId.has(id) && at < graceStart) this.startedAt.delete(id);
    this.processes.beginTick();
    const tracked = new Set<string>();
    const dead: string[] = [];
    for (const [i, c] of running.entries()) {
      if (this.children.has(c.id)) continue;
      if (c.pid === null) {
        // An attached client reports its PID right after start; give it time before judging. A
        // container started before this daemon came up gets the grace from the daemon's start.
        if ((this.startedAt.get(c.id) ?? this.openedAt) <= graceStart) dead.push(c.id);
      } else if (this.processes.track(c.id, c.pid, c.pidStart, i % 10 === tick % 10)) {
        tracked.add(c.id);
      } else {
        dead.push(c.id);
      }
    }
    // Containers stopped, removed or now the daemon's own children are watched no more.
    this.processes.retain(tracked);
    dead.push(...this.processes.exited());
    for (const id of dead) {
      await this.containerExited(id, 0).catch((err) => this.ctx.log.warn('reap failed', { container: byId.get(id)?.name ?? id, error: String(err) }));
    }
  }
}
