/**
 * Published ports: turning `-p` requests into concrete bindings. A binding is refused when it
 * clashes with one berth already publishes (the rule of firewall/port-clash.ts, the same one the
 * full ruleset build applies; the error names the container holding it) or when a host process
 * has the port bound. The port is then held (engine/port-holds.ts), so the busy check and the
 * reservation are one step. Ephemeral ports come from Linux's default ephemeral range, lowest
 * free first.
 */
import { conflict, invalid } from '../errors.js';
import { BindingIndex, type HostBinding } from '../firewall/port-clash.js';
import { ANY_HOST_IP } from '../firewall/model.js';
import { driverOf } from '../drivers/registry.js';
import type { ContainerConfig, EndpointRecord, PortRecord } from '../store/store.js';
import type { EngineContext } from './context.js';
import { portHolds } from './port-holds.js';

const EPHEMERAL_FIRST = 32768;
const EPHEMERAL_LAST = 60999;

type Requested = ContainerConfig['ports'][number];

function holderMessage(ctx: EngineContext, held: PortRecord, what: string): string {
  const name = ctx.store.container(held.containerId)?.name ?? held.containerId;
  return `Bind for ${what} failed: port is already allocated to container ${name}: choose another host port or remove ${name}`;
}

/** The stored binding that clashes with `b`: same address, or either one on the wildcard address. */
export function storedClash(ctx: EngineContext, b: HostBinding): PortRecord | undefined {
  return b.hostIp === ANY_HOST_IP
    ? ctx.store.portHolderAnyIp(b.protocol, b.hostPort)
    : (ctx.store.portHolder(b.protocol, b.hostIp, b.hostPort) ?? ctx.store.portHolder(b.protocol, ANY_HOST_IP, b.hostPort));
}

/** Host addresses a binding may use: 0.0.0.0, loopback, or an address of the host namespace. */
async function hostAddresses(ctx: EngineContext): Promise<Set<string>> {
  return new Set((await ctx.kernel.call('addresses', {})).map((a) => a.address));
}

/**
 * Published ports DNAT to the endpoint's address through berth's firewall: a network whose traffic
 * bypasses the host (macvlan without the host shim) cannot publish them.
 */
export function checkPublishable(ctx: EngineContext, endpoint: EndpointRecord): void {
  const net = ctx.store.network(endpoint.networkId);
  if (net && !driverOf(net)?.firewall(net)) {
    throw invalid(`network ${net.name} (${net.driver}) does not publish ports: its containers are reached at their own addresses (${endpoint.ip}); drop -p, or create the network with -o berth.host_access=true`);
  }
}

export async function resolveBindings(
  ctx: EngineContext,
  containerId: string,
  requested: Requested[],
  containerIp: string,
): Promise<PortRecord[]> {
  if (requested.length === 0) return [];
  const holds = portHolds(ctx);
  // Only a binding to a specific host address needs the host's address list (a netlink dump).
  const needsAddresses = requested.some((r) => r.hostIp !== ANY_HOST_IP && !r.hostIp.startsWith('127.'));
  const addresses = needsAddresses ? await hostAddresses(ctx) : new Set<string>();
  const out: PortRecord[] = [];
  const claimed = new BindingIndex<HostBinding>();
  try {
    for (const req of requested) {
      if (req.hostIp !== ANY_HOST_IP && !req.hostIp.startsWith('127.') && !addresses.has(req.hostIp)) {
        throw invalid(`host IP ${req.hostIp} in -p ${req.hostIp}:${req.hostPort || ''}:${req.containerPort} is not an address of this host: use 0.0.0.0, 127.0.0.1 or one of: ${[...addresses].join(', ')}`);
      }
      const binding = req.hostPort === 0 ? await ephemeral(ctx, req, claimed) : await fixed(ctx, req, claimed);
      claimed.add(binding);
      out.push({ containerId, protocol: req.protocol, hostIp: req.hostIp, hostPort: binding.hostPort, containerPort: req.containerPort, containerIp });
    }
  } catch (err) {
    await holds.release(out);
    throw err;
  }
  return out;
}

/**
 * The lowest port of the range that clashes with nothing and that the host lets us hold. The
 * range's stored bindings are read in one query, so the search costs the same at 1 or 10,000
 * published ports.
 */
async function ephemeral(ctx: EngineContext, req: Requested, claimed: BindingIndex<HostBinding>): Promise<HostBinding> {
  const [first, last] = req.hostPortRange ?? [EPHEMERAL_FIRST, EPHEMERAL_LAST];
  const stored = new BindingIndex<HostBinding>();
  for (const p of ctx.store.portsInRange(req.protocol, first, last)) stored.add({ protocol: req.protocol, ...p });
  for (let port = first; port <= last; port++) {
    const b: HostBinding = { protocol: req.protocol, hostIp: req.hostIp, hostPort: port };
    if (claimed.clashWith(b) || stored.clashWith(b)) continue;
    if (await portHolds(ctx).acquire(b)) return b;
  }
  throw conflict(`no free host port in ${first}-${last} for ${req.containerPort}/${req.protocol}`);
}

async function fixed(ctx: EngineContext, req: Requested, claimed: BindingIndex<HostBinding>): Promise<HostBinding> {
  const b: HostBinding = { protocol: req.protocol, hostIp: req.hostIp, hostPort: req.hostPort };
  const what = `${req.hostIp}:${req.hostPort}`;
  const held = storedClash(ctx, b);
  if (held) throw conflict(holderMessage(ctx, held, what));
  if (claimed.clashWith(b)) throw conflict(`host port ${what}/${req.protocol} is published twice in this command`);
  if (!(await portHolds(ctx).acquire(b))) {
    throw conflict(`cannot publish ${what}/${req.protocol}: a host process is already listening there (bind: address already in use)`);
  }
  return b;
}
