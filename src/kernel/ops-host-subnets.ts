/**
 * Kernel operations of host subnets (Flannel's model: each host leases a subnet of the cluster
 * CIDR, and reaches the others' subnets by routes). The vxlan backend's one device per host and
 * its three entries per peer (neighbour subnetIP → VtepMAC, FDB VtepMAC → PublicIP, route
 * subnet via subnetIP onlink, the route last so the kernel never ARPs for the gateway), and the
 * host-gw backend's route per peer via its underlay address. Every route carries berth's protocol
 * number (peer-routes.ts), so only berth's own are ever removed.
 */
import * as nl from './netlink/codec.js';
import * as vx from './netlink/vxlan.js';
import { RTPROT_BERTH, deletePeerRoute, replacePeerRoute } from './netlink/peer-routes.js';
import { EEXIST, ENOENT, ESRCH, type NetlinkSocket } from './netlink/socket.js';
import { addAddress, disableIpv6, host, linkByName } from './link-steps.js';

export interface HostVxlanSpec {
  name: string;
  /** berth's mark on the device (`berth:<owner>:host-subnets:vxlan`). */
  mark: string;
  vni: number;
  port: number;
  /** The VTEP MAC peers program for this host: stable across restarts. */
  mac: string;
  local: string;
  underlay: string;
  mtu: number;
  /** The leased subnet's network address, held as a /32 (no broadcast route, as Flannel). */
  address: string;
}

function addressesOn(sock: NetlinkSocket, index: number): nl.AddressInfo[] {
  return sock
    .dump(nl.dumpAddresses(), 'list addresses')
    .map((m) => nl.parseAddress(m.body))
    .filter((a): a is nl.AddressInfo => a !== undefined && a.index === index);
}

/**
 * Makes the host's VXLAN device (idempotent: the reconciler calls it). A device of ours whose MAC
 * or address no longer match (a new subnet after the lease expired) is made again, so peers never
 * hold a stale VtepMAC for it.
 */
export function ensureHostVxlan(spec: HostVxlanSpec): { created: boolean } {
  const sock = host();
  const underlay = linkByName(sock, spec.underlay);
  if (!underlay) throw new Error(`underlay interface ${spec.underlay} is gone: other hosts' subnets cannot be reached`);
  let link = linkByName(sock, spec.name);
  if (link && link.alias !== spec.mark) throw Object.assign(new Error(`link ${spec.name} exists on the host and berth did not create it: remove it or stop what made it`), { errno: EEXIST });
  if (link && (link.mac !== spec.mac || addressesOn(sock, link.index).some((a) => a.address !== spec.address))) {
    sock.transact([nl.deleteLink({ index: link.index })], [`delete ${spec.name}, made for another subnet or MAC`]);
    link = undefined;
  }
  let created = false;
  if (!link) {
    sock.transact([vx.newVxlan({ name: spec.name, vni: spec.vni, local: spec.local, underlayIndex: underlay.index, mtu: spec.mtu, port: spec.port, proxy: false, mac: spec.mac })], [`create vxlan ${spec.name} (VNI ${spec.vni}, port ${spec.port})`]);
    link = linkByName(sock, spec.name);
    if (!link) throw new Error(`vxlan ${spec.name} vanished right after it was created`);
    created = true;
  }
  disableIpv6(spec.name);
  sock.transact([nl.setAlias(link.index, spec.mark), vx.setLinkMtu(link.index, spec.mtu), nl.setLinkUp({ index: link.index })], [`mark ${spec.name}`, `set its MTU`, `bring it up`]);
  addAddress(sock, link.index, spec.address, 32, spec.name);
  return { created };
}

export interface VxlanPeerEntry {
  /** The peer's subnet, CIDR text. */
  subnet: string;
  /** Its network address: the gateway of the route, and the neighbour entry's IP. */
  gateway: string;
  /** Its VtepMAC. */
  mac: string;
  /** Its PublicIP: where the frames go. */
  vtep: string;
}

const split = (cidr: string) => {
  const [dst, prefix] = cidr.split('/');
  return { dst: dst!, prefix: Number(prefix) };
};

function deviceIndex(sock: NetlinkSocket, dev: string): number {
  const link = linkByName(sock, dev);
  if (!link) throw Object.assign(new Error(`vxlan device ${dev} is missing`), { errno: ENOENT });
  return link.index;
}

/** The three entries for one peer; on failure, what was added is removed again. */
export function addVxlanPeer(spec: { dev: string; peer: VxlanPeerEntry }): void {
  const sock = host();
  const index = deviceIndex(sock, spec.dev);
  const { peer } = spec;
  const steps: [nl.NetlinkRequest, string, nl.NetlinkRequest][] = [
    [nl.newNeighbour(index, peer.gateway, peer.mac), `neighbour ${peer.gateway} → ${peer.mac}`, nl.deleteNeighbour(index, peer.gateway)],
    [vx.newVxlanFdb(index, peer.mac, peer.vtep), `fdb ${peer.mac} → ${peer.vtep}`, vx.deleteVxlanFdb(index, peer.mac)],
    [replacePeerRoute({ ...split(peer.subnet), gateway: peer.gateway, oifIndex: index, onlink: true }), `route ${peer.subnet} via ${peer.gateway} onlink`, deletePeerRoute(split(peer.subnet))],
  ];
  const done: nl.NetlinkRequest[] = [];
  try {
    for (const [req, label, undo] of steps) {
      sock.transact([req], [label]);
      done.push(undo);
    }
  } catch (err) {
    for (const undo of done.reverse()) tolerate(sock, undo, 'undo');
    throw err;
  }
}

/**
 * Removes entries from the device (routes first, so nothing routes to a gateway without a
 * neighbour); those already gone are fine. Returns how many were there.
 */
export function removeVxlanEntries(spec: { dev: string; routes: string[]; neighbours: string[]; macs: string[] }): number {
  const sock = host();
  let found = 0;
  for (const subnet of spec.routes) found += tolerate(sock, deletePeerRoute(split(subnet)), `route ${subnet}`);
  const link = linkByName(sock, spec.dev);
  if (!link) return found;
  for (const ip of spec.neighbours) found += tolerate(sock, nl.deleteNeighbour(link.index, ip), `neighbour ${ip}`);
  for (const mac of spec.macs) found += tolerate(sock, vx.deleteVxlanFdb(link.index, mac), `fdb ${mac}`);
  return found;
}

/** Sends one removal; an entry already gone counts 0. */
function tolerate(sock: NetlinkSocket, req: nl.NetlinkRequest, what: string): number {
  try {
    sock.transact([req], [`remove ${what}`]);
    return 1;
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    if (errno !== ENOENT && errno !== ESRCH) throw err;
    return 0;
  }
}

const RTM_GETNEIGH = 30;
const AF_BRIDGE = 7;

/** What is programmed on the device now: neighbours, FDB entries and berth's routes through it. */
export function hostVxlanEntries(spec: { dev: string }): { neighbours: { ip: string; mac: string }[]; fdb: { mac: string; vtep: string }[]; routes: { subnet: string; gateway?: string }[] } {
  const sock = host();
  const link = linkByName(sock, spec.dev);
  if (!link) return { neighbours: [], fdb: [], routes: [] };
  const neighbours = sock
    .dump(vx.dumpNeighbours(), 'list neighbours')
    .map((m) => vx.parseNeighbour(m.body))
    .filter((n): n is { index: number; ip: string; mac: string } => n !== undefined && n.index === link.index && n.mac !== undefined)
    .map(({ ip, mac }) => ({ ip, mac }));
  const fdbBody = Buffer.alloc(12);
  fdbBody.writeUInt8(AF_BRIDGE, 0);
  const fdb = sock
    .dump({ type: RTM_GETNEIGH, flags: nl.NLM_F_REQUEST | nl.NLM_F_DUMP, body: fdbBody }, 'list fdb entries')
    .map((m) => vx.parseNeighbour(m.body))
    .filter((n): n is { index: number; ip: string; mac: string } => n !== undefined && n.index === link.index && n.mac !== undefined)
    .map(({ ip, mac }) => ({ mac, vtep: ip }));
  const routes = berthRoutes(sock)
    .filter((r) => r.oif === link.index)
    .map((r) => ({ subnet: `${r.dst}/${r.prefix}`, gateway: r.gateway }));
  return { neighbours, fdb, routes };
}

function berthRoutes(sock: NetlinkSocket): nl.RouteInfo[] {
  return sock
    .dump(nl.dumpRoutes(), 'list routes')
    .map((m) => nl.parseRoute(m.body))
    .filter((r): r is nl.RouteInfo => r !== undefined && r.table === 254 && r.protocol === RTPROT_BERTH);
}

/* host-gw */

/** `ip route replace SUBNET via GATEWAY dev IFNAME proto 0xb5`. */
export function addGwRoute(spec: { ifname: string; subnet: string; gateway: string }): void {
  const sock = host();
  const link = linkByName(sock, spec.ifname);
  if (!link) throw new Error(`underlay interface ${spec.ifname} is gone: other hosts' subnets cannot be reached`);
  sock.transact([replacePeerRoute({ ...split(spec.subnet), gateway: spec.gateway, oifIndex: link.index })], [`route ${spec.subnet} via ${spec.gateway} dev ${spec.ifname}`]);
}

/** Removes berth's route to the subnet; 0 if it was not there. */
export function removeGwRoute(spec: { subnet: string }): number {
  return tolerate(host(), deletePeerRoute(split(spec.subnet)), `route ${spec.subnet}`);
}

/** berth's peer routes out of an interface now. */
export function gwRoutes(spec: { ifname: string }): { subnet: string; gateway?: string }[] {
  const sock = host();
  const link = linkByName(sock, spec.ifname);
  if (!link) return [];
  return berthRoutes(sock)
    .filter((r) => r.oif === link.index)
    .map((r) => ({ subnet: `${r.dst}/${r.prefix}`, gateway: r.gateway }));
}

/** The prefixes directly connected on an interface (its IPv4 addresses with their lengths). */
export function connectedPrefixes(spec: { ifname: string }): { address: string; prefix: number }[] {
  const sock = host();
  const link = linkByName(sock, spec.ifname);
  if (!link) return [];
  return addressesOn(sock, link.index).map(({ address, prefix }) => ({ address, prefix }));
}
