/**
 * dockerd's networks and endpoints, made through Docker's remote driver protocol (src/plugin/).
 * Each of dockerd's networks maps to a berth network (made for it, or an existing one adopted by
 * name); each of its endpoints is a container record `docker-<endpoint id>` with no process and no
 * namespace of berth's, so it shows in `berth ps` and `berth network inspect` and gets berth's
 * IPAM, firewall, ports and DNS like any other. The interface is plumbed by the network's driver
 * into a staging namespace, then handed to dockerd (kernel/ops-docker.ts), which moves it into the
 * container when it starts and back when it stops. Everything is in the store, so a restart of
 * either daemon loses nothing; every call is idempotent, as dockerd repeats Leave and
 * DeleteEndpoint for containers that died while it was down.
 */
import * as path from 'node:path';
import { conflict, invalid, notFound } from '../errors.js';
import { parseCidr } from '../ipam/ipv4.js';
import { announceEndpoint } from '../cluster/cluster-ipam.js';
import { driverNamed, driverNames, isClusterScoped } from '../drivers/registry.js';
import type { ContainerConfig, ContainerRecord, EndpointRecord, NetworkRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { netState } from './containers.js';
import { announcementOf, joinNetwork, leaveNetwork } from './endpoints.js';
import { newId } from './ids.js';
import { createNetwork, removeNetwork } from './networks.js';
import { bindingsTo, checkPublishable, resolveBindings } from './ports.js';

/** `-o berth.driver=NAME`: the berth driver behind a `-d berth` network (bridge when absent). */
export const OPT_BERTH_DRIVER = 'berth.driver';
/** `-o berth.name=NAME`: the berth network's name; an existing network of that name is adopted. */
export const OPT_BERTH_NAME = 'berth.name';

/** Interfaces handed to dockerd: `bd` + 12 hex digits of Docker's endpoint id. */
const HANDED_PREFIX = 'bd';

export interface DockerNetworkSpec {
  dockerId: string;
  /** The `-o` options (Docker's com.docker.network.generic). */
  options: Record<string, string>;
  internal: boolean;
  /** The IPv4 pool and gateway (CIDR text, as Docker sends it) IPAM gave the network. */
  pool?: string;
  gateway?: string;
  auxAddresses: Record<string, string>;
}

export interface DockerEndpointSpec {
  dockerNetworkId: string;
  endpointId: string;
  /** The address dockerd's IPAM gave the endpoint (CIDR text), or '' to let berth choose. */
  address: string;
  mac: string;
}

export interface DockerPortMapping {
  protocol: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
  hostPortEnd: number;
  containerPort: number;
}

/** The container record standing for a Docker endpoint. */
export const recordName = (endpointId: string) => `docker-${endpointId.slice(0, 12)}`;
const handedName = (endpointId: string) => `${HANDED_PREFIX}${endpointId.slice(0, 12)}`;
const addressOnly = (cidr: string | undefined) => (cidr ? cidr.split('/')[0]! : undefined);

function mappedNetwork(ctx: EngineContext, dockerId: string): NetworkRecord {
  const m = ctx.store.dockerNetwork(dockerId);
  const net = m && ctx.store.network(m.networkId);
  if (!net) throw notFound(`dockerd's network ${dockerId.slice(0, 12)} has no berth network (removed with \`berth network rm\`?): remove it with \`docker network rm\` and create it again`);
  return net;
}

export async function dockerCreateNetwork(ctx: EngineContext, spec: DockerNetworkSpec): Promise<NetworkRecord> {
  const known = ctx.store.dockerNetwork(spec.dockerId);
  if (known) return mappedNetwork(ctx, spec.dockerId);
  const { [OPT_BERTH_DRIVER]: driverName = 'bridge', [OPT_BERTH_NAME]: wanted, ...options } = spec.options;
  const driver = driverNamed(driverName);
  if (!driver) throw invalid(`-o ${OPT_BERTH_DRIVER}=${driverName}: berth has no such driver: use one of ${driverNames().join(', ')}`);
  const name = wanted ?? `docker-${spec.dockerId.slice(0, 12)}`;
  const existing = ctx.store.networkByName(name);
  if (existing) {
    adoptable(existing, driver.name, spec);
    ctx.store.insertDockerNetwork({ dockerId: spec.dockerId, networkId: existing.id, adopted: true });
    return existing;
  }
  const net = await createNetwork(ctx, {
    name,
    driver: driver.name,
    subnet: spec.pool,
    gateway: addressOnly(spec.gateway),
    auxAddresses: spec.auxAddresses,
    internal: spec.internal,
    options,
    labels: { 'com.docker.network.id': spec.dockerId },
  });
  ctx.store.insertDockerNetwork({ dockerId: spec.dockerId, networkId: net.id, adopted: false });
  networkEvent(ctx, 'create', net);
  return net;
}

/** An existing network dockerd may share: same driver, same subnet (Docker's IPAM hands out its addresses). */
function adoptable(net: NetworkRecord, driver: string, spec: DockerNetworkSpec): void {
  if (net.driver !== driver) throw conflict(`berth network ${net.name} exists with driver ${net.driver}, not ${driver}: pass -o ${OPT_BERTH_DRIVER}=${net.driver}, or another -o ${OPT_BERTH_NAME}`);
  if (!net.subnet || !spec.pool || parseCidr(spec.pool).text !== parseCidr(net.subnet).text) {
    throw conflict(`berth network ${net.name} has subnet ${net.subnet ?? '(none)'}, dockerd's network ${spec.pool ?? '(none)'}: create it with --subnet ${net.subnet ?? ''} to share it`);
  }
}

/** Removes the endpoints dockerd left (it may not call DeleteEndpoint after a crash), then the network berth made for it. */
export async function dockerDeleteNetwork(ctx: EngineContext, dockerId: string): Promise<void> {
  const m = ctx.store.dockerNetwork(dockerId);
  if (!m) return;
  for (const c of ctx.store.containers()) {
    if (c.config.docker?.networkId === dockerId) await dockerDeleteEndpoint(ctx, dockerId, c.config.docker.endpointId);
  }
  const net = ctx.store.network(m.networkId);
  const others = ctx.store.dockerNetworksOf(m.networkId).filter((id) => id !== dockerId);
  if (net && !m.adopted && others.length === 0) networkEvent(ctx, 'destroy', await removeNetwork(ctx, net.id));
  ctx.store.deleteDockerNetwork(dockerId);
}

/** The events `berth network create` and `rm` emit (engine.ts), for the networks berth makes and removes for dockerd. */
function networkEvent(ctx: EngineContext, action: 'create' | 'destroy', net: NetworkRecord): void {
  ctx.events.emit('network', action, net.id, { name: net.name, type: net.driver });
}

export async function dockerCreateEndpoint(ctx: EngineContext, spec: DockerEndpointSpec): Promise<EndpointRecord> {
  const net = mappedNetwork(ctx, spec.dockerNetworkId);
  const name = recordName(spec.endpointId);
  const known = ctx.store.containerByName(name);
  const knownEndpoint = known && ctx.store.endpointsOfContainer(known.id)[0];
  if (knownEndpoint) return knownEndpoint;
  if (known) ctx.store.deleteContainer(known.id);
  const ip = addressOnly(spec.address);
  if (ip && net.subnet && Number(spec.address.split('/')[1]) !== parseCidr(net.subnet).prefix) {
    throw invalid(`address ${spec.address}: its prefix is not network ${net.name}'s (${net.subnet})`);
  }
  const container = insertRecord(ctx, name, net, spec);
  const staging = path.join(ctx.paths.netns, `docker-${spec.endpointId.slice(0, 12)}`);
  const ifname = handedName(spec.endpointId);
  try {
    const before = netState(ctx, container.id);
    await ctx.kernel.call('createSandbox', { path: staging });
    const endpoint = await joinNetwork(ctx, container, net, { ip, mac: spec.mac || undefined, aliases: [], ifname }, staging);
    try {
      await ctx.kernel.call('handOver', { stagingPath: staging, ifname, hostNetns: ctx.hostNetns, name: ifname });
      await ctx.hooks.containerChanged(container.id, before, netState(ctx, container.id));
    } catch (err) {
      const during = netState(ctx, container.id);
      leaveNetwork(ctx, endpoint, null)();
      await ctx.kernel.call('deleteLink', ifname).catch(() => false);
      await ctx.hooks.containerChanged(container.id, during, netState(ctx, container.id)).catch((e) => ctx.log.warn('docker endpoint rollback: could not update the firewall and DNS', { error: String(e) }));
      throw err;
    }
    return endpoint;
  } catch (err) {
    ctx.store.deleteContainer(container.id);
    throw err;
  } finally {
    await ctx.kernel.call('deleteSandbox', { path: staging }).catch((err) => ctx.log.warn('could not drop a staging namespace', { path: staging, error: String(err) }));
  }
}

function insertRecord(ctx: EngineContext, name: string, net: NetworkRecord, spec: DockerEndpointSpec): ContainerRecord {
  const config: ContainerConfig = {
    cmd: ['(docker)'],
    hostname: name,
    networkMode: net.name,
    dns: [],
    addHosts: [],
    ports: [],
    networks: [],
    autoRemove: false,
    docker: { networkId: spec.dockerNetworkId, endpointId: spec.endpointId },
  };
  const record: ContainerRecord = { id: newId(), name, created: new Date().toISOString(), config, state: 'running', pid: null, pidStart: null, exitCode: null, netnsPath: null, sharesWith: null };
  ctx.store.insertContainer(record);
  return record;
}

function endpointOf(ctx: EngineContext, endpointId: string): { container: ContainerRecord; endpoint: EndpointRecord } | undefined {
  const container = ctx.store.containerByName(recordName(endpointId));
  const endpoint = container && ctx.store.endpointsOfContainer(container.id)[0];
  return container && endpoint ? { container, endpoint } : undefined;
}

/** What Join answers: the interface dockerd moves in, and the gateway it routes through. */
export function dockerJoinInfo(ctx: EngineContext, dockerNetworkId: string, endpointId: string): { srcName: string; gateway?: string; gateway6?: string } {
  const net = mappedNetwork(ctx, dockerNetworkId);
  if (!endpointOf(ctx, endpointId)) throw notFound(`endpoint ${endpointId.slice(0, 12)} is not on network ${net.name}: dockerd must create it first (CreateEndpoint)`);
  const way = !net.internal;
  return { srcName: handedName(endpointId), ...(way && net.gateway && { gateway: net.gateway }), ...(way && net.gateway6 && { gateway6: net.gateway6 }) };
}

/** Idempotent: an endpoint berth no longer has is gone already. */
export async function dockerDeleteEndpoint(ctx: EngineContext, _dockerNetworkId: string, endpointId: string): Promise<void> {
  const container = ctx.store.containerByName(recordName(endpointId));
  if (!container) return;
  const before = netState(ctx, container.id);
  const endpoint = ctx.store.endpointsOfContainer(container.id)[0];
  let deleteLink = () => undefined as void;
  if (endpoint) {
    ctx.store.transaction(() => bindingsTo(ctx.store.portsOfContainer(container.id), endpoint).forEach((p) => ctx.store.deletePort(p)));
    deleteLink = leaveNetwork(ctx, endpoint, null);
  }
  await ctx.hooks.containerChanged(container.id, before, netState(ctx, container.id));
  ctx.store.deleteContainer(container.id);
  deleteLink();
  // dockerd moved the interface back under its handed name when the container left; a driver
  // whose endpoint has no host end (macvlan) leaves it to us.
  await ctx.kernel.call('deleteLink', handedName(endpointId)).catch(() => false);
}

/**
 * Gives a Docker endpoint the names Docker's DNS answers for its container (learnt from dockerd's
 * API after Join), as the endpoint's aliases: berth's resolver answers them, and on a cluster
 * network they go to the other hosts with the endpoint's announcement. False if the endpoint is gone.
 */
export async function dockerSetNames(ctx: EngineContext, endpointId: string, names: string[]): Promise<boolean> {
  const found = endpointOf(ctx, endpointId);
  if (!found) return false;
  const { container, endpoint } = found;
  if (names.length === endpoint.aliases.length && names.every((n, i) => endpoint.aliases[i] === n)) return true;
  ctx.store.setEndpointAliases(endpoint.id, names);
  const state = netState(ctx, container.id);
  await ctx.hooks.containerChanged(container.id, state, state);
  const net = ctx.store.network(endpoint.networkId);
  if (ctx.cluster && net && isClusterScoped(net) && endpoint.state === 'active') {
    // The same key again: peers' watches see a put and re-read the endpoint's names.
    await announceEndpoint(ctx.cluster, announcementOf(ctx.cluster, container, { ...endpoint, aliases: names }));
  }
  return true;
}

/** Docker endpoints that have no names yet (dockerd was unreachable when they joined). */
export function dockerEndpointsWithoutNames(ctx: EngineContext): { dockerNetworkId: string; endpointId: string }[] {
  return ctx.store
    .containers()
    .filter((c) => c.config.docker && ctx.store.endpointsOfContainer(c.id)[0]?.aliases.length === 0)
    .map((c) => ({ dockerNetworkId: c.config.docker!.networkId, endpointId: c.config.docker!.endpointId }));
}

/** ProgramExternalConnectivity: dockerd's `-p` mappings become berth's published ports (DNAT). */
export async function dockerPublish(ctx: EngineContext, endpointId: string, mappings: DockerPortMapping[]): Promise<void> {
  const found = endpointOf(ctx, endpointId);
  if (!found) throw notFound(`endpoint ${endpointId.slice(0, 12)} is unknown to berth: dockerd must create it first (CreateEndpoint)`);
  const { container, endpoint } = found;
  const before = netState(ctx, container.id);
  if (before.ports.length > 0) return; // programmed already (dockerd repeats it after a restart)
  if (mappings.length === 0) return;
  checkPublishable(ctx, endpoint);
  const requests = mappings.map((m) => ({
    protocol: m.protocol,
    hostIp: m.hostIp || '0.0.0.0',
    hostPort: m.hostPortEnd > m.hostPort ? 0 : m.hostPort,
    containerPort: m.containerPort,
    ...(m.hostPortEnd > m.hostPort && { hostPortRange: [m.hostPort, m.hostPortEnd] as [number, number] }),
  }));
  const ports = await resolveBindings(ctx, container.id, requests, endpoint);
  ctx.store.transaction(() => ports.forEach((p) => ctx.store.insertPort(p)));
  try {
    await ctx.hooks.containerChanged(container.id, before, netState(ctx, container.id));
  } catch (err) {
    const during = netState(ctx, container.id);
    ctx.store.transaction(() => ports.forEach((p) => ctx.store.deletePort(p)));
    await ctx.hooks.containerChanged(container.id, during, netState(ctx, container.id)).catch(() => undefined);
    throw err;
  }
}

export async function dockerUnpublish(ctx: EngineContext, endpointId: string): Promise<void> {
  const found = endpointOf(ctx, endpointId);
  if (!found) return;
  const before = netState(ctx, found.container.id);
  if (before.ports.length === 0) return;
  ctx.store.deletePortsOfContainer(found.container.id);
  await ctx.hooks.containerChanged(found.container.id, before, netState(ctx, found.container.id));
}
