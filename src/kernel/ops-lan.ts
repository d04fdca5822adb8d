/**
 * Kernel operations of networks that put containers straight on a LAN (macvlan, ipvlan): the
 * parent a network hangs its containers off (the host's own link, an 802.1Q sub-interface berth
 * makes, or a veth pair berth makes for a network with no parent), the host's macvlan shim that
 * lets the host reach its own containers, and the child link of each container, made directly
 * inside the container's namespace.
 */
import * as fs from 'node:fs';
import * as nl from './netlink/codec.js';
import { newIpvlan, newMacvlan, newVlan, type IpvlanFlag, type IpvlanMode, type MacvlanMode } from './netlink/sublinks.js';
import { NetlinkSocket, EEXIST, ENODEV, ENOENT } from './netlink/socket.js';
import { createSandbox, deleteLink } from './ops.js';
import { openNetns, withNetns } from './netns.js';
import { addAddress, disableIpv6, enableIpv6, host, linkByName } from './link-steps.js';

const EOPNOTSUPP = 95;
const NO_IPVLAN = 'this kernel has no ipvlan support (CONFIG_IPVLAN, module ipvlan): load the module (modprobe ipvlan), or use -d macvlan';

/** berth's mark on a link it made, or a link of the host of that name (never touched). */
function mustBeOwn(link: nl.LinkInfo, mark: string): void {
  if (link.alias !== mark) {
    throw Object.assign(new Error(`link ${link.name} exists on the host and berth did not create it: berth never takes over or deletes a link of the host`), { errno: EEXIST });
  }
}

export interface LanParentSpec {
  /** The link children hang off. */
  parent: string;
  /** berth makes the parent: an 802.1Q sub-interface of `base`… */
  vlan?: { base: string; id: number };
  /** …or a veth pair (`parent` and `peer`) for a network with no parent of the host. */
  ownPair?: { peer: string };
  /** berth's mark on the links it makes (`berth:<owner>:network:<id>`). */
  mark: string;
  mtu?: number;
}

/**
 * Makes sure the network's parent is there and up; makes it if berth owns it (idempotent, so the
 * reconciler restores a deleted one). A parent of the host is only checked: berth never brings up
 * or changes a link it did not make. Returns whether it made something.
 */
export function ensureLanParent(spec: LanParentSpec): { created: boolean } {
  const sock = host();
  const existing = linkByName(sock, spec.parent);
  if (!spec.vlan && !spec.ownPair) {
    if (!existing) throw new Error(`parent interface ${spec.parent} not found: name an existing link with -o parent=IFACE`);
    if (!existing.up) throw new Error(`parent interface ${spec.parent} is down: bring it up (ip link set ${spec.parent} up) first`);
    return { created: false };
  }
  if (existing) {
    mustBeOwn(existing, spec.mark);
    if (!existing.up) sock.transact([nl.setLinkUp({ index: existing.index })], [`bring ${spec.parent} up`]);
    return { created: false };
  }
  if (spec.vlan) {
    const base = linkByName(sock, spec.vlan.base);
    if (!base) throw new Error(`parent interface ${spec.vlan.base} (of ${spec.parent}) not found: name an existing link`);
    try {
      sock.transact([newVlan({ name: spec.parent, parentIndex: base.index, vlanId: spec.vlan.id, mtu: spec.mtu, up: true })], [`create vlan ${spec.parent}`]);
    } catch (err) {
      if ((err as { errno?: number }).errno === EOPNOTSUPP) {
        throw Object.assign(new Error(`cannot create ${spec.parent}: this kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q, module 8021q); load the module, or name an existing parent interface`), { errno: EOPNOTSUPP });
      }
      throw err;
    }
  } else {
    // Both ends stay in the host namespace: the pair is only there to carry the children.
    const here = fs.openSync('/proc/thread-self/ns/net', 'r');
    try {
      sock.transact([nl.newVeth({ name: spec.parent, up: true, mtu: spec.mtu, peerName: spec.ownPair!.peer, peerNetnsFd: here })], [`create parent pair ${spec.parent}`]);
    } finally {
      fs.closeSync(here);
    }
    const peer = linkByName(sock, spec.ownPair!.peer);
    if (peer) sock.transact([nl.setLinkUp({ index: peer.index }), nl.setAlias(peer.index, spec.mark)], [`bring ${peer.name} up`, `mark ${peer.name}`]);
  }
  const made = linkByName(sock, spec.parent);
  if (!made) throw new Error(`parent ${spec.parent} vanished right after it was created`);
  sock.transact([nl.setAlias(made.index, spec.mark)], [`mark ${spec.parent}`]);
  disableIpv6(spec.parent);
  return { created: true };
}

/** Deletes a link berth made under `mark`; a link of the host of that name stays. */
export function deleteOwnLink(spec: { name: string; mark: string }): 'deleted' | 'absent' | 'foreign' {
  const link = linkByName(host(), spec.name);
  if (!link) return 'absent';
  if (link.alias !== spec.mark) return 'foreign';
  return deleteLink(spec.name) ? 'deleted' : 'absent';
}

export interface MacvlanShimSpec {
  name: string;
  parent: string;
  mark: string;
  /** The host's address on the network, as a /32: routes to containers are added one by one. */
  address: string;
  mtu?: number;
}

/**
 * The host's own macvlan child of the parent (bridge mode). The kernel never passes frames
 * between a parent and its macvlan children, so without it the host cannot reach its containers.
 */
export function ensureMacvlanShim(spec: MacvlanShimSpec): { created: boolean } {
  const sock = host();
  let link = linkByName(sock, spec.name);
  let created = false;
  if (link) mustBeOwn(link, spec.mark);
  else {
    const parent = linkByName(sock, spec.parent);
    if (!parent) throw new Error(`parent interface ${spec.parent} not found for the host shim ${spec.name}`);
    sock.transact([newMacvlan({ name: spec.name, parentIndex: parent.index, mode: 'bridge', mtu: spec.mtu })], [`create shim ${spec.name}`]);
    link = linkByName(sock, spec.name);
    if (!link) throw new Error(`shim ${spec.name} vanished right after it was created`);
    created = true;
  }
  disableIpv6(spec.name);
  sock.transact([nl.setAlias(link.index, spec.mark), nl.setLinkUp({ index: link.index })], [`mark ${spec.name}`, `bring ${spec.name} up`]);
  addAddress(sock, link.index, spec.address, 32, spec.name);
  return { created };
}

export interface LanChildSpec {
  netnsPath: string;
  parent: string;
  /** What the child is: a macvlan of a mode, or an ipvlan of a mode and flag. */
  kind: { macvlan: MacvlanMode } | { ipvlan: IpvlanMode; flag: IpvlanFlag };
  ifname: string;
  /** berth's mark on the child (`berth:<owner>:endpoint:<id>`). */
  alias: string;
  /** Unset in passthru mode: the child takes the parent's address. */
  mac?: string;
  ip: string;
  prefix: number;
  broadcast: string;
  /** The LAN's router; a network with none (internal) gets no default route. */
  gateway?: string;
  /** The IPv6 side on a dual-stack network: the address, the LAN prefix's length, its router. */
  ip6?: { ip: string; prefix: number; gateway?: string };
  /** The default route goes straight out of the interface (ipvlan l3: the parent's host routes). */
  routeViaDevice?: boolean;
  defaultRoute: boolean;
  mtu?: number;
  createSandbox?: boolean;
  /** The host shim, when the host reaches its containers: a /32 route to the container through it. */
  shim?: { name: string; address: string };
}

/**
 * Creates the container's macvlan or ipvlan child straight inside its namespace (one NEWLINK with the
 * namespace's fd), then its address and routes there. On failure nothing of it is left.
 */
export function attachLanChild(spec: LanChildSpec): { mac?: string } {
  if (spec.createSandbox) createSandbox({ path: spec.netnsPath });
  const sock = host();
  const parent = linkByName(sock, spec.parent);
  if (!parent) throw new Error(`parent interface ${spec.parent} is missing: run \`berth system reconcile\` to restore it, or recreate the network`);
  const nsFd = openNetns(spec.netnsPath);
  try {
    const common = { name: spec.ifname, parentIndex: parent.index, mtu: spec.mtu, netnsFd: nsFd };
    const request = 'macvlan' in spec.kind ? newMacvlan({ ...common, mode: spec.kind.macvlan, mac: spec.mac }) : newIpvlan({ ...common, mode: spec.kind.ipvlan, flag: spec.kind.flag });
    sock.transact([request], [`create ${'macvlan' in spec.kind ? 'macvlan' : 'ipvlan'} ${spec.ifname} on ${spec.parent}`]);
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    if (errno === EEXIST) throw new Error(`interface ${spec.ifname} already exists in the sandbox`);
    if (errno === EOPNOTSUPP) throw Object.assign(new Error(NO_IPVLAN), { errno });
    throw err;
  } finally {
    fs.closeSync(nsFd);
  }
  try {
    const mac = withNetns(spec.netnsPath, () => configureChild(spec));
    if (spec.shim) addShimRoute(spec.shim.name, spec.ip, spec.shim.address);
    return { mac };
  } catch (err) {
    removeChild(spec.netnsPath, spec.ifname);
    throw err;
  }
}

/** Configures the child inside the sandbox; returns its MAC (the kernel's choice when none was asked). */
function configureChild(spec: LanChildSpec): string | undefined {
  const sock = new NetlinkSocket();
  try {
    const child = linkByName(sock, spec.ifname);
    if (!child) throw new Error(`interface ${spec.ifname} did not appear in the sandbox`);
    // Before it goes up: a runtime's namespace may have IPv6 on, and no child takes the LAN's RAs.
    if (spec.ip6) enableIpv6(spec.ifname);
    else disableIpv6(spec.ifname);
    // Unsolicited neighbour advertisements on up, for IPv6 what arp_notify is for IPv4.
    if (spec.ip6) fs.writeFileSync(`/proc/sys/net/ipv6/conf/${spec.ifname}/ndisc_notify`, '1');
    // A gratuitous ARP when the child comes up (its address set first): LAN hosts and the router
    // that cached the address for a container gone before would otherwise send to its old MAC.
    // (An ipvlan l3 child does no ARP; the setting is then moot.)
    fs.writeFileSync(`/proc/sys/net/ipv4/conf/${spec.ifname}/arp_notify`, '1');
    const steps = [nl.setAlias(child.index, spec.alias), nl.newAddress(child.index, spec.ip, spec.prefix, spec.broadcast), nl.setLinkUp({ index: child.index })];
    const labels = [`mark ${spec.ifname}`, `add ${spec.ip}/${spec.prefix} to ${spec.ifname}`, `bring ${spec.ifname} up`];
    if (spec.ip6) {
      steps.splice(2, 0, nl.newAddress(child.index, spec.ip6.ip, spec.ip6.prefix));
      labels.splice(2, 0, `add ${spec.ip6.ip}/${spec.ip6.prefix} to ${spec.ifname}`);
    }
    const defaults = [{ any: '0.0.0.0', gateway: spec.gateway }, ...(spec.ip6 ? [{ any: '::', gateway: spec.ip6.gateway }] : [])];
    for (const d of spec.defaultRoute ? defaults : []) {
      if (spec.routeViaDevice) {
        steps.push(nl.newRoute({ dst: d.any, prefix: 0, oifIndex: child.index }));
        labels.push(`add default route (${d.any}) dev ${spec.ifname}`);
      } else if (d.gateway) {
        steps.push(nl.newDefaultRoute(d.gateway, child.index));
        labels.push(`add default route via ${d.gateway}`);
      }
    }
    sock.transact(steps, labels);
    return child.mac;
  } finally {
    sock.close();
  }
}

function removeChild(netnsPath: string, ifname: string): void {
  if (!fs.existsSync(netnsPath)) return;
  withNetns(netnsPath, () => {
    const sock = new NetlinkSocket();
    try {
      sock.transact([nl.deleteLink({ name: ifname })], [`delete ${ifname}`]);
    } catch (err) {
      if ((err as { errno?: number }).errno !== ENODEV) throw err;
    } finally {
      sock.close();
    }
  });
}

function addShimRoute(shimName: string, ip: string, shimAddress: string): void {
  const shim = linkByName(host(), shimName);
  if (!shim) throw new Error(`host shim ${shimName} is missing: run \`berth system reconcile\` to restore it`);
  host().transact([nl.newRoute({ dst: ip, prefix: 32, oifIndex: shim.index, src: shimAddress })], [`route ${ip}/32 via ${shimName}`]);
}

/** The host's route to a container through the shim goes (idempotent). */
export function forgetShimRoute(spec: { shim: string; ip: string }): void {
  const shim = linkByName(host(), spec.shim);
  if (!shim) return;
  try {
    host().transact([nl.deleteRoute({ dst: spec.ip, prefix: 32, oifIndex: shim.index })], [`delete route ${spec.ip}/32`]);
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    if (errno !== ESRCH && errno !== ENOENT) throw err;
  }
}

const ESRCH = 3;

/** Whether the sandbox still has the interface (the reconciler restores a deleted macvlan child). */
export function sandboxHasLink(spec: { netnsPath: string; ifname: string }): boolean {
  if (!fs.existsSync(spec.netnsPath)) return false;
  return withNetns(spec.netnsPath, () => {
    const sock = new NetlinkSocket();
    try {
      return linkByName(sock, spec.ifname) !== undefined;
    } finally {
      sock.close();
    }
  });
}

/**
 * Whether ipvlan children can hang off `parent`: makes one in the host namespace (a name of
 * berth's, `probe`) and deletes it, so `network create -d ipvlan` fails up front on a kernel
 * without ipvlan, naming the missing feature.
 */
export function checkIpvlan(spec: { parent: string; probe: string }): void {
  const sock = host();
  const parent = linkByName(sock, spec.parent);
  if (!parent) throw new Error(`parent interface ${spec.parent} not found`);
  try {
    sock.transact([newIpvlan({ name: spec.probe, parentIndex: parent.index, mode: 'l3' })], [`probe ipvlan on ${spec.parent}`]);
  } catch (err) {
    if ((err as { errno?: number }).errno === EOPNOTSUPP) throw Object.assign(new Error(NO_IPVLAN), { errno: EOPNOTSUPP });
    throw err;
  }
  deleteLink(spec.probe);
}
