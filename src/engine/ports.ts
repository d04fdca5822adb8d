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
import { ANY_HOST_IP, ANY_HOST_IP6 } from '../firewall/model.js';
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
  const v6 = b.hostIp.includes(':');
  const wildcard = v6 ? ANY_HOST_IP6 : ANY_HOST_IP;
  if (b.hostIp === wildcard) return ctx.store.portsOnPort(b.protocol, b.hostPort).find((p) => p.hostIp.includes(':') === v6);
  return ctx.store.portHolder(b.protocol, b.hostIp, b.hostPort) ?? ctx.store.portHolder(b.protocol, wildcard, b.hostPort);
}

/** Host addresses a binding may use: the wildcards, loopback, or an address of the host namespace. */
async function hostAddresses(ctx: EngineContext, ipv6: boolean): Promise<Set<string>> {
  return new Set((await ctx.kernel.call('addresses', { ipv6 })).map((a) => a.address));
}

const isLoopbackOrAny = (ip: string) => ip === ANY_HOST_IP || ip === ANY_HOST_IP6 || ip === '::1' || ip.startsWith('127.');

/** Where a container's published ports lead: its first endpoint's addresses. */
export interface PortTarget {
  /** Null on an IPv6-only network. */
  ip: string | null;
  ip6?: string | null;
}

/** The bindings of a container whose endpoint is `e` (either of its addresses). */
export function bindingsTo(ports: PortRecord[], e: PortTarget): PortRecord[] {
  return ports.filter((p) => p.containerIp === e.ip || (e.ip6 && p.containerIp === e.ip6));
}

/**
 * Published ports DNAT to the endpoint's address through berth's firewall: a network whose traffic
 * bypasses the host (macvlan without the host shim) cannot publish them.
 */
export function checkPublishable(ctx: EngineContext, endpoint: EndpointRecord): void {
  const net = ctx.store.network(endpoint.networkId);
  if (net && !driverOf(net)?.firewall(net)) {
    throw invalid(`network ${net.name} (${net.driver}) does not publish ports: its containers are reached at their own addresses (${endpoint.ip ?? endpoint.ip6}); drop -p, or create the network with -o berth.host_access=true`);
  }
}

export async function resolveBindings(
  ctx: EngineContext,
  containerId: string,
  requested: Requested[],
  target: PortTarget,
): Promise<PortRecord[]> {
  if (requested.length === 0) return [];
  const holds = portHolds(ctx);
  for (const r of requested) {
    if (r.hostIp.includes(':') && !target.ip6) {
      throw invalid(`-p [${r.hostIp}]:${r.hostPort || ''}:${r.containerPort} publishes on IPv6, but the container's network has no IPv6: create the network with --ipv6, or publish on an IPv4 address`);
    }
    if (!r.hostIp.includes(':') && !target.ip && (r.hostIp !== ANY_HOST_IP || r.ipv4Only)) {
      throw invalid(`-p ${r.hostIp}:${r.hostPort || ''}:${r.containerPort} publishes on IPv4, but the container's network is IPv6-only: publish with no address (every IPv6 address) or on an IPv6 one, e.g. -p [::]:${r.hostPort || r.containerPort}:${r.containerPort}`);
    }
  }
  // On an IPv6-only network a port published with no address goes on every IPv6 address.
  if (!target.ip) requested = requested.map((r) => (r.hostIp === ANY_HOST_IP ? { ...r, hostIp: ANY_HOST_IP6 } : r));
  // Only a binding to a specific host address needs the host's address list (a netlink dump).
  const specific = requested.filter((r) => !isLoopbackOrAny(r.hostIp));
  const addresses = specific.some((r) => !r.hostIp.includes(':')) ? await hostAddresses(ctx, false) : new Set<string>();
  if (specific.some((r) => r.hostIp.includes(':'))) for (const a of await hostAddresses(ctx, true)) addresses.add(a);
  const out: PortRecord[] = [];
  const claimed = new BindingIndex<HostBinding>();
  try {
    for (const req of requested) {
      if (!isLoopbackOrAny(req.hostIp) && !addresses.has(req.hostIp)) {
        const shown = req.hostIp.includes(':') ? `[${req.hostIp}]` : req.hostIp;
        throw invalid(`host IP ${shown} in -p ${shown}:${req.hostPort || ''}:${req.containerPort} is not an address of this host: use 0.0.0.0, 127.0.0.1, [::], [::1] or one of: ${[...addresses].join(', ')}`);
      }
      // On a dual-stack network a port published with no address is published on every IPv6
      // address too, on the same host port (as Docker ≥ 27 does); an explicit 0.0.0.0 is IPv4 only.
      const twin = req.hostIp === ANY_HOST_IP && !req.ipv4Only && target.ip6 ? ANY_HOST_IP6 : undefined;
      const binding = req.hostPort === 0 ? ephemeral(ctx, req, claimed, twin) : fixed(ctx, req, claimed, twin);
      claimed.add(binding);
      const containerIp = req.hostIp.includes(':') ? target.ip6! : target.ip!;
      out.push({ containerId, protocol: req.protocol, hostIp: req.hostIp, hostPort: binding.hostPort, containerPort: req.containerPort, containerIp });
      if (twin) {
        claimed.add({ ...binding, hostIp: twin });
        out.push({ containerId, protocol: req.protocol, hostIp: twin, hostPort: binding.hostPort, containerPort: req.containerPort, containerIp: target.ip6! });
      }
    }
  } catch (err) {
    holds.release(out);
    throw err;
  }
  return out;
}

/**
 * The lowest port of the range that clashes with nothing and that the host lets us hold. The
 * range's stored bindings are read in one query, so the search costs the same at 1 or 10,000
 * published ports.
 */
function ephemeral(ctx: EngineContext, req: Requested, claimed: BindingIndex<HostBinding>, twin?: string): HostBinding {
  const [first, last] = req.hostPortRange ?? [EPHEMERAL_FIRST, EPHEMERAL_LAST];
  const stored = new BindingIndex<HostBinding>();
  for (const p of ctx.store.portsInRange(req.protocol, first, last)) stored.add({ protocol: req.protocol, ...p });
  const holds = portHolds(ctx);
  for (let port = first; port <= last; port++) {
    const b: HostBinding = { protocol: req.protocol, hostIp: req.hostIp, hostPort: port };
    const t: HostBinding | undefined = twin ? { ...b, hostIp: twin } : undefined;
    if (claimed.clashWith(b) || stored.clashWith(b) || (t && (claimed.clashWith(t) || stored.clashWith(t)))) continue;
    if (!holds.acquire(b)) continue;
    if (!t || holds.acquire(t)) return b;
    holds.release([b]);
  }
  throw conflict(`no free host port in ${first}-${last} for ${req.containerPort}/${req.protocol}`);
}

function fixed(ctx: EngineContext, req: Requested, claimed: BindingIndex<HostBinding>, twin?: string): HostBinding {
  const b: HostBinding = { protocol: req.protocol, hostIp: req.hostIp, hostPort: req.hostPort };
  const bindings = twin ? [b, { ...b, hostIp: twin }] : [b];
  for (const x of bindings) {
    const what = x.hostIp.includes(':') ? `[${x.hostIp}]:${x.hostPort}` : `${x.hostIp}:${x.hostPort}`;
    const held = storedClash(ctx, x);
    if (held) throw conflict(holderMessage(ctx, held, what));
    if (claimed.clashWith(x)) throw conflict(`host port ${what}/${req.protocol} is published twice in this command`);
  }
  const holds = portHolds(ctx);
  for (const [i, x] of bindings.entries()) {
    if (!holds.acquire(x)) {
      holds.release(bindings.slice(0, i));
      const what = x.hostIp.includes(':') ? `[${x.hostIp}]:${x.hostPort}` : `${x.hostIp}:${x.hostPort}`;
      throw conflict(`cannot publish ${what}/${req.protocol}: a host process is already listening there (bind: address already in use)`);
    }
  }
  return b;
}
