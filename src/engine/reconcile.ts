/**
 * The reconciler compares the store (desired state) with the kernel and repairs the difference:
 * half-done operations are rolled back, bridges that vanished are restored, and every berth-owned
 * link or namespace that nothing references is removed. It runs at start-up, on demand
 * (`berth system reconcile`) and periodically, so a crash at any point leaves nothing behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VETH_PREFIX, aliasPrefix } from '../constants.js';
import type { EngineContext } from './context.js';
import { isRunningProcess, recordPid, stopNetwork } from './containers.js';
import { killProcessesInNetns, processesInNetns, rootProcess, unclaimedRoots } from '../runtime/process.js';
import type { ContainerRecord } from '../store/store.js';
import { driverOf } from '../drivers/registry.js';
import { bindingsTo } from './ports.js';

// Host ends of bridge networks' veths, and of ptp networks' (bpt + 12 hex).
const OWN_VETH = new RegExp(`^(${VETH_PREFIX}|bpt)[0-9a-f]{12}$`);

export interface ReconcileReport {
  bridgesRestored: string[];
  /** Bridges of stored networks that could not be restored (see the log for why). */
  bridgesUnrestorable: string[];
  portsReattached: string[];
  containersExited: string[];
  /** Running containers whose PID was never recorded, found in their namespace. */
  pidsAdopted: string[];
  endpointsRolledBack: string[];
  linksRemoved: string[];
  namespacesRemoved: string[];
  orphanRowsRemoved: number;
  /** Other hosts' subnets whose path (routes, VXLAN entries) was restored, or removed (`-`). */
  hostSubnetPeersRepaired: string[];
}

/** Who wants each engine's reconcile reports (the metrics count repairs), by engine context. */
const reportWatchers = new WeakMap<EngineContext, Set<(report: ReconcileReport) => void>>();

/** Calls `fn` with the report of every reconcile of this engine from now on; returns the unsubscribe. */
export function onReconcileReport(ctx: EngineContext, fn: (report: ReconcileReport) => void): () => void {
  const set = reportWatchers.get(ctx) ?? new Set();
  reportWatchers.set(ctx, set.add(fn));
  return () => set.delete(fn);
}

export async function reconcile(ctx: EngineContext): Promise<ReconcileReport> {
  const report = await repair(ctx);
  for (const fn of reportWatchers.get(ctx) ?? []) {
    try {
      fn(report);
    } catch (err) {
      ctx.log.warn('a reconcile report watcher failed', { error: String(err) });
    }
  }
  return report;
}

async function repair(ctx: EngineContext): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    bridgesRestored: [],
    bridgesUnrestorable: [],
    portsReattached: [],
    containersExited: [],
    pidsAdopted: [],
    endpointsRolledBack: [],
    linksRemoved: [],
    namespacesRemoved: [],
    orphanRowsRemoved: 0,
    hostSubnetPeersRepaired: [],
  };
  const { store, kernel } = ctx;

  // What each network owns (a bridge): restored if it vanished.
  const unrestorable = new Set<string>();
  for (const net of store.networks()) {
    const owned = net.links.filter((l) => l.owned).map((l) => l.name);
    try {
      if (await driverOf(net)?.ensure(ctx, net)) report.bridgesRestored.push(...owned);
    } catch (err) {
      // One network's link that cannot be restored (its name taken by a link of the host, say)
      // must not keep the daemon from starting or the others from being repaired.
      ctx.log.warn('could not restore a network link', { network: net.name, links: owned, error: String(err) });
      report.bridgesUnrestorable.push(...owned);
      unrestorable.add(net.id);
    }
  }

  // The paths to other hosts' subnets (--cluster-cidr): deleted entries or routes come back.
  if (ctx.hostSubnets) {
    try {
      report.hostSubnetPeersRepaired = await ctx.hostSubnets.repair();
    } catch (err) {
      ctx.log.warn('could not repair the paths to other hosts’ subnets', { error: String(err) });
    }
  }

  // Containers with endpoints, and whether every one of them is still pending (one read of all).
  const onlyPending = new Map<string, boolean>();
  for (const e of store.endpoints()) onlyPending.set(e.containerId, (onlyPending.get(e.containerId) ?? true) && e.state === 'pending');
  // Containers whose process died (or whose namespace vanished) while no daemon watched.
  for (const c of store.containers()) {
    if (c.state !== 'running') continue;
    // A daemon killed in the middle of a start: the store says running (a start records that while
    // its interfaces are being made) but none of its endpoints became active and nothing was
    // spawned. The start is undone, ports and all, as a start that fails is. (A CNI container's
    // attachments are the runtime's to retry or DEL: its pending endpoint alone goes, below.)
    if (c.pid === null && !c.config.cni && onlyPending.get(c.id)) {
      await stopNetwork(ctx, c.id, null);
      report.containersExited.push(c.name);
      continue;
    }
    // A daemon killed between spawning the process and recording its PID: find it in the namespace.
    if (c.pid === null && c.sharesWith !== null && c.netnsPath?.startsWith(ctx.paths.netns)) {
      adoptSharer(ctx, c, report);
      if (store.container(c.id)?.pid !== null) continue;
    }
    if (c.pid === null && c.sharesWith === null && c.netnsPath?.startsWith(ctx.paths.netns)) {
      const pid = rootProcess(processesInNetns(c.netnsPath));
      if (pid !== undefined) {
        recordPid(ctx, c.id, pid);
        report.pidsAdopted.push(c.name);
        continue;
      }
    }
    // Only berth's own namespace files can vanish under it; host mode points at the daemon's /proc entry.
    const nsGone = c.netnsPath !== null && c.netnsPath.startsWith(ctx.paths.netns) && !fs.existsSync(c.netnsPath);
    const dead = c.pid !== null && !isRunningProcess(c);
    if (nsGone || dead) {
      await stopNetwork(ctx, c.id, c.exitCode);
      report.containersExited.push(c.name);
    }
  }

  // Rows a crash left behind: endpoints still pending, endpoints or ports of stopped containers.
  for (const e of store.endpoints()) {
    const c = store.container(e.containerId);
    if (e.state === 'pending' || !c || c.state !== 'running') {
      if (c?.netnsPath && e.state === 'pending') await kernel.call('detach', { netnsPath: c.netnsPath, ifname: e.ifname }).catch(() => false);
      store.deleteEndpoint(e.id);
      report.endpointsRolledBack.push(e.id);
    }
  }
  for (const p of store.ports()) {
    if (store.container(p.containerId)?.state !== 'running') {
      store.deletePortsOfContainer(p.containerId);
      report.orphanRowsRemoved++;
    }
  }

  // Active endpoints whose veth is gone (a crash mid-disconnect, or someone deleted it): the
  // interface is lost, so the endpoint and the ports that pointed at it are released.
  let view = await kernel.call('inspect', {});
  const linkNames = new Set(view.links.map((l) => l.name));
  for (const e of store.endpoints()) {
    if (e.hostLink === null || linkNames.has(e.hostLink)) continue;
    if (bindingsTo(store.portsOfContainer(e.containerId), e).length > 0) store.deletePortsOfContainer(e.containerId);
    store.deleteEndpoint(e.id);
    report.endpointsRolledBack.push(e.id);
  }

  // Endpoints that lost what they hang off (a bridge deleted and just restored) go back on it.
  for (const net of store.networks()) {
    const driver = driverOf(net);
    if (!driver || unrestorable.has(net.id)) continue;
    const repaired = { restored: report.bridgesRestored, unrestorable: report.bridgesUnrestorable, reattached: report.portsReattached };
    await driver.repair(ctx, net, store.endpointsOfNetwork(net.id), view, repaired);
  }

  // berth's links that no stored network or endpoint references: marked by alias, or (for a veth
  // a crash caught before its alias was set) by berth's veth naming.
  const endpointIds = new Set(store.endpoints().map((e) => e.id));
  const vethNames = new Set(store.endpoints().map((e) => e.hostLink));
  const networkIds = new Set(store.networks().map((n) => n.id));
  view = await kernel.call('inspect', {});
  const ALIAS_ENDPOINT = aliasPrefix(ctx.paths.owner, 'endpoint');
  const ALIAS_NETWORK = aliasPrefix(ctx.paths.owner, 'network');
  for (const link of view.links) {
    const alias = link.alias ?? '';
    const orphanEndpoint = alias.startsWith(ALIAS_ENDPOINT)
      ? !endpointIds.has(alias.slice(ALIAS_ENDPOINT.length))
      : !alias && link.kind === 'veth' && OWN_VETH.test(link.name) && !vethNames.has(link.name);
    const orphanNetwork = alias.startsWith(ALIAS_NETWORK) && !networkIds.has(alias.slice(ALIAS_NETWORK.length));
    if (orphanEndpoint || orphanNetwork) {
      await kernel.call('deleteLink', link.name);
      report.linksRemoved.push(link.name);
    }
  }

  // Namespaces under berth's run directory that no running container uses.
  const inUse = new Set(store.containers().filter((c) => c.state === 'running').map((c) => c.netnsPath));
  for (const name of fs.existsSync(ctx.paths.netns) ? fs.readdirSync(ctx.paths.netns) : []) {
    const nsPath = path.join(ctx.paths.netns, name);
    if (inUse.has(nsPath)) continue;
    // A process left in it (the daemon died before it could record or stop it) dies with it.
    const killed = killProcessesInNetns(nsPath);
    if (killed.length > 0) ctx.log.warn('killed processes left in a dropped container namespace', { namespace: name, pids: killed });
    await kernel.call('deleteSandbox', { path: nsPath });
    report.namespacesRemoved.push(name);
  }
  // State directories of containers that no longer exist (their removal is not awaited).
  for (const name of fs.existsSync(ctx.paths.containers) ? fs.readdirSync(ctx.paths.containers) : []) {
    if (!store.container(name)) fs.rmSync(path.join(ctx.paths.containers, name), { recursive: true, force: true });
  }
  return report;
}

/**
 * A container:NAME sharer whose PID was never recorded (the daemon died between spawning it and
 * recording it): its process runs in the owner's namespace, in a tree no known PID heads. With one
 * such sharer and one such tree it is adopted; otherwise which is whose cannot be told, and the
 * trees are killed (the sharers then count as exited once the start grace is over).
 */
function adoptSharer(ctx: EngineContext, c: ContainerRecord, report: ReconcileReport): void {
  const same = ctx.store.containers().filter((o) => o.state === 'running' && o.netnsPath === c.netnsPath);
  const roots = unclaimedRoots(processesInNetns(c.netnsPath!), same.flatMap((o) => (o.pid === null ? [] : [o.pid])));
  if (roots.length === 0) return;
  const pidless = same.filter((o) => o.pid === null && o.sharesWith !== null);
  if (roots.length === 1 && pidless.length === 1) {
    recordPid(ctx, c.id, roots[0]!);
    report.pidsAdopted.push(c.name);
    return;
  }
  for (const pid of roots) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  ctx.log.warn('killed processes of sharers whose PIDs were never recorded', { namespace: c.netnsPath, pids: roots });
}
