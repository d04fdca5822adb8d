/**
 * The ipvlan driver (Docker's options and behaviour): like macvlan, containers sit on the LAN at
 * their own addresses, but every child shares the parent's MAC. l2 mode switches by MAC like
 * macvlan (default route via the LAN's gateway); l3 and l3s route at the parent: the children do
 * no ARP and their default route goes straight out of the device, with no gateway. A kernel
 * without ipvlan gets a refusal at `network create` that names the missing feature.
 */
import { aliasPrefix } from '../../constants.js';
import { invalid } from '../../errors.js';
import { broadcastOf, formatIpv4, parseCidr } from '../../ipam/ipv4.js';
import { IPVLAN_FLAGS, IPVLAN_MODES, type IpvlanFlag, type IpvlanMode } from '../../kernel/netlink/sublinks.js';
import type { NetworkRecord } from '../../store/store.js';
import { SANDBOX_DNS_ADDRESS, type NetworkDriver } from '../driver.js';
import { OPT_PARENT, ensureParent, hostAddresses, parentLinks, parentOf, removeOwnLinks, restoreChildren, shortId, lanChild6 } from '../lan-parent.js';
import { networkMtu } from '../options.js';
import { detachLater } from '../detach.js';

export const OPT_IPVLAN_MODE = 'ipvlan_mode';
export const OPT_IPVLAN_FLAG = 'ipvlan_flag';

const modeOf = (net: NetworkRecord) => (net.options[OPT_IPVLAN_MODE] ?? 'l2') as IpvlanMode;
const flagOf = (net: NetworkRecord) => (net.options[OPT_IPVLAN_FLAG] ?? 'bridge') as IpvlanFlag;

export const ipvlanDriver: NetworkDriver = {
  name: 'ipvlan',
  options: [OPT_PARENT, OPT_IPVLAN_MODE, OPT_IPVLAN_FLAG],
  strictOptions: true,

  plan(ctx, draft, view) {
    const mode = draft.options[OPT_IPVLAN_MODE] ?? 'l2';
    if (!Object.hasOwn(IPVLAN_MODES, mode)) throw invalid(`invalid ipvlan mode "${mode}": use ${Object.keys(IPVLAN_MODES).join(', ')}`);
    const flag = draft.options[OPT_IPVLAN_FLAG] ?? 'bridge';
    if (!Object.hasOwn(IPVLAN_FLAGS, flag)) throw invalid(`invalid ipvlan flag "${flag}": use ${Object.keys(IPVLAN_FLAGS).join(', ')}`);
    const links = parentLinks(ctx, draft, view, 'ipvlan');
    return { options: { ...draft.options, [OPT_IPVLAN_MODE]: mode, [OPT_IPVLAN_FLAG]: flag }, links, auxAddresses: hostAddresses(draft, view) };
  },

  async ensure(ctx, net) {
    const created = await ensureParent(ctx, net);
    try {
      await ctx.kernel.call('checkIpvlan', { parent: parentOf(net), probe: `bip${shortId(net.id)}` });
    } catch (err) {
      // A parent made just now for this network would outlive it.
      if (created) await removeOwnLinks(ctx, net).catch(() => undefined);
      throw err;
    }
    return created;
  },

  async remove(ctx, net) {
    await removeOwnLinks(ctx, net);
  },

  hostLinkOf() {
    return null;
  },

  async join(ctx, net, endpoint, spec) {
    const subnet = parseCidr(net.subnet!);
    const l2 = modeOf(net) === 'l2';
    return ctx.kernel.call('attachLanChild', {
      netnsPath: spec.netnsPath,
      parent: parentOf(net),
      kind: { ipvlan: modeOf(net), flag: flagOf(net) },
      ifname: endpoint.ifname,
      alias: `${aliasPrefix(ctx.paths.owner, 'endpoint')}${endpoint.id}`,
      ip: endpoint.ip!,
      prefix: subnet.prefix,
      broadcast: formatIpv4(broadcastOf(subnet)),
      gateway: net.internal || !l2 ? undefined : net.gateway!,
      ...lanChild6(net, endpoint, l2 && !net.internal),
      routeViaDevice: !l2 && !net.internal,
      defaultRoute: spec.defaultRoute,
      mtu: networkMtu(net),
      createSandbox: spec.createSandbox,
    });
  },

  leave(ctx, _net, endpoint, spec) {
    if (!spec) return () => undefined;
    return detachLater(ctx, endpoint, spec);
  },

  firewall() {
    // Container traffic leaves by the parent below the host's IP stack, as on macvlan.
    return undefined;
  },

  dns() {
    // The containers cannot reach the host: the resolver answers inside each one.
    return { in: 'sandbox', address: SANDBOX_DNS_ADDRESS };
  },

  async repair(ctx, net, endpoints, _view, report) {
    await restoreChildren(ctx, ipvlanDriver, net, endpoints, report);
  },
};
