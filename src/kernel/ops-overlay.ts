/**
 * Kernel operations of overlay networks: the VXLAN device on the network's bridge, and the three
 * entries per remote endpoint that make it reachable with learning and flooding off (Flannel's
 * model): the device's FDB entry (MAC → remote VTEP), the bridge's static entry (MAC → the VXLAN
 * port) and a permanent neighbour entry (IP → MAC) that the device's ARP proxy answers from, so
 * no ARP ever crosses the underlay.
 */
import * as nl from './netlink/codec.js';
import * as vx from './netlink/vxlan.js';
import { EEXIST, ENOENT, type NetlinkSocket } from './netlink/socket.js';
import { addAddress, disableIpv6, enableIpv6, host, linkByName } from './link-steps.js';

export interface VxlanDeviceSpec {
  name: string;
  /** berth's mark on the device (`berth:<owner>:network:<id>`). */
  mark: string;
  vni: number;
  local: string;
  underlay: string;
  mtu: number;
  bridge: string;
  /** A dual-stack network: IPv6 on, so the device's proxy answers neighbour solicitations. */
  ipv6?: boolean;
}

/** Makes the network's VXLAN device on its bridge (idempotent: the reconciler restores it). */
export function ensureVxlan(spec: VxlanDeviceSpec): { created: boolean } {
  const sock = host();
  const bridge = linkByName(sock, spec.bridge);
  if (!bridge) throw new Error(`bridge ${spec.bridge} is missing: the overlay's VXLAN device hangs off it`);
  const underlay = linkByName(sock, spec.underlay);
  if (!underlay) throw new Error(`underlay interface ${spec.underlay} is gone: the overlay cannot reach other hosts`);
  let link = linkByName(sock, spec.name);
  if (link && link.alias !== spec.mark) throw Object.assign(new Error(`link ${spec.name} exists on the host and berth did not create it`), { errno: EEXIST });
  let created = false;
  if (!link) {
    sock.transact([vx.newVxlan({ name: spec.name, vni: spec.vni, local: spec.local, underlayIndex: underlay.index, mtu: spec.mtu, masterIndex: bridge.index })], [`create vxlan ${spec.name} (VNI ${spec.vni})`]);
    link = linkByName(sock, spec.name);
    if (!link) throw new Error(`vxlan ${spec.name} vanished right after it was created`);
    created = true;
  }
  if (spec.ipv6) enableIpv6(spec.name);
  else disableIpv6(spec.name);
  const steps = [nl.setAlias(link.index, spec.mark), nl.setMaster(link.index, bridge.index), vx.quietBridgePort(link.index), nl.setLinkUp({ index: link.index })];
  sock.transact(steps, ['mark the vxlan device', 'put it on the bridge', 'turn learning and flooding off on its port', 'bring it up']);
  return { created };
}

export function deleteVxlan(spec: { name: string; mark: string }): 'deleted' | 'absent' | 'foreign' {
  const sock = host();
  const link = linkByName(sock, spec.name);
  if (!link) return 'absent';
  if (link.alias !== spec.mark) return 'foreign';
  sock.transact([nl.deleteLink({ index: link.index })], [`delete vxlan ${spec.name}`]);
  return 'deleted';
}

export interface RemoteEndpoint {
  mac: string;
  ip: string;
  /** Its IPv6 address on a dual-stack network: a fourth entry, answered by the proxy as ARP is. */
  ip6?: string;
  /** The underlay address of the host it runs on. */
  vtep: string;
}

/**
 * Programs remote endpoints on the device (three entries each, in one write) and removes others.
 * Removal is idempotent: an entry already gone is fine.
 */
export function programRemotes(spec: { vxlan: string; add: RemoteEndpoint[]; remove: { mac: string; ip: string; ip6?: string }[] }): { programmed: number; removed: number } {
  const sock = host();
  const link = linkByName(sock, spec.vxlan);
  if (!link) throw Object.assign(new Error(`vxlan device ${spec.vxlan} is missing`), { errno: ENOENT });
  const requests: nl.NetlinkRequest[] = [];
  const labels: string[] = [];
  for (const r of spec.add) {
    requests.push(vx.newVxlanFdb(link.index, r.mac, r.vtep), nl.newStaticFdb(link.index, r.mac), nl.newNeighbour(link.index, r.ip, r.mac));
    labels.push(`vxlan fdb ${r.mac} → ${r.vtep}`, `bridge fdb ${r.mac}`, `neighbour ${r.ip}`);
    if (r.ip6) {
      requests.push(nl.newNeighbour(link.index, r.ip6, r.mac));
      labels.push(`neighbour ${r.ip6}`);
    }
  }
  if (requests.length > 0) sock.transact(requests, labels);
  let removed = 0;
  for (const r of spec.remove) {
    const entries = [vx.deleteVxlanFdb(link.index, r.mac), vx.deleteBridgeFdb(link.index, r.mac), nl.deleteNeighbour(link.index, r.ip)];
    if (r.ip6) entries.push(nl.deleteNeighbour(link.index, r.ip6));
    removed += tolerateMissing(sock, entries, r.mac);
  }
  return { programmed: spec.add.length, removed };
}

/** Sends each request on its own so one missing entry does not hide the others; counts what was there. */
function tolerateMissing(sock: NetlinkSocket, requests: nl.NetlinkRequest[], what: string): number {
  let found = 0;
  for (const req of requests) {
    try {
      sock.transact([req], [`remove ${what}`]);
      found++;
    } catch (err) {
      if ((err as { errno?: number }).errno !== ENOENT) throw err;
    }
  }
  return found > 0 ? 1 : 0;
}

/** The host's interface holding `address`, with its MTU: the overlay's underlay. */
export function underlayOf(spec: { address?: string; ifname?: string }): { ifname: string; address: string; mtu: number } | undefined {
  const sock = host();
  const links = sock.dump(nl.dumpLinks(), 'list links').map((m) => nl.parseLink(m.body));
  const addrs = sock
    .dump(nl.dumpAddresses(), 'list addresses')
    .map((m) => nl.parseAddress(m.body))
    .filter((a): a is nl.AddressInfo => a !== undefined);
  const byIndex = new Map(links.map((l) => [l.index, l]));
  const hit = spec.ifname ? addrs.find((a) => byIndex.get(a.index)?.name === spec.ifname) : addrs.find((a) => a.address === spec.address);
  const link = hit && byIndex.get(hit.index);
  if (!hit || !link) return undefined;
  return { ifname: link.name, address: hit.address, mtu: link.mtu ?? 1500 };
}

export interface TunnelLinkSpec {
  name: string;
  mark: string;
  address: string;
  prefix: number;
  mtu: number;
}

/**
 * Marks, sizes, addresses and brings up the WireGuard device (made by wireguard-go, or by the
 * kernel): encrypted overlays run their VXLAN over it, between hosts' tunnel addresses.
 */
export function configureTunnelLink(spec: TunnelLinkSpec): { index: number } {
  const sock = host();
  const link = linkByName(sock, spec.name);
  if (!link) throw Object.assign(new Error(`WireGuard device ${spec.name} is missing`), { errno: ENOENT });
  if (link.alias && link.alias !== spec.mark) throw Object.assign(new Error(`link ${spec.name} exists on the host and berth did not create it`), { errno: EEXIST });
  sock.transact([nl.setAlias(link.index, spec.mark), vx.setLinkMtu(link.index, spec.mtu), nl.setLinkUp({ index: link.index })], ['mark the WireGuard device', 'set its MTU', 'bring it up']);
  disableIpv6(spec.name);
  addAddress(sock, link.index, spec.address, spec.prefix, spec.name);
  return { index: link.index };
}

/** Whether a link exists, and its mark. */
export function linkMark(spec: { name: string }): { exists: boolean; alias?: string } {
  const link = linkByName(host(), spec.name);
  return link ? { exists: true, alias: link.alias } : { exists: false };
}

/** The remote endpoints programmed on a VXLAN device now (its neighbour entries). */
export function programmedRemotes(spec: { vxlan: string }): { mac: string; ip: string }[] {
  const sock = host();
  const link = linkByName(sock, spec.vxlan);
  if (!link) return [];
  return sock
    .dump(vx.dumpNeighbours(), 'list neighbours')
    .map((m) => vx.parseNeighbour(m.body))
    .filter((n): n is { index: number; ip: string; mac: string } => n !== undefined && n.index === link.index && n.mac !== undefined)
    .map(({ mac, ip }) => ({ mac, ip }));
}
