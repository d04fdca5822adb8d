/**
 * The kernel operations the engine asks for, each a short sequence of netlink messages. They run
 * on the kernel worker thread (see worker.ts); the engine reaches them through kernel.ts. Every
 * argument and result is plain data so it can cross the thread boundary.
 */
import { killProcessesInNetns } from '../runtime/process.js';
import * as fs from 'node:fs';
import { bridgeMac, foreignBridgeMessage, isOwnBridge } from './own-bridge.js';
import * as nl from './netlink/codec.js';
import { NetlinkSocket, EEXIST, ENODEV, ENOENT } from './netlink/socket.js';
import { bindHeldNetns, closeHeldNetns, createHeldNetns, createNetns, deleteNetns, ensureSharedMountDir, openNetns, releaseSharedMountDir, withNetns } from './netns.js';
import { NftContext } from './nft.js';
import { writeNetSysctl } from './net-sysctl.js';
import { addAddress, disableIpv6, enableIpv6, host, linkByName } from './link-steps.js';

// Firewall-side kernel work (conntrack, held host ports, nftables notifications) lives apart.
export * from './ops-netfilter.js';
// Links of drivers that put containers on a LAN (macvlan, ipvlan): parents, the host shim, children.
export * from './ops-lan.js';
// Links and routes of point-to-point networks.
export * from './ops-ptp.js';
// Veths, proxy ARP and /32 routes of routed networks (Calico's model).
export * from './ops-routed.js';
// Resolver sockets inside container namespaces.
export * from './ops-sandbox-dns.js';
// The VXLAN device of overlay networks and their remote endpoints.
export * from './ops-overlay.js';
// Host subnets (--cluster-cidr): the vxlan backend's device and entries, host-gw's routes.
export * from './ops-host-subnets.js';
// The fan's VXLAN device, its route and its eBPF program.
export * from './ops-fan.js';
// Read-only looks for the path tracer and the metrics (issue 15).
export * from './ops-trace.js';
export * from './ops-metrics.js';
export * from './ops-topology.js';
// Interfaces handed to dockerd through the plugin protocol (issue 16).
export * from './ops-docker.js';

let hostNft: NftContext | undefined;

export interface BridgeSpec {
  name: string;
  /** berth's mark on the bridge (`berth:<owner>:network:<id>`); its MAC derives from it (own-bridge.ts). */
  alias: string;
  /** The IPv4 gateway, prefix length and broadcast; absent on an IPv6-only network. */
  gateway?: string;
  prefix?: number;
  broadcast?: string;
  /** The IPv6 gateway of a dual-stack network (`::1` of its subnet), with the subnet's prefix length. */
  gateway6?: string;
  prefix6?: number;
  mtu?: number;
}

/**
 * Creates the bridge if missing, up, with the gateway address. Idempotent, so the reconciler can
 * call it to restore a bridge someone deleted. Returns the bridge's index and whether it was made.
 * A link of that name berth did not make is never touched: no address, no alias, no deletion.
 */
export function ensureBridge(spec: BridgeSpec): { index: number; created: boolean } {
  const sock = host();
  let link = linkByName(sock, spec.name);
  let created = false;
  if (!link) {
    // A bridge without an address of its own takes the lowest MAC among its ports, so it would
    // change whenever a container joins, and every container's ARP entry for the gateway would go
    // stale (replies lost for seconds). A fixed address, like Docker's 02:42:…, keeps it stable.
    sock.transact([nl.newBridge(spec.name, { mtu: spec.mtu, up: true, mac: bridgeMac(spec.alias) })], [`create bridge ${spec.name}`]);
    link = linkByName(sock, spec.name);
    created = true;
  } else if (link.kind !== 'bridge') {
    throw new Error(`link ${spec.name} exists and is not a bridge (kind ${link.kind ?? 'unknown'}): choose another bridge name`);
  } else if (!isOwnBridge(link, spec.alias)) {
    throw Object.assign(new Error(foreignBridgeMessage(spec.name)), { errno: EEXIST });
  }
  if (!link) throw new Error(`bridge ${spec.name} vanished right after it was created`);
  sock.transact([nl.setLinkUp({ index: link.index }), nl.setAlias(link.index, spec.alias)], [`bring ${spec.name} up`, `mark ${spec.name}`]);
  if (spec.gateway) {
    addAddress(sock, link.index, spec.gateway, spec.prefix ?? 32, spec.name, spec.broadcast);
    // Lets the host reach ports published on 127.0.0.1: those packets leave with a 127/8 source.
    writeSysctl({ key: `net/ipv4/conf/${spec.name}/route_localnet`, value: '1' });
  }
  if (spec.gateway6) {
    enableIpv6(spec.name);
    addAddress(sock, link.index, spec.gateway6, spec.prefix6 ?? 64, spec.name);
    // The host routes between its bridges and out, as net.ipv4.ip_forward does for IPv4.
    writeSysctl({ key: 'net/ipv6/conf/all/forwarding', value: '1' });
  } else {
    disableIpv6(spec.name);
  }
  return { index: link.index, created };
}

/**
 * Deletes a network's bridge if berth made it (see isOwnBridge); a link of that name that berth
 * did not make stays. Says which it was.
 */
export function deleteBridge(spec: { name: string; alias: string }): 'deleted' | 'absent' | 'foreign' {
  const sock = host();
  const link = linkByName(sock, spec.name);
  if (!link) return 'absent';
  if (!isOwnBridge(link, spec.alias)) return 'foreign';
  return deleteLink(spec.name) ? 'deleted' : 'absent';
}

/** The bridge berth made under `mark`; never a link of the host that happens to have its name. */
function ownBridge(sock: NetlinkSocket, name: string, mark: string): nl.LinkInfo {
  const link = linkByName(sock, name);
  if (!link) throw new Error(`bridge ${name} is missing: run \`berth system reconcile\` to restore it`);
  if (!isOwnBridge(link, mark)) throw new Error(`${foreignBridgeMessage(name)} (a link of the host took the name of this network's bridge)`);
  return link;
}

/** Puts a container's host veth back on its bridge (after the bridge was deleted and restored). */
export interface ReattachSpec {
  hostVeth: string;
  bridge: string;
  bridgeMark: string;
  ip?: string;
  ip6?: string;
  mac: string;
  /** The container's side: its permanent entries for the gateways are pointed at the bridge's MAC. */
  sandbox?: { netnsPath: string; ifname: string; gateway?: string; gateway6?: string };
}

export function reattach(spec: ReattachSpec): void {
  const sock = host();
  const bridge = ownBridge(sock, spec.bridge, spec.bridgeMark);
  const veth = linkByName(sock, spec.hostVeth);
  if (!veth) throw new Error(`cannot reattach ${spec.hostVeth} to ${spec.bridge}: the veth is missing`);
  disableIpv6(spec.hostVeth);
  // The neighbour entry went with the old bridge and the static FDB entry with the port's old
  // master: both are put back, as attach made them.
  const steps = [nl.setMaster(veth.index, bridge.index), nl.setHairpin(veth.index), nl.newStaticFdb(veth.index, spec.mac)];
  const labels = [`attach ${spec.hostVeth} to ${spec.bridge}`, `hairpin on ${spec.hostVeth}`, `fdb ${spec.mac} on ${spec.hostVeth}`];
  for (const ip of [spec.ip, spec.ip6]) {
    if (!ip) continue;
    steps.push(nl.newNeighbour(bridge.index, ip, spec.mac));
    labels.push(`neighbour ${ip} on ${spec.bridge}`);
  }
  sock.transact(steps, labels);
  // A bridge made before bridge MACs were derived had a random one; a permanent entry for it
  // would never be corrected by ARP, and the container would lose its gateway.
  const sandbox = spec.sandbox;
  if (sandbox && bridge.mac && fs.existsSync(sandbox.netnsPath)) {
    withNetns(sandbox.netnsPath, () => {
      const inside = new NetlinkSocket();
      try {
        const peer = linkByName(inside, sandbox.ifname);
        if (peer) {
          const gateways = [sandbox.gateway, sandbox.gateway6].filter((gw): gw is string => gw !== undefined);
          inside.transact(
            gateways.map((gw) => nl.newNeighbour(peer.index, gw, bridge.mac!)),
            gateways.map((gw) => `neighbour ${gw} (the gateway) on ${sandbox.ifname}`),
          );
        }
      } finally {
        inside.close();
      }
    });
  }
}

export function deleteLink(name: string): boolean {
  try {
    host().transact([nl.deleteLink({ name })], [`delete link ${name}`]);
    return true;
  } catch (err) {
    if ((err as { errno?: number }).errno === ENODEV) return false;
    throw err;
  }
}

export interface SandboxSpec {
  path: string;
}

/** A container's network namespace with its loopback up (what `--network none` is). */
export function createSandbox(spec: SandboxSpec): void {
  createNetns(spec.path, initSandbox);
}

/** Run inside a new container namespace. */
function initSandbox(): void {
  // Interfaces made in this namespace from now on (its veth peers) start without IPv6; lo keeps ::1.
  disableIpv6('default');
  const sock = new NetlinkSocket();
  try {
    sock.transact([nl.setLinkUp({ index: 1 })], ['bring lo up']);
  } finally {
    sock.close();
  }
}

/**
 * A container namespace made ahead of time for the pool (engine/netns-pool.ts), held by the
 * descriptor returned until adoptSandbox binds it or releasePooledSandbox drops it.
 */
export function createPooledSandbox(): number {
  return createHeldNetns(initSandbox);
}

/**
 * A pooled namespace takes the container's path. Should that fail, the namespace is made here
 * instead, so the calls queued behind this one find it either way; `pooled` says which.
 */
export function adoptSandbox(spec: SandboxSpec & { fd: number }): { pooled: boolean } {
  try {
    bindHeldNetns(spec.fd, spec.path);
    return { pooled: true };
  } catch {
    createSandbox({ path: spec.path });
    return { pooled: false };
  }
}

export function releasePooledSandbox(spec: { fd: number }): void {
  closeHeldNetns(spec.fd);
}

/**
 * Drops a container's namespace. With `killProcesses`, whatever still runs in it is killed first
 * (it would keep the namespace alive): the /proc scan that finds them runs here, on the kernel
 * thread, rather than on the event loop.
 */
export function deleteSandbox(spec: SandboxSpec & { killProcesses?: boolean }): void {
  if (spec.killProcesses) killProcessesInNetns(spec.path);
  deleteNetns(spec.path);
}

export interface AttachSpec {
  netnsPath: string;
  bridge: string;
  /** The bridge's mark: a container is only ever plugged into berth's own bridge. */
  bridgeMark: string;
  hostVeth: string;
  alias: string;
  ifname: string;
  mac: string;
  /** The endpoint's IPv4 side; absent on an IPv6-only network. */
  ip?: string;
  prefix?: number;
  broadcast?: string;
  gateway?: string;
  /** The endpoint's IPv6 side on a dual-stack network: address, prefix length, gateway. */
  ip6?: { ip: string; prefix: number; gateway: string };
  mtu?: number;
  defaultRoute: boolean;
  /** Make the namespace first (saves a round trip for a new container). */
  createSandbox?: boolean;
  /** The interface's ARP retransmit time (the kernel's default is 1 s). */
  arpRetransMs?: number;
}

/**
 * Plugs a sandbox into a bridge: one NEWLINK makes the veth with its peer inside the sandbox and
 * the host end up on the bridge; one batch inside the sandbox brings the peer up and gives it its
 * address and route. On failure the host end is deleted, which also removes the peer.
 */
export function attach(spec: AttachSpec): { hostIndex: number } {
  if (spec.createSandbox) createSandbox({ path: spec.netnsPath });
  const sock = host();
  const bridge = ownBridge(sock, spec.bridge, spec.bridgeMark);
  const nsFd = openNetns(spec.netnsPath);
  try {
    transactVeth(sock, spec, bridge.index, nsFd);
  } finally {
    fs.closeSync(nsFd);
  }
  try {
    disableIpv6(spec.hostVeth);
    withNetns(spec.netnsPath, () => configureInside(spec, bridge.mac));
  } catch (err) {
    deleteLink(spec.hostVeth);
    throw err;
  }
  const hostEnd = linkByName(sock, spec.hostVeth);
  const ips = [spec.ip, spec.ip6?.ip].filter((ip): ip is string => ip !== undefined);
  if (hostEnd) {
    try {
      sock.transact(
        [
          nl.setAlias(hostEnd.index, spec.alias),
          nl.setHairpin(hostEnd.index),
          nl.newStaticFdb(hostEnd.index, spec.mac),
          ...ips.map((ip) => nl.newNeighbour(bridge.index, ip, spec.mac)),
        ],
        [`mark ${spec.hostVeth}`, `hairpin on ${spec.hostVeth}`, `fdb ${spec.mac} on ${spec.hostVeth}`, ...ips.map((ip) => `neighbour ${ip} on ${spec.bridge}`)],
      );
    } catch (err) {
      // The caller releases the endpoint: nothing of it may stay in the kernel either.
      deleteLink(spec.hostVeth);
      for (const ip of ips) forgetNeighbour(spec.bridge, ip);
      throw err;
    }
  }
  return { hostIndex: hostEnd?.index ?? 0 };
}

const EXFULL = 54;
const BRIDGE_PORT_LIMIT = 1024;

/** The veth, its peer in the sandbox and the host end on the bridge, in one message. */
function transactVeth(sock: NetlinkSocket, spec: AttachSpec, bridgeIndex: number, nsFd: number): void {
  try {
    sock.transact(
      [
        nl.newVeth({
          name: spec.hostVeth,
          masterIndex: bridgeIndex,
          up: true,
          mtu: spec.mtu,
          peerName: spec.ifname,
          peerNetnsFd: nsFd,
          peerMac: spec.mac,
        }),
      ],
      [`create veth ${spec.hostVeth} for ${spec.ifname}`],
    );
  } catch (err) {
    if ((err as { errno?: number }).errno !== EXFULL) throw err;
    deleteLink(spec.hostVeth);
    throw new Error(`bridge ${spec.bridge} already has ${BRIDGE_PORT_LIMIT} ports, the kernel's limit for one bridge: put further containers on another network`);
  }
}

/**
 * `gatewayMac`, the bridge's fixed MAC (see ensureBridge), becomes a permanent neighbour entry for
 * the gateway, so a container never ARPs for it. An ARP request is flooded to every port of the
 * bridge, one copy per port on the CPU's receive backlog (net.core.netdev_max_backlog, 1,000 by
 * default); with ~1,000 ports those copies fill it and the gateway's reply, queued behind them, is
 * dropped: the container cannot answer anything routed (a LAN peer on a published port times out).
 */
function configureInside(spec: AttachSpec, gatewayMac: string | undefined): void {
  const sock = new NetlinkSocket();
  try {
    const peer = linkByName(sock, spec.ifname);
    if (!peer) throw new Error(`interface ${spec.ifname} did not appear in the sandbox`);
    // Before it goes up: a runtime's namespace (CNI) may not have IPv6 off by default, and a
    // dual-stack interface must never take a router advertisement.
    if (spec.ip6) enableIpv6(spec.ifname);
    else disableIpv6(spec.ifname);
    if (spec.arpRetransMs) writeNetSysctl('ipv4', `neigh/${spec.ifname}/retrans_time_ms`, String(spec.arpRetransMs));
    const steps = [nl.setLinkUp({ index: peer.index })];
    const labels = [`bring ${spec.ifname} up`];
    if (spec.ip) {
      steps.push(nl.newAddress(peer.index, spec.ip, spec.prefix ?? 32, spec.broadcast));
      labels.push(`add ${spec.ip}/${spec.prefix} to ${spec.ifname}`);
    }
    if (spec.ip6) {
      steps.push(nl.newAddress(peer.index, spec.ip6.ip, spec.ip6.prefix));
      labels.push(`add ${spec.ip6.ip}/${spec.ip6.prefix} to ${spec.ifname}`);
    }
    const gateways = [spec.gateway, spec.ip6?.gateway].filter((gw): gw is string => gw !== undefined);
    if (gatewayMac) {
      for (const gw of gateways) {
        steps.push(nl.newNeighbour(peer.index, gw, gatewayMac));
        labels.push(`neighbour ${gw} (the gateway) on ${spec.ifname}`);
      }
    }
    if (spec.defaultRoute) {
      for (const gw of gateways) {
        steps.push(nl.newDefaultRoute(gw, peer.index));
        labels.push(`add default route via ${gw}`);
      }
    }
    sock.transact(steps, labels);
  } finally {
    sock.close();
  }
}

/**
 * Removes a sandbox's interface (and so its veth pair; else the host end by name), and the
 * bridge's neighbour entry for its address. Idempotent.
 */
export interface DetachSpec {
  netnsPath: string;
  ifname: string;
  hostVeth?: string;
  bridge?: string;
  ip?: string;
  ip6?: string;
  /**
   * Where the default route goes if it leaves with `ifname` (Docker moves it to the next network's
   * gateway); moved before the interface is deleted, so the sandbox is never without one. Each
   * family moves on its own: the next network may have only IPv4.
   */
  nextDefaultRoute?: { ifname: string; gateway: string; gateway6?: string };
}

export function detach(spec: DetachSpec): boolean {
  if (spec.bridge && spec.ip) forgetNeighbour(spec.bridge, spec.ip);
  if (spec.bridge && spec.ip6) forgetNeighbour(spec.bridge, spec.ip6);
  if (!fs.existsSync(spec.netnsPath)) return spec.hostVeth ? deleteLink(spec.hostVeth) : false;
  return withNetns(spec.netnsPath, () => {
    const sock = new NetlinkSocket();
    try {
      if (spec.nextDefaultRoute) moveDefaultRoute(sock, spec.ifname, spec.nextDefaultRoute);
      sock.transact([nl.deleteLink({ name: spec.ifname })], [`delete ${spec.ifname}`]);
      return true;
    } catch (err) {
      if ((err as { errno?: number }).errno === ENODEV) return false;
      throw err;
    } finally {
      sock.close();
    }
  });
}

/** Moves the default route of each family from `leaving` to `next`, if `leaving` carries it. */
function moveDefaultRoute(sock: NetlinkSocket, leaving: string, next: { ifname: string; gateway: string; gateway6?: string }): void {
  const from = linkByName(sock, leaving);
  const to = linkByName(sock, next.ifname);
  if (!from || !to) return;
  for (const [family, gateway] of [[nl.FAMILY_INET, next.gateway], [nl.FAMILY_INET6, next.gateway6]] as const) {
    const defaults = defaultRoutes(sock, family);
    if (!defaults.some((r) => r.oif === from.index)) continue;
    for (const r of defaults) {
      if (r.oif) sock.transact([nl.deleteDefaultRoute(r.oif, family)], ['delete default route']);
    }
    if (gateway) sock.transact([nl.newDefaultRoute(gateway, to.index)], [`add default route via ${gateway}`]);
  }
}

function defaultRoutes(sock: NetlinkSocket, family: nl.Family): nl.RouteInfo[] {
  return sock
    .dump(nl.dumpRoutes(family), 'list routes')
    .map((m) => nl.parseRoute(m.body))
    .filter((r): r is nl.RouteInfo => r !== undefined && r.prefix === 0 && r.table === 254);
}

function forgetNeighbour(bridgeName: string, ip: string): void {
  const bridge = linkByName(host(), bridgeName);
  if (!bridge) return;
  try {
    host().transact([nl.deleteNeighbour(bridge.index, ip)], [`forget neighbour ${ip}`]);
  } catch (err) {
    if ((err as { errno?: number }).errno !== ENOENT) throw err;
  }
}

/** Drops the bridge's neighbour entries for addresses whose containers left (namespace dropped). */
export function forgetNeighbours(spec: { bridge: string; ips: string[] }): void {
  for (const ip of spec.ips) forgetNeighbour(spec.bridge, ip);
}

export interface HostView {
  links: nl.LinkInfo[];
  addresses: nl.AddressInfo[];
  routes: nl.RouteInfo[];
  /** IPv6 addresses and main-table routes, when asked for (`ipv6: true`). */
  addresses6?: nl.AddressInfo[];
  routes6?: nl.RouteInfo[];
}

/** Links, IPv4 addresses and main-table routes of the host namespace (or of `netnsPath`); IPv6 ones too if asked. */
export function inspect(spec: { netnsPath?: string; ipv6?: boolean } = {}): HostView {
  const addressesOf = (sock: NetlinkSocket, family: nl.Family) =>
    sock
      .dump(nl.dumpAddresses(family), 'list addresses')
      .map((m) => nl.parseAddress(m.body))
      .filter((a): a is nl.AddressInfo => a !== undefined);
  const routesOf = (sock: NetlinkSocket, family: nl.Family) =>
    sock
      .dump(nl.dumpRoutes(family), 'list routes')
      .map((m) => nl.parseRoute(m.body))
      .filter((r): r is nl.RouteInfo => r !== undefined && r.table === 254);
  const read = (sock: NetlinkSocket): HostView => ({
    links: sock.dump(nl.dumpLinks(), 'list links').map((m) => nl.parseLink(m.body)),
    addresses: addressesOf(sock, nl.FAMILY_INET),
    routes: routesOf(sock, nl.FAMILY_INET),
    ...(spec.ipv6 && { addresses6: addressesOf(sock, nl.FAMILY_INET6), routes6: routesOf(sock, nl.FAMILY_INET6) }),
  });
  if (!spec.netnsPath) return read(host());
  return withNetns(spec.netnsPath, () => {
    const sock = new NetlinkSocket();
    try {
      return read(sock);
    } finally {
      sock.close();
    }
  });
}

/** IPv4 (or IPv6) addresses of the host namespace (a lighter dump than inspect). */
export function addresses(spec: { ipv6?: boolean }): nl.AddressInfo[] {
  return host()
    .dump(nl.dumpAddresses(spec.ipv6 ? nl.FAMILY_INET6 : nl.FAMILY_INET), 'list addresses')
    .map((m) => nl.parseAddress(m.body))
    .filter((a): a is nl.AddressInfo => a !== undefined);
}

export function writeSysctl(spec: { key: string; value: string }): void {
  const net = /^net\/(ipv4|ipv6)\/(.+)$/.exec(spec.key);
  if (net) writeNetSysctl(net[1] as 'ipv4' | 'ipv6', net[2]!, spec.value);
  else fs.writeFileSync(`/proc/sys/${spec.key}`, spec.value);
}

export function readSysctl(spec: { key: string }): string {
  return fs.readFileSync(`/proc/sys/${spec.key}`, 'utf8').trim();
}

/** Runs an nftables script in the host namespace as one transaction. */
export function nft(spec: { script: string }): string {
  hostNft ??= new NftContext();
  return hostNft.run(spec.script);
}

export function prepareRunDir(spec: { dir: string }): void {
  ensureSharedMountDir(spec.dir);
}

export function releaseRunDir(spec: { dir: string }): void {
  releaseSharedMountDir(spec.dir);
}

export function netnsExists(spec: { path: string }): boolean {
  return fs.existsSync(spec.path);
}

export function ping(): string {
  return 'pong';
}
