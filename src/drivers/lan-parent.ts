/**
 * The parent link of drivers that put containers straight on a LAN (macvlan, ipvlan): the host's
 * own interface, an 802.1Q sub-interface berth makes (`-o parent=IFACE.VLAN`), or, for an
 * --internal network, a veth pair of berth's own whose children reach only each other.
 */
import { MAX_IFNAME, aliasPrefix } from '../constants.js';
import { conflict, invalid, notFound } from '../errors.js';
import { cidrContains, parseCidr, parseIpv4 } from '../ipam/ipv4.js';
import { cidr6Contains, parseCidr6, parseIpv6 } from '../ipam/ipv6.js';
import type { HostView } from '../kernel/ops.js';
import type { EngineContext } from '../engine/context.js';
import type { NetworkLink, NetworkRecord } from '../store/store.js';
import type { NetworkDraft, NetworkDriver, RepairReport } from './driver.js';
import type { EndpointRecord } from '../store/store.js';
import { linkOf, networkMtu } from './options.js';

export const OPT_PARENT = 'parent';

const VLAN_PARENT = /^(.+)\.(\d+)$/;
const IFNAME = /^[a-zA-Z0-9_.-]+$/;

export const shortId = (id: string) => id.slice(0, 9);
export const networkMark = (ctx: EngineContext, net: { id: string }) => `${aliasPrefix(ctx.paths.owner, 'network')}${net.id}`;

export function parentOf(net: NetworkRecord): string {
  const parent = linkOf(net, 'parent');
  if (!parent) throw new Error(`${net.driver} network ${net.name} has no parent on record`);
  return parent;
}

/** The parent's links: the host's own (not owned), or one berth makes (a VLAN sub-interface, a pair). */
export function parentLinks(ctx: EngineContext, draft: NetworkDraft, view: HostView, driver: string): NetworkLink[] {
  const asked = draft.options[OPT_PARENT];
  if (draft.internal) {
    if (asked !== undefined) throw invalid(`an --internal ${driver} network gets a parent of its own (its containers reach only each other): drop -o ${OPT_PARENT}=${asked}`);
    return [
      { role: 'parent', name: `bmv${shortId(draft.id)}`, owned: true },
      { role: 'parent-peer', name: `bmp${shortId(draft.id)}`, owned: true },
    ];
  }
  if (asked === undefined || asked === '') {
    throw invalid(`a ${driver} network needs a parent interface: -o ${OPT_PARENT}=IFACE (or IFACE.VLAN), or --internal for containers that only reach each other`);
  }
  if (asked.length > MAX_IFNAME || !IFNAME.test(asked)) {
    throw invalid(`parent "${asked}" is not a valid interface name: at most ${MAX_IFNAME} characters of letters, digits, '_', '.' and '-'`);
  }
  const owner = ctx.store.networkOwningLink(asked);
  if (owner) throw conflict(`parent ${asked} is a link of berth's network ${owner.name}: choose an interface of the host`);
  const link = view.links.find((l) => l.name === asked);
  if (link) {
    if (!link.up) throw invalid(`parent interface ${asked} is down: bring it up (ip link set ${asked} up) first`);
    return [{ role: 'parent', name: asked, owned: false }];
  }
  const vlan = VLAN_PARENT.exec(asked);
  if (vlan) {
    const [, base, idText] = vlan;
    const id = Number(idText);
    if (!Number.isInteger(id) || id < 1 || id > 4094) throw invalid(`VLAN id ${idText} of parent ${asked} is out of range: use 1 to 4094`);
    const baseLink = view.links.find((l) => l.name === base);
    if (!baseLink) throw notFound(`parent interface ${base} (of ${asked}) not found: name an existing link`);
    if (!baseLink.up) throw invalid(`parent interface ${base} is down: bring it up (ip link set ${base} up) first`);
    return [{ role: 'parent', name: asked, owned: true }];
  }
  throw notFound(`parent interface ${asked} not found: name an existing link with -o ${OPT_PARENT}=IFACE`);
}

/**
 * The host's own addresses in the subnet (on the parent or on another link of the same LAN) are
 * taken already: reserved, so no container is handed one (Docker would hand them out).
 */
export function hostAddresses(draft: NetworkDraft, view: HostView): Record<string, string> {
  const subnet = parseCidr(draft.subnet!);
  const out: Record<string, string> = {};
  for (const a of view.addresses) {
    if (!cidrContains(subnet, parseIpv4(a.address)) || a.address === draft.gateway || Object.values(draft.auxAddresses).includes(a.address)) continue;
    out[`berth-host-${a.address}`] = a.address;
  }
  if (draft.subnet6) {
    const subnet6 = parseCidr6(draft.subnet6);
    for (const a of view.addresses6 ?? []) {
      if (!cidr6Contains(subnet6, parseIpv6(a.address)) || a.address === draft.gateway6) continue;
      out[`berth-host-${a.address}`] = a.address;
    }
  }
  return out;
}

/** A LAN child's IPv6 side on a dual-stack network: its address, the LAN prefix's length, the router. */
export function lanChild6(net: NetworkRecord, endpoint: EndpointRecord, gateway: boolean): { ip6?: { ip: string; prefix: number; gateway?: string } } {
  if (!endpoint.ip6 || !net.subnet6) return {};
  return { ip6: { ip: endpoint.ip6, prefix: parseCidr6(net.subnet6).prefix, ...(gateway && net.gateway6 && { gateway: net.gateway6 }) } };
}

export function vlanOf(net: NetworkRecord): { base: string; id: number } | undefined {
  const parent = net.links.find((l) => l.role === 'parent');
  const m = parent?.owned ? VLAN_PARENT.exec(parent.name) : null;
  return m ? { base: m[1]!, id: Number(m[2]) } : undefined;
}


/** Makes sure the parent is there and up (and makes it if it is berth's); true if it made it. */
export async function ensureParent(ctx: EngineContext, net: NetworkRecord): Promise<boolean> {
  const peer = linkOf(net, 'parent-peer');
  const { created } = await ctx.kernel.call('ensureLanParent', { parent: parentOf(net), vlan: vlanOf(net), ownPair: peer ? { peer } : undefined, mark: networkMark(ctx, net), mtu: networkMtu(net) });
  return created;
}

/** Removes the links berth made for the network (the host's parent stays), `first` roles first. */
export async function removeOwnLinks(ctx: EngineContext, net: NetworkRecord, first: string[] = []): Promise<void> {
  const mark = networkMark(ctx, net);
  const owned = net.links.filter((l) => l.owned && l.role !== 'parent-peer').sort((a, b) => Number(first.includes(b.role)) - Number(first.includes(a.role)));
  for (const link of owned) {
    if ((await ctx.kernel.call('deleteOwnLink', { name: link.name, mark })) === 'foreign') ctx.log.warn('left a link berth did not create', { network: net.name, link: link.name });
  }
}

/** A child someone deleted inside a running container is made again, with its address and routes. */
export async function restoreChildren(ctx: EngineContext, driver: NetworkDriver, net: NetworkRecord, endpoints: EndpointRecord[], report: RepairReport): Promise<void> {
  for (const e of endpoints) {
    const c = ctx.store.container(e.containerId);
    if (!c?.netnsPath || c.state !== 'running') continue;
    if (await ctx.kernel.call('sandboxHasLink', { netnsPath: c.netnsPath, ifname: e.ifname })) continue;
    const first = ctx.store.endpointsOfContainer(c.id).sort((a, b) => a.ifname.localeCompare(b.ifname, 'en', { numeric: true }))[0];
    await driver.join(ctx, net, e, { netnsPath: c.netnsPath, defaultRoute: first?.id === e.id });
    report.reattached.push(`${c.name}:${e.ifname}`);
  }
}
