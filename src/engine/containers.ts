/**
 * Container lifecycle: create (record only), start (sandbox, endpoints, ports, /etc files, then
 * the process), stop (process, then network), remove. Starting is all-or-nothing: whatever was
 * set up is undone if a later step fails.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { DEFAULT_NETWORK, NAME_PATTERN } from '../constants.js';
import { BerthError, conflict, invalid } from '../errors.js';
import { parseIpv4, parseMac } from '../ipam/ipv4.js';
import { parseIpv6 } from '../ipam/ipv6.js';
import type { ContainerConfig, ContainerRecord, EndpointRecord, PortRecord } from '../store/store.js';
import { launchArgv } from '../runtime/launch.js';
import { isAlive, processStartTime, terminate } from '../runtime/process.js';
import { checkContainerInput } from './container-input.js';
import { driverOf, isClusterScoped } from '../drivers/registry.js';
import { afterAnswer, type ContainerNetState, type EngineContext } from './context.js';
import { startJoin } from './endpoints.js';
import { etcFilePaths, writeEtcFiles } from './etc-files.js';
import { newId, shortId } from './ids.js';
import { getContainer, getNetwork } from './lookup.js';
import { portHolds } from './port-holds.js';
import { checkPublishable, resolveBindings } from './ports.js';

export interface CreateContainerRequest {
  name?: string;
  cmd: string[];
  hostname?: string;
  networkMode?: string;
  ip?: string;
  ip6?: string;
  mac?: string;
  aliases?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  addHosts?: string[];
  ports?: ContainerConfig['ports'];
  autoRemove?: boolean;
}

export type NetworkMode = { kind: 'host' } | { kind: 'none' } | { kind: 'container'; ref: string } | { kind: 'network'; ref: string };

export function parseNetworkMode(mode: string | undefined): NetworkMode {
  const m = mode || DEFAULT_NETWORK;
  if (m === 'host') return { kind: 'host' };
  if (m === 'none') return { kind: 'none' };
  if (m.startsWith('container:')) {
    const ref = m.slice('container:'.length);
    if (!ref) throw invalid('--network container:NAME needs the name of a running container');
    return { kind: 'container', ref };
  }
  return { kind: 'network', ref: m };
}

function randomName(ctx: EngineContext): string {
  for (;;) {
    const name = `berth_${newId().slice(0, 8)}`;
    if (!ctx.store.containerByName(name)) return name;
  }
}

export function createContainer(ctx: EngineContext, req: CreateContainerRequest): ContainerRecord {
  if (!req.cmd || req.cmd.length === 0) throw invalid('a command is required: berth run [OPTIONS] -- CMD [ARGS…]');
  const name = req.name ?? randomName(ctx);
  if (!NAME_PATTERN.test(name)) throw invalid(`invalid container name "${name}": use letters, digits, '_', '.' and '-'`);
  const existing = ctx.store.containerByName(name);
  if (existing) {
    throw conflict(`Conflict. The container name "/${name}" is already in use by container "${existing.id}". You have to remove (or rename) that container to be able to reuse that name.`);
  }
  const mode = parseNetworkMode(req.networkMode);
  const ports = req.ports ?? [];
  if (mode.kind === 'container') {
    if (ports.length) throw invalid('conflicting options: port publishing and the container type network mode');
    if (req.ip || req.ip6 || req.mac) throw invalid('conflicting options: --ip/--ip6/--mac-address and the container type network mode');
    if (req.hostname) throw invalid('conflicting options: hostname and the network mode (a container:NAME container shares NAME\'s hostname)');
  }
  if (mode.kind === 'network') getNetwork(ctx.store, mode.ref);
  if (req.ip) parseIpv4(req.ip, '--ip address');
  if (req.ip6) parseIpv6(req.ip6, '--ip6 address');
  if (req.mac) parseMac(req.mac);
  checkContainerInput(req);
  const id = newId();
  const config: ContainerConfig = {
    cmd: req.cmd,
    hostname: req.hostname || shortId(id),
    networkMode: req.networkMode || DEFAULT_NETWORK,
    dns: req.dns ?? [],
    ...(req.dnsSearch?.length ? { dnsSearch: req.dnsSearch } : {}),
    ...(req.dnsOptions?.length ? { dnsOptions: req.dnsOptions } : {}),
    addHosts: req.addHosts ?? [],
    // Docker discards published ports in host mode (with a warning) and they mean nothing in none mode.
    ports: mode.kind === 'network' ? ports : [],
    networks: mode.kind === 'network' ? [{ network: mode.ref, ip: req.ip, ...(req.ip6 && { ip6: req.ip6 }), aliases: req.aliases ?? [], mac: req.mac }] : [],
    autoRemove: req.autoRemove ?? false,
  };
  const record: ContainerRecord = {
    id,
    name,
    created: new Date().toISOString(),
    config,
    state: 'created',
    pid: null,
    pidStart: null,
    exitCode: null,
    netnsPath: null,
    sharesWith: null,
  };
  try {
    ctx.store.insertContainer(record);
  } catch (err) {
    if (String(err).includes('UNIQUE')) throw conflict(`Conflict. The container name "/${name}" is already in use`);
    throw err;
  }
  return record;
}

export function netState(ctx: EngineContext, containerId: string): ContainerNetState {
  return {
    ports: ctx.store.portsOfContainer(containerId),
    networkIds: ctx.store.endpointsOfContainer(containerId).map((e) => e.networkId),
  };
}

const EMPTY: ContainerNetState = { ports: [], networkIds: [] };

/** Sets up the container's network: everything but its process. */
export async function startNetwork(ctx: EngineContext, id: string): Promise<ContainerRecord> {
  const c = getContainer(ctx.store, id);
  if (c.state === 'running') throw conflict(`container ${c.name} is already running`);
  const mode = parseNetworkMode(c.config.networkMode);
  let netnsPath: string;
  let sharesWith: string | null = null;
  let ownSandbox = false;
  // The endpoints' kernel side under way (see startJoin).
  const applying: Promise<EndpointRecord>[] = [];
  // A pooled namespace's bind, under way in the kernel thread's queue ahead of the joins.
  let sandbox: Promise<unknown> | undefined;
  let held: PortRecord[] = [];
  let hooked: ContainerNetState | undefined;
  try {
    if (mode.kind === 'host') {
      netnsPath = ctx.hostNetns;
    } else if (mode.kind === 'container') {
      const owner = getContainer(ctx.store, mode.ref);
      if (owner.state !== 'running' || !owner.netnsPath) {
        throw invalid(`cannot join the network of container ${mode.ref}: it is not running (start it first)`);
      }
      netnsPath = owner.netnsPath;
      sharesWith = owner.id;
    } else {
      netnsPath = path.join(ctx.paths.netns, c.id);
      ownSandbox = true;
      // A namespace made ahead of time, bound first in the kernel thread's queue; else the first
      // join makes it (or, with no network, this call).
      const pooled = ctx.netnsPool?.take();
      if (pooled !== undefined) sandbox = ctx.kernel.call('adoptSandbox', { fd: pooled, path: netnsPath });
      else if (c.config.networks.length === 0) sandbox = ctx.kernel.call('createSandbox', { path: netnsPath });
      sandbox?.catch(() => undefined);
      if (c.config.networks.length === 0) await sandbox;
      // The endpoint the ports lead to, as reserved (its addresses are final).
      let first: EndpointRecord | undefined;
      for (const [i, want] of c.config.networks.entries()) {
        const net = getNetwork(ctx.store, want.network);
        // The first join also creates the namespace, in the same call to the kernel thread.
        const join = { ip: want.ip, ip6: want.ip6, aliases: want.aliases, mac: want.mac, createSandbox: i === 0 && !sandbox };
        const pending = await startJoin(ctx, c, net, join, netnsPath);
        first ??= pending.endpoint;
        applying.push(pending.applied);
      }
      // While the kernel thread makes the interfaces, this thread does the rest: ports, the
      // store, /etc files, and the firewall and DNS, whose kernel work queues behind them.
      if (c.config.ports.length > 0 && first) {
        checkPublishable(ctx, first);
        held = await resolveBindings(ctx, c.id, c.config.ports, first);
        ctx.store.transaction(() => held.forEach((p) => ctx.store.insertPort(p)));
      }
    }
    ctx.store.updateContainer(c.id, { state: 'running', netnsPath, sharesWith, exitCode: null, pid: null, pidStart: null });
    const started = getContainer(ctx.store, c.id);
    writeEtcFiles(ctx, started);
    hooked = netState(ctx, c.id);
    await ctx.hooks.containerChanged(c.id, EMPTY, hooked);
    await Promise.all([sandbox, ...applying]);
    return started;
  } catch (err) {
    // Every join has ended (a failed one undid its own reservation) before anything is undone.
    await sandbox?.catch(() => undefined);
    const outcomes = await Promise.allSettled(applying);
    ctx.store.deletePortsOfContainer(c.id);
    const joined = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    for (const e of joined) ctx.store.deleteEndpoint(e.id);
    // What a cluster holds for them (addresses, announcements) goes too; the namespace takes the rest.
    for (const e of joined) {
      const net = ctx.store.network(e.networkId);
      if (net && isClusterScoped(net)) driverOf(net)?.leave(ctx, net, e, null)();
    }
    ctx.store.updateContainer(c.id, { state: 'created', netnsPath: null });
    await undoHooks(ctx, c.id, hooked, EMPTY, held, 'a failed start');
    if (ownSandbox) await ctx.kernel.call('deleteSandbox', { path: path.join(ctx.paths.netns, c.id) }).catch(() => undefined);
    throw err;
  }
}

/**
 * After a failed start (or CNI ADD): the firewall and DNS follow the store back from what the
 * hooks applied (`hooked`) to `now`, which also lets the held ports go; if the hooks never ran,
 * only the ports it held go.
 */
export async function undoHooks(ctx: EngineContext, containerId: string, hooked: ContainerNetState | undefined, now: ContainerNetState, held: PortRecord[], what: string): Promise<void> {
  if (!hooked) return portHolds(ctx).release(held);
  await ctx.hooks.containerChanged(containerId, hooked, now).catch((err) => ctx.log.warn(`could not undo the firewall and DNS of ${what}`, { container: containerId, error: String(err) }));
}

/** Spawns the container's process in the background (`berth run -d`), its output in a log file. */
export function spawnDetached(ctx: EngineContext, c: ContainerRecord, onExit: (code: number) => void): number {
  const dir = path.join(ctx.paths.containers, c.id);
  // A container:NAME container uses its owner's /etc files, so nothing has made its directory yet.
  fs.mkdirSync(dir, { recursive: true });
  const log = fs.openSync(path.join(dir, 'output.log'), 'a');
  try {
    const argv = launchArgvFor(ctx, c);
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
    if (!child.pid) throw new BerthError('internal', `could not start ${c.config.cmd.join(' ')}`);
    child.on('exit', (code, signal) => onExit(code ?? (signal ? 128 + signalNumber(signal) : 1)));
    child.unref();
    return child.pid;
  } finally {
    fs.closeSync(log);
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  return os.constants.signals[signal] ?? 0;
}

export function launchArgvFor(ctx: EngineContext, c: ContainerRecord): string[] {
  const mode = parseNetworkMode(c.config.networkMode);
  return launchArgv({
    netnsPath: c.netnsPath!,
    hostMode: mode.kind === 'host',
    hostname: hostnameOf(ctx, c),
    files: etcFilePaths(ctx, c.sharesWith ?? c.id),
    cmd: c.config.cmd,
  });
}

export function hostnameOf(ctx: EngineContext, c: ContainerRecord): string {
  const owner = c.sharesWith ? ctx.store.container(c.sharesWith) : undefined;
  return owner?.config.hostname ?? c.config.hostname;
}

export function recordPid(ctx: EngineContext, id: string, pid: number): void {
  ctx.store.updateContainer(id, { pid, pidStart: processStartTime(pid) ?? null });
}

/** Default grace of a container's process between SIGTERM and SIGKILL (Docker's `stop -t`). */
export const STOP_GRACE_MS = 10_000;

function runningSharers(ctx: EngineContext, ownerId: string): ContainerRecord[] {
  return ctx.store.containersSharing(ownerId).filter((s) => s.state === 'running');
}

/**
 * A namespace's owner cannot be stopped (or removed without -f) while containers share it: its
 * address and MAC would be freed while they still use them, and handed to the next container.
 */
function refuseWhileShared(ctx: EngineContext, c: ContainerRecord, what: 'stop' | 'remove'): void {
  const sharers = runningSharers(ctx, c.id);
  if (sharers.length === 0) return;
  const names = sharers.map((s) => s.name).join(', ');
  throw conflict(
    `cannot ${what} container ${c.name}: running containers share its network namespace (--network container:${c.name}): ${names}; stop them first, or use \`berth rm -f ${c.name}\`, which stops them too`,
  );
}

/**
 * Tears the network down after the process is gone; the record stays (state `exited`). Containers
 * sharing the namespace (container:NAME) are stopped first, so its address is only freed once
 * nobody uses it. The store changes first and at once; the kernel side (firewall elements, held
 * ports, processes left in the namespace, the namespace itself) may end after the operation's
 * answer (see afterAnswer). `processGone` resolves once the container's process is gone, when the
 * caller killed it without waiting (rm -f): the namespace is dropped only then.
 */
export async function stopNetwork(ctx: EngineContext, id: string, exitCode: number | null, sharerGraceMs = STOP_GRACE_MS, processGone?: Promise<void>): Promise<void> {
  const c = ctx.store.container(id);
  if (!c || c.state !== 'running') return;
  for (const sharer of runningSharers(ctx, id)) await halt(ctx, sharer, sharerGraceMs);
  const before = netState(ctx, id);
  const endpoints = ctx.store.endpointsOfContainer(id).map((e) => ({ e, net: ctx.store.network(e.networkId) }));
  const ownSandbox = c.netnsPath !== null && c.sharesWith === null && c.netnsPath.startsWith(ctx.paths.netns);
  ctx.store.transaction(() => {
    ctx.store.deletePortsOfContainer(id);
    for (const e of ctx.store.endpointsOfContainer(id)) ctx.store.deleteEndpoint(e.id);
    ctx.store.updateContainer(id, { state: 'exited', exitCode, pid: null, pidStart: null, netnsPath: null });
  });
  await afterAnswer(ctx, `tearing down container ${c.name}`, async () => {
    // The store says stopped: the kernel teardown happens whatever the firewall says, and a firewall
    // that could not follow is rebuilt from the store (see Engine.flaggingFailures).
    await ctx.hooks.containerChanged(id, before, EMPTY).catch((err) => ctx.log.error('firewall and DNS not updated for a stopped container', { container: c.name, error: String(err) }));
    await processGone;
    if (ownSandbox) {
      // An interface with no host end (a macvlan or ipvlan child) hangs off a parent shared with the
      // next containers: it is deleted before the namespace, whose own teardown the kernel defers,
      // or its MAC (derived from the address) would still be taken when the address is handed out
      // again. The kernel thread runs the delete first.
      for (const { e, net } of endpoints) if (net && e.hostLink === null) driverOf(net)?.leave(ctx, net, e, { netnsPath: c.netnsPath! })();
      // Whatever still runs in the container's own namespace is the container's (sharers were
      // stopped first) and would outlive it: a child that daemonized out of the process's tree (a
      // `httpd` without -f), or, with no PID on record, the process itself. Docker's cgroup takes
      // them all down with the container; here the /proc scan does.
      await ctx.kernel.call('deleteSandbox', { path: c.netnsPath!, killProcesses: true });
    }
    // The interfaces went with the namespace; what the host side kept for them (neighbour entries) goes now.
    for (const { e, net } of endpoints) if (net) driverOf(net)?.leave(ctx, net, e, null)();
  });
}

export async function stopContainer(ctx: EngineContext, id: string, graceMs: number): Promise<void> {
  const c = getContainer(ctx.store, id);
  if (c.state !== 'running') return;
  refuseWhileShared(ctx, c, 'stop');
  await halt(ctx, c, graceMs);
}

/**
 * Ends the process, then the network (and so, first, any container sharing it). With a grace the
 * process is waited for first; killed at once (rm -f), waiting for it to go is part of the kernel
 * side of the teardown, which may end after the answer.
 */
async function halt(ctx: EngineContext, c: ContainerRecord, graceMs: number): Promise<void> {
  const gone = c.pid ? terminate(c.pid, c.pidStart, graceMs) : undefined;
  if (graceMs > 0) await gone;
  await stopNetwork(ctx, c.id, c.pid ? 137 : null, graceMs, gone);
}

export async function removeContainer(ctx: EngineContext, id: string, force: boolean): Promise<void> {
  const c = getContainer(ctx.store, id);
  if (c.state === 'running') {
    if (!force) {
      refuseWhileShared(ctx, c, 'remove');
      throw conflict(`You cannot remove a running container ${c.id}. Stop the container before attempting removal or force remove`);
    }
    await halt(ctx, c, 0);
  }
  ctx.store.deleteContainer(c.id);
  // The directory only holds derived files (a few): removed after the answer, and synchronously,
  // as a handful of system calls, not one thread-pool round trip per file.
  await afterAnswer(ctx, `removing the files of container ${c.name}`, async () => fs.rmSync(path.join(ctx.paths.containers, c.id), { recursive: true, force: true }));
}

/** Containers whose process died while nobody watched (daemon restart, CLI killed). */
export function isRunningProcess(c: ContainerRecord): boolean {
  return c.state === 'running' && c.pid !== null && isAlive(c.pid, c.pidStart);
}

