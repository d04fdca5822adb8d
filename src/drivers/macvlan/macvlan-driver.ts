/**
 * The macvlan driver (Docker's options and behaviour): each container's interface is a macvlan
 * child of a parent link, with its own MAC and an address of the LAN's subnet, so LAN peers reach
 * it directly, with no NAT and no published ports. The host's own traffic never reaches its
 * macvlan children (the kernel does not pass frames between a parent and its children); with
 * `-o berth.host_access=true` berth gives the host a shim child of its own and a route per
 * container through it, so the host, its published ports and its resolver reach them.
 */
import { aliasPrefix } from '../../constants.js';
import { conflict, invalid } from '../../errors.js';
import { broadcastOf, formatIpv4, lastHost, parseCidr } from '../../ipam/ipv4.js';
import { MACVLAN_MODES, type MacvlanMode } from '../../kernel/netlink/sublinks.js';
import type { EngineContext } from '../../engine/context.js';
import type { NetworkRecord } from '../../store/store.js';
import { SANDBOX_DNS_ADDRESS, type NetworkDraft, type NetworkDriver, type NetworkPlan } from '../driver.js';
import { checkBoolOption, linkOf, networkMtu } from '../options.js';
import { detachLater } from '../detach.js';
import { OPT_PARENT, ensureParent, hostAddresses, lanChild6, networkMark, parentLinks, parentOf, removeOwnLinks, restoreChildren, shortId } from '../lan-parent.js';

export const OPT_MACVLAN_MODE = 'macvlan_mode';
/** berth's own: the host reaches its macvlan containers through a shim (off by default, as in Docker). */
export const OPT_HOST_ACCESS = 'berth.host_access';
/** The auxiliary address the host's shim takes. */
const SHIM_AUX = 'berth-host';


function modeOf(net: NetworkRecord): MacvlanMode {
  return (net.options[OPT_MACVLAN_MODE] ?? 'bridge') as MacvlanMode;
}

function hostAccess(net: NetworkRecord): { shim: string; address: string } | undefined {
  const shim = linkOf(net, 'shim');
  const address = net.auxAddresses[SHIM_AUX];
  return shim && address ? { shim, address } : undefined;
}

/** The highest address of the subnet that is neither the gateway nor reserved: the host shim's. */
function shimAddress(draft: NetworkDraft, aux: Record<string, string>): string {
  const subnet = parseCidr(draft.subnet!);
  const taken = new Set([draft.gateway, ...Object.values(aux)]);
  for (let ip = lastHost(subnet); ip > subnet.network; ip--) if (!taken.has(formatIpv4(ip))) return formatIpv4(ip);
  throw invalid(`subnet ${draft.subnet} has no address left for the host shim (-o ${OPT_HOST_ACCESS}=true)`);
}

/** passthru gives the whole parent to one network (and one container); nothing else may share it. */
function checkParentFree(ctx: EngineContext, parent: string, mode: MacvlanMode): void {
  for (const other of ctx.store.networks()) {
    if (other.driver !== 'macvlan' || linkOf(other, 'parent') !== parent) continue;
    if (modeOf(other) === 'passthru') throw conflict(`parent ${parent} is already used by macvlan network ${other.name} in passthru mode, which takes the whole interface`);
    if (mode === 'passthru') throw conflict(`passthru mode takes the whole interface, and parent ${parent} is already used by macvlan network ${other.name}`);
  }
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
    if (access && draft.subnet6) throw invalid(`-o ${OPT_HOST_ACCESS}=true is IPv4-only for now: drop it, or --ipv6 (the host's shim has no IPv6 address yet)`);
    const links = parentLinks(ctx, draft, view, 'macvlan');
    checkParentFree(ctx, links[0]!.name, mode as MacvlanMode);
    const auxAddresses = hostAddresses(draft, view);
    if (access) {
      links.push({ role: 'shim', name: `bms${shortId(draft.id)}`, owned: true });
      auxAddresses[SHIM_AUX] = shimAddress(draft, { ...draft.auxAddresses, ...auxAddresses });
    }
    return { options: { ...draft.options, [OPT_MACVLAN_MODE]: mode }, links, auxAddresses };
  },

  async ensure(ctx, net) {
    const created = await ensureParent(ctx, net);
    const access = hostAccess(net);
    if (!access) return created;
    const shim = await ctx.kernel.call('ensureMacvlanShim', { name: access.shim, parent: parentOf(net), mark: networkMark(ctx, net), address: access.address, mtu: networkMtu(net) });
    return created || shim.created;
  },

  async remove(ctx, net) {
    // The shim first: it hangs off the parent.
    await removeOwnLinks(ctx, net, ['shim']);
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
    return ctx.kernel.call('attachLanChild', {
      netnsPath: spec.netnsPath,
      parent: parentOf(net),
      kind: { macvlan: mode },
      ifname: endpoint.ifname,
      alias: `${aliasPrefix(ctx.paths.owner, 'endpoint')}${endpoint.id}`,
      // In passthru mode the child is the parent, with the parent's address.
      mac: mode === 'passthru' ? undefined : endpoint.mac,
      ip: endpoint.ip!,
      prefix: subnet.prefix,
      broadcast: formatIpv4(broadcastOf(subnet)),
      gateway: net.internal ? undefined : net.gateway!,
      ...lanChild6(net, endpoint, !net.internal),
      defaultRoute: spec.defaultRoute,
      mtu: networkMtu(net),
      createSandbox: spec.createSandbox,
      shim: access ? { name: access.shim, address: access.address } : undefined,
    });
  },

  leave(ctx, net, endpoint, spec) {
    const access = net ? hostAccess(net) : undefined;
    const forgetRoute = () => {
      if (access) ctx.kernel.call('forgetShimRoute', { shim: access.shim, ip: endpoint.ip! }).catch((err) => ctx.log.warn('could not delete a host route', { ip: endpoint.ip, error: String(err) }));
    };
    if (!spec) {
      forgetRoute();
      return () => undefined;
    }
    const detach = detachLater(ctx, endpoint, spec);
    return () => {
      forgetRoute();
      detach();
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
    // Without the shim the containers cannot reach the host: the resolver answers inside each one.
    return access ? { in: 'host', address: access.address, ifname: access.shim } : { in: 'sandbox', address: SANDBOX_DNS_ADDRESS };
  },

  async repair(ctx, net, endpoints, _view, report) {
    await restoreChildren(ctx, macvlanDriver, net, endpoints, report);
  },
};
