/** Network operations: create, remove, prune, and the predefined `bridge`, `host` and `none`. */
import {
  BRIDGE_PREFIX,
  DEFAULT_BRIDGE,
  DEFAULT_MTU,
  DEFAULT_NETWORK,
  MAX_IFNAME,
  NAME_PATTERN,
  OPT_BRIDGE_NAME,
  OPT_DEFAULT_BRIDGE,
  OPT_HOST_BINDING,
  OPT_ICC,
  OPT_MASQUERADE,
  OPT_MTU,
  aliasPrefix,
} from '../constants.js';
import { BerthError, conflict, forbidden, invalid } from '../errors.js';
import { broadcastOf, cidrFromAddress, cidrsOverlap, firstHost, formatIpv4, parseCidr, parseIpv4, type Cidr } from '../ipam/ipv4.js';
import { DEFAULT_BRIDGE_SUBNET, pickDefaultSubnet } from '../ipam/default-pools.js';
import { validatePoolSpec } from '../ipam/allocator.js';
import type { HostView } from '../kernel/ops.js';
import { foreignBridgeMessage } from '../kernel/own-bridge.js';
import type { NetworkRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { newId } from './ids.js';
import { getNetwork } from './lookup.js';

export interface CreateNetworkRequest {
  name: string;
  driver?: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  internal?: boolean;
  labels?: Record<string, string>;
  options?: Record<string, string>;
}

const BOOL_OPTIONS = [OPT_ICC, OPT_MASQUERADE];

export function networkMtu(net: NetworkRecord): number {
  return Number(net.options[OPT_MTU] ?? DEFAULT_MTU);
}

export function isBridgeNetwork(net: NetworkRecord): boolean {
  return net.driver === 'bridge' && net.bridge !== null && net.subnet !== null;
}

function validateName(name: string): void {
  if (!name) throw invalid('a network name is required');
  if (!NAME_PATTERN.test(name)) {
    throw invalid(`invalid network name "${name}": use letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
}

function validateOptions(ctx: EngineContext, options: Record<string, string>): void {
  for (const key of BOOL_OPTIONS) {
    const v = options[key];
    if (v !== undefined && v !== 'true' && v !== 'false') throw invalid(`option ${key} must be true or false, not "${v}"`);
  }
  const mtu = options[OPT_MTU];
  if (mtu !== undefined && !(/^\d+$/.test(mtu) && Number(mtu) >= 68 && Number(mtu) <= 65535)) {
    throw invalid(`option ${OPT_MTU} must be a number from 68 to 65535, not "${mtu}"`);
  }
  const bridge = options[OPT_BRIDGE_NAME];
  if (bridge !== undefined) {
    if (bridge.length === 0 || bridge.length > MAX_IFNAME || !/^[a-zA-Z0-9_.-]+$/.test(bridge)) {
      throw invalid(
        `bridge name "${bridge}" is not a valid interface name: at most ${MAX_IFNAME} characters of letters, digits, '_', '.' and '-'`,
      );
    }
    const holder = ctx.store.networks().find((n) => n.bridge === bridge);
    if (holder) throw conflict(`bridge name ${bridge} is already used by network ${holder.name}`);
  }
}

/** A bridge name asked for with -o must not name a link of the host: berth never takes one over. */
function checkBridgeNameFree(view: HostView, bridge: string | undefined): void {
  const link = bridge === undefined ? undefined : view.links.find((l) => l.name === bridge);
  if (!link) return;
  if (link.kind !== 'bridge') throw conflict(`link ${bridge} exists on the host and is not a bridge (kind ${link.kind ?? 'unknown'}): choose another name with -o ${OPT_BRIDGE_NAME}=NAME`);
  throw conflict(foreignBridgeMessage(link.name));
}

/** Subnets already spoken for: other networks' and every address or route of the host. */
function takenSubnets(ctx: EngineContext, view: HostView): { cidr: Cidr; owner: string }[] {
  const taken = ctx.store
    .networks()
    .filter((n) => n.subnet)
    .map((n) => ({ cidr: parseCidr(n.subnet!), owner: `network ${n.name}` }));
  const ownBridges = new Set(ctx.store.networks().map((n) => n.bridge));
  const ownIndexes = new Set(view.links.filter((l) => ownBridges.has(l.name)).map((l) => l.index));
  for (const a of view.addresses) {
    if (ownIndexes.has(a.index) || a.address.startsWith('127.')) continue;
    taken.push({ cidr: cidrFromAddress(parseIpv4(a.address), a.prefix), owner: `host address ${a.address}/${a.prefix}` });
  }
  for (const r of view.routes) {
    if (r.prefix === 0 || (r.oif !== undefined && ownIndexes.has(r.oif))) continue;
    taken.push({ cidr: cidrFromAddress(parseIpv4(r.dst), r.prefix), owner: `host route ${r.dst}/${r.prefix}` });
  }
  return taken;
}

export async function createNetwork(ctx: EngineContext, req: CreateNetworkRequest): Promise<NetworkRecord> {
  validateName(req.name);
  const driver = req.driver || 'bridge';
  if (driver !== 'bridge') {
    if (['host', 'null', 'none'].includes(driver)) throw forbidden(`only one instance of "${driver}" network is allowed`);
    throw new BerthError('not-found', `plugin "${driver}" not found: berth supports the bridge driver for user-defined networks`);
  }
  const existing = ctx.store.networkByName(req.name);
  if (existing) throw conflict(`network with name ${req.name} already exists`);
  const options = { ...(req.options ?? {}) };
  validateOptions(ctx, options);
  if (!req.subnet && (req.gateway || req.ipRange)) {
    throw invalid('--gateway and --ip-range need --subnet: pass the subnet they belong to');
  }

  const view = await ctx.kernel.call('inspect', {});
  checkBridgeNameFree(view, options[OPT_BRIDGE_NAME]);
  const taken = takenSubnets(ctx, view);
  let subnet: Cidr;
  if (req.subnet) {
    subnet = parseCidr(req.subnet);
    const clash = taken.find((t) => t.owner.startsWith('network') && cidrsOverlap(t.cidr, subnet));
    if (clash) throw forbidden(`Pool overlaps with other one on this address space: ${subnet.text} overlaps ${clash.owner} (${clash.cidr.text})`);
  } else {
    subnet = pickDefaultSubnet(taken.map((t) => t.cidr));
  }
  const pool = validatePoolSpec(
    subnet,
    req.gateway ? parseIpv4(req.gateway, 'gateway') : undefined,
    req.ipRange ? parseCidr(req.ipRange, 'ip-range') : undefined,
  );

  const id = newId();
  const record: NetworkRecord = {
    id,
    name: req.name,
    driver,
    bridge: options[OPT_BRIDGE_NAME] ?? `${BRIDGE_PREFIX}${id.slice(0, MAX_IFNAME - BRIDGE_PREFIX.length)}`,
    subnet: subnet.text,
    gateway: formatIpv4(pool.gateway),
    ipRange: pool.ipRange?.text ?? null,
    internal: req.internal ?? false,
    userSubnet: Boolean(req.subnet),
    options,
    labels: req.labels ?? {},
    created: new Date().toISOString(),
    predefined: false,
  };
  try {
    ctx.store.insertNetwork(record);
  } catch (err) {
    if (String(err).includes('UNIQUE')) throw conflict(`network with name ${req.name} already exists`);
    throw err;
  }
  try {
    await ensureBridgeFor(ctx, record);
    await ctx.hooks.networkAdded(record.id);
  } catch (err) {
    // networkAdded may have done part of its work (firewall elements, a DNS listener): undo it.
    await ctx.hooks.networkRemoved(record.id).catch((undoErr) => ctx.log.warn('could not undo a network’s firewall and DNS', { network: req.name, error: String(undoErr) }));
    await ctx.kernel.call('deleteBridge', bridgeMark(ctx, record)).catch(() => undefined);
    ctx.store.deleteNetwork(record.id);
    throw err instanceof BerthError ? err : new BerthError('internal', `could not create network ${req.name}: ${(err as Error).message}`, { cause: err });
  }
  return record;
}

/** A network's bridge and the mark that says berth made it. */
export function bridgeMark(ctx: EngineContext, net: NetworkRecord): { name: string; alias: string } {
  return { name: net.bridge!, alias: `${aliasPrefix(ctx.paths.owner, 'network')}${net.id}` };
}

export async function ensureBridgeFor(ctx: EngineContext, net: NetworkRecord): Promise<boolean> {
  const subnet = parseCidr(net.subnet!);
  const { created } = await ctx.kernel.call('ensureBridge', {
    ...bridgeMark(ctx, net),
    gateway: net.gateway!,
    prefix: subnet.prefix,
    broadcast: formatIpv4(broadcastOf(subnet)),
    mtu: networkMtu(net),
  });
  return created;
}

export async function removeNetwork(ctx: EngineContext, ref: string): Promise<NetworkRecord> {
  const net = getNetwork(ctx.store, ref);
  if (net.predefined) throw forbidden(`${net.name} is a pre-defined network and cannot be removed`);
  const endpoints = ctx.store.endpointsOfNetwork(net.id);
  if (endpoints.length > 0) {
    const names = endpoints.map((e) => ctx.store.container(e.containerId)?.name ?? e.containerId);
    throw forbidden(
      `error while removing network: network ${net.name} id ${net.id} has active endpoints (containers: ${names.join(', ')}): disconnect or remove them first`,
    );
  }
  await ctx.hooks.networkRemoved(net.id);
  if (net.bridge && (await ctx.kernel.call('deleteBridge', bridgeMark(ctx, net))) === 'foreign') {
    ctx.log.warn('left a bridge berth did not create', { network: net.name, bridge: net.bridge });
  }
  ctx.store.deleteNetwork(net.id);
  return net;
}

/** Removes every user-defined network without endpoints; returns their names. */
export async function pruneNetworks(ctx: EngineContext, keep: (n: NetworkRecord) => boolean = () => false): Promise<string[]> {
  const removed: string[] = [];
  for (const net of ctx.store.networks()) {
    if (net.predefined || keep(net) || ctx.store.endpointsOfNetwork(net.id).length > 0) continue;
    await removeNetwork(ctx, net.id);
    removed.push(net.name);
  }
  return removed;
}

/**
 * The default `bridge` network's subnet: 172.17.0.0/16, as Docker's, unless it overlaps a host
 * address or route of a link berth does not own (docker0 on a host that runs Docker, a LAN): then
 * the first free default pool, by the same rule as user networks.
 */
export function defaultBridgeSubnet(taken: readonly Cidr[]): Cidr {
  const clear = (c: Cidr) => !taken.some((t) => t.prefix > 0 && cidrsOverlap(c, t));
  return clear(DEFAULT_BRIDGE_SUBNET) ? DEFAULT_BRIDGE_SUBNET : pickDefaultSubnet(taken);
}

/** The default `bridge` network (berth0) plus `host` and `none`, made on first start; the subnet is chosen once. */
export async function ensurePredefinedNetworks(ctx: EngineContext): Promise<void> {
  const base = { internal: false, userSubnet: false, labels: {}, created: new Date().toISOString(), predefined: true, ipRange: null };
  if (!ctx.store.networkByName(DEFAULT_NETWORK)) {
    const taken = takenSubnets(ctx, await ctx.kernel.call('inspect', {})).map((t) => t.cidr);
    const subnet = defaultBridgeSubnet(taken);
    ctx.store.insertNetwork({
      ...base,
      id: newId(),
      name: DEFAULT_NETWORK,
      driver: 'bridge',
      bridge: DEFAULT_BRIDGE,
      subnet: subnet.text,
      gateway: formatIpv4(firstHost(subnet)),
      options: {
        [OPT_DEFAULT_BRIDGE]: 'true',
        [OPT_ICC]: 'true',
        [OPT_MASQUERADE]: 'true',
        [OPT_HOST_BINDING]: '0.0.0.0',
        [OPT_BRIDGE_NAME]: DEFAULT_BRIDGE,
        [OPT_MTU]: String(DEFAULT_MTU),
      },
    });
  }
  for (const [name, driver] of [['host', 'host'], ['none', 'null']] as const) {
    if (!ctx.store.networkByName(name)) {
      ctx.store.insertNetwork({ ...base, id: newId(), name, driver, bridge: null, subnet: null, gateway: null, options: {} });
    }
  }
}

export function isDefaultBridge(net: NetworkRecord): boolean {
  return net.name === DEFAULT_NETWORK && net.predefined;
}
