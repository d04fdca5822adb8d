/**
 * The macvlan driver (Docker's options and behaviour): each container's interface is a macvlan
 * child of a parent link, with its own MAC and an address of the LAN's subnet, so LAN peers reach
 * it directly, with no NAT and no published ports. The host's own traffic never reaches its
 * macvlan children (the kernel does not pass frames between a parent and its children); with
 * `-o berth.host_access=true` berth gives the host a shim child of its own and a route per
 * container through it, so the host, its published ports and its resolver reach them.
 */
import { MAX_IFNAME, aliasPrefix } from '../../constants.js';
import { conflict, invalid, notFound } from '../../errors.js';
import { broadcastOf, cidrContains, formatIpv4, lastHost, parseCidr, parseIpv4 } from '../../ipam/ipv4.js';
import { MACVLAN_MODES, type MacvlanMode } from '../../kernel/netlink/sublinks.js';
import type { HostView } from '../../kernel/ops.js';
import type { EngineContext } from '../../engine/context.js';
import type { NetworkLink, NetworkRecord } from '../../store/store.js';
import type { NetworkDraft, NetworkDriver, NetworkPlan } from '../driver.js';
import { checkBoolOption, linkOf, networkMtu } from '../options.js';

export const OPT_PARENT = 'parent';
export const OPT_MACVLAN_MODE = 'macvlan_mode';
/** berth's own: the host reaches its macvlan containers through a shim (off by default, as in Docker). */
export const OPT_HOST_ACCESS = 'berth.host_access';
/** The auxiliary address the host's shim takes. */
const SHIM_AUX = 'berth-host';

const VLAN_PARENT = /^(.+)\.(\d+)$/;
const IFNAME = /^[a-zA-Z0-9_.-]+$/;

const shortId = (id: string) => id.slice(0, 9);
const networkMark = (ctx: EngineContext, net: { id: string }) => `${aliasPrefix(ctx.paths.owner, 'network')}${net.id}`;

function modeOf(net: NetworkRecord): MacvlanMode {
  return (net.options[OPT_MACVLAN_MODE] ?? 'bridge') as MacvlanMode;
}

function hostAccess(net: NetworkRecord): { shim: string; address: string } | undefined {
  const shim = linkOf(net, 'shim');
  const address = net.auxAddresses[SHIM_AUX];
  return shim && address ? { shim, address } : undefined;
}

function parentOf(net: NetworkRecord): string {
  const parent = linkOf(net, 'parent');
  if (!parent) throw new Error(`macvlan network ${net.name} has no parent on record`);
  return parent;
}

/** The highest address of the subnet that is neither the gateway nor reserved: the host shim's. */
function shimAddress(draft: NetworkDraft, aux: Record<string, string>): string {
  const subnet = parseCidr(draft.subnet);
  const taken = new Set([draft.gateway, ...Object.values(aux)]);
  for (let ip = lastHost(subnet); ip > subnet.network; ip--) if (!taken.has(formatIpv4(ip))) return formatIpv4(ip);
  throw invalid(`subnet ${draft.subnet} has no address left for the host shim (-o ${OPT_HOST_ACCESS}=true)`);
}

/** The parent's links: the host's own (not owned), or one berth makes (a VLAN sub-interface, a pair). */
function parentLinks(ctx: EngineContext, draft: NetworkDraft, view: HostView): NetworkLink[] {
  const asked = draft.options[OPT_PARENT];
  if (draft.internal) {
    if (asked !== undefined) throw invalid(`an --internal macvlan network gets a parent of its own (its containers reach only each other): drop -o ${OPT_PARENT}=${asked}`);
    return [
      { role: 'parent', name: `bmv${shortId(draft.id)}`, owned: true },
      { role: 'parent-peer', name: `bmp${shortId(draft.id)}`, owned: true },
    ];
  }
  if (asked === undefined || asked === '') {
    throw invalid(`a macvlan network needs a parent interface: -o ${OPT_PARENT}=IFACE (or IFACE.VLAN), or --internal for containers that only reach each other`);
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
function hostAddresses(draft: NetworkDraft, view: HostView): Record<string, string> {
  const subnet = parseCidr(draft.subnet);
  const out: Record<string, string> = {};
  for (const a of view.addresses) {
    if (!cidrContains(subnet, parseIpv4(a.address)) || a.address === draft.gateway || Object.values(draft.auxAddresses).includes(a.address)) continue;
    out[`berth-host-${a.address}`] = a.address;
  }
  return out;
}

/** passthru gives the whole parent to one network (and one container); nothing else may share it. */
function checkParentFree(ctx: EngineContext, parent: string, mode: MacvlanMode): void {
  for (const other of ctx.store.networks()) {
    if (other.driver !== 'macvlan' || linkOf(other, 'parent') !== parent) continue;
    if (modeOf(other) === 'passthru') throw conflict(`parent ${parent} is already used by macvlan network ${other.name} in passthru mode, which takes the whole interface`);
    if (mode === 'passthru') throw conflict(`passthru mode takes the whole interface, and parent ${parent} is already used by macvlan network ${other.name}`);
  }
}

function vlanOf(net: NetworkRecord): { base: string; id: number } | undefined {
  const parent = net.links.find((l) => l.role === 'parent');
  const m = parent?.owned ? VLAN_PARENT.exec(parent.name) : null;
  return m ? { base: m[1]!, id: Number(m[2]) } : undefined;
}

export const macvlanDriver: NetworkDriver = {
  name: 'macvlan',
  options: [OPT_PARENT, OPT_MACVLAN_MODE, OPT_HOST_ACCESS],
  strictOptions: true,

  plan(ctx, draft, view): NetworkPlan {
    const mode = draft.options[OPT_MACVLAN_MODE] ?? 'bridge';
    if (!Object.hasOwn(MACVLAN_MODES, mode)) throw invalid(`invalid macvlan mode "${mode}": use ${Object.keys(MACVLAN_MODES).join(', ')}`);
    checkBoolOption(draft.options, OPT_HOST_ACCESS);
    const access = draft.options[OPT_HOST_ACCESS] === 'true';
    if (access && mode !== 'bridge') throw invalid(`-o ${OPT_HOST_ACCESS}=true needs macvlan_mode bridge: in ${mode} mode the host's shim cannot reach the containers`);
    if (access && draft.internal) throw invalid(`an --internal network keeps the host out: drop -o ${OPT_HOST_ACCESS}=true`);
    const links = parentLinks(ctx, draft, view);
    checkParentFree(ctx, links[0]!.name, mode as MacvlanMode);
    const auxAddresses = hostAddresses(draft, view);
    if (access) {
      links.push({ role: 'shim', name: `bms${shortId(draft.id)}`, owned: true });
      auxAddresses[SHIM_AUX] = shimAddress(draft, { ...draft.auxAddresses, ...auxAddresses });
    }
    return { options: { ...draft.options, [OPT_MACVLAN_MODE]: mode }, links, auxAddresses };
  },

  async ensure(ctx, net) {
    const mark = networkMark(ctx, net);
    const parent = parentOf(net);
    const peer = linkOf(net, 'parent-peer');
    const { created } = await ctx.kernel.call('ensureMacvlanParent', { parent, vlan: vlanOf(net), ownPair: peer ? { peer } : undefined, mark, mtu: networkMtu(net) });
    const access = hostAccess(net);
    if (!access) return created;
    const shim = await ctx.kernel.call('ensureMacvlanShim', { name: access.shim, parent, mark, address: access.address, mtu: networkMtu(net) });
    return created || shim.created;
  },

  async remove(ctx, net) {
    const mark = networkMark(ctx, net);
    // The shim first: it hangs off the parent.
    for (const link of [...net.links].filter((l) => l.owned && l.role !== 'parent-peer').sort((a) => (a.role === 'shim' ? -1 : 1))) {
      if ((await ctx.kernel.call('deleteOwnLink', { name: link.name, mark })) === 'foreign') ctx.log.warn('left a link berth did not create', { network: net.name, link: link.name });
    }
  },

  hostLinkOf() {
    return null;
  },

  async join(ctx, net, endpoint, spec) {
    const mode = modeOf(net);
    if (mode === 'passthru') {
      const other = ctx.store.endpointsOfNetwork(net.id).find((e) => e.id !== endpoint.id);
      if (other) throw conflict(`macvlan network ${net.name} is in passthru mode, which gives its parent to one container, and ${ctx.store.container(other.containerId)?.name ?? other.containerId} has it`);
    }
    const subnet = parseCidr(net.subnet!);
    const access = hostAccess(net);
    await ctx.kernel.call('attachMacvlan', {
      netnsPath: spec.netnsPath,
      parent: parentOf(net),
      mode,
      ifname: endpoint.ifname,
      alias: `${aliasPrefix(ctx.paths.owner, 'endpoint')}${endpoint.id}`,
      // In passthru mode the child is the parent, with the parent's address.
      mac: mode === 'passthru' ? undefined : endpoint.mac,
      ip: endpoint.ip,
      prefix: subnet.prefix,
      broadcast: formatIpv4(broadcastOf(subnet)),
      gateway: net.internal ? undefined : net.gateway!,
      defaultRoute: spec.defaultRoute,
      mtu: networkMtu(net),
      createSandbox: spec.createSandbox,
      shim: access ? { name: access.shim, address: access.address } : undefined,
    });
  },

  leave(ctx, net, endpoint, spec) {
    const access = net ? hostAccess(net) : undefined;
    const forgetRoute = () => {
      if (access) ctx.kernel.call('forgetShimRoute', { shim: access.shim, ip: endpoint.ip }).catch((err) => ctx.log.warn('could not delete a host route', { ip: endpoint.ip, error: String(err) }));
    };
    if (!spec) {
      forgetRoute();
      return () => undefined;
    }
    return () => {
      forgetRoute();
      ctx.kernel
        .call('detach', { netnsPath: spec.netnsPath, ifname: endpoint.ifname, nextDefaultRoute: spec.nextDefaultRoute })
        .catch((err) => ctx.log.warn('could not delete an interface', { ifname: endpoint.ifname, error: String(err) }));
    };
  },

  firewall(net) {
    // Container traffic leaves by the parent below the host's IP stack: berth's firewall sees only
    // what the host sends through its shim (published ports, the resolver's answers).
    const access = hostAccess(net);
    if (!access) return undefined;
    return { id: net.id, bridge: access.shim, subnet: net.subnet!, gateway: access.address, internal: net.internal, icc: true, masquerade: false };
  },

  dns(net) {
    const access = hostAccess(net);
    return access ? { address: access.address, ifname: access.shim } : undefined;
  },

  async repair(ctx, net, endpoints, _view, report) {
    // A child someone deleted inside a running container is made again, with its address and routes.
    for (const e of endpoints) {
      const c = ctx.store.container(e.containerId);
      if (!c?.netnsPath || c.state !== 'running') continue;
      if (await ctx.kernel.call('sandboxHasLink', { netnsPath: c.netnsPath, ifname: e.ifname })) continue;
      const first = ctx.store.endpointsOfContainer(c.id).sort((a, b) => a.ifname.localeCompare(b.ifname, 'en', { numeric: true }))[0];
      await macvlanDriver.join(ctx, net, e, { netnsPath: c.netnsPath, defaultRoute: first?.id === e.id });
      report.reattached.push(`${c.name}:${e.ifname}`);
    }
  },
};
