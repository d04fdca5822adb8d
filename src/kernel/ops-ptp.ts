/**
 * Kernel operations of point-to-point networks (rkt's default, the CNI ptp plugin): no bridge; a
 * veth pair per container whose host end carries the network's gateway as a /32 and a /32 route to
 * the container. The container has its address as a /32, a route to the gateway out of its
 * interface, and the subnet and the default route via the gateway, so containers reach each other
 * through the host's routing. The gateway also sits on an anchor of the network's own (a veth
 * pair), so it exists, and the network's resolver can listen on it, while no container runs.
 */
import * as fs from 'node:fs';
import * as nl from './netlink/codec.js';
import { NetlinkSocket, EEXIST } from './netlink/socket.js';
import { createSandbox, deleteLink, writeSysctl } from './ops.js';
import { openNetns, withNetns } from './netns.js';
import { addAddress, disableIpv6, host, linkByName } from './link-steps.js';

export interface PtpAnchorSpec {
  name: string;
  peer: string;
  /** berth's mark on the pair (`berth:<owner>:network:<id>`). */
  mark: string;
  gateway: string;
}

/** The network's anchor pair with the gateway on it (idempotent: the reconciler restores it). */
export function ensurePtpAnchor(spec: PtpAnchorSpec): { created: boolean } {
  const sock = host();
  let link = linkByName(sock, spec.name);
  let created = false;
  if (link && link.alias !== spec.mark) throw Object.assign(new Error(`link ${spec.name} exists on the host and berth did not create it`), { errno: EEXIST });
  if (!link) {
    const here = fs.openSync('/proc/thread-self/ns/net', 'r');
    try {
      sock.transact([nl.newVeth({ name: spec.name, up: true, peerName: spec.peer, peerNetnsFd: here })], [`create anchor ${spec.name}`]);
    } finally {
      fs.closeSync(here);
    }
    link = linkByName(sock, spec.name);
    if (!link) throw new Error(`anchor ${spec.name} vanished right after it was created`);
    created = true;
  }
  const peer = linkByName(sock, spec.peer);
  const steps = [nl.setAlias(link.index, spec.mark), nl.setLinkUp({ index: link.index })];
  if (peer) steps.push(nl.setAlias(peer.index, spec.mark), nl.setLinkUp({ index: peer.index }));
  sock.transact(steps, steps.map((_, i) => `mark and bring up the anchor (${i})`));
  disableIpv6(spec.name);
  addAddress(sock, link.index, spec.gateway, 32, spec.name);
  return { created };
}

export interface PtpAttachSpec {
  netnsPath: string;
  hostVeth: string;
  /** berth's mark on the host end (`berth:<owner>:endpoint:<id>`). */
  alias: string;
  ifname: string;
  mac: string;
  ip: string;
  subnet: string;
  subnetPrefix: number;
  gateway: string;
  mtu?: number;
  defaultRoute: boolean;
  createSandbox?: boolean;
}

/**
 * One NEWLINK makes the pair with its peer inside the sandbox; the host end gets the gateway /32,
 * a /32 route to the container and route_localnet (the host reaches ports published on 127.0.0.1);
 * the container end gets its /32, the route to the gateway and the routes via it. On failure the
 * host end is deleted, which takes the peer with it.
 */
export function attachPtp(spec: PtpAttachSpec): void {
  if (spec.createSandbox) createSandbox({ path: spec.netnsPath });
  const sock = host();
  const nsFd = openNetns(spec.netnsPath);
  try {
    sock.transact([nl.newVeth({ name: spec.hostVeth, up: true, mtu: spec.mtu, peerName: spec.ifname, peerNetnsFd: nsFd, peerMac: spec.mac })], [`create veth ${spec.hostVeth} for ${spec.ifname}`]);
  } finally {
    fs.closeSync(nsFd);
  }
  try {
    const hostEnd = linkByName(sock, spec.hostVeth);
    if (!hostEnd) throw new Error(`veth ${spec.hostVeth} did not appear`);
    disableIpv6(spec.hostVeth);
    writeSysctl({ key: `net/ipv4/conf/${spec.hostVeth}/route_localnet`, value: '1' });
    sock.transact([nl.setAlias(hostEnd.index, spec.alias)], [`mark ${spec.hostVeth}`]);
    addAddress(sock, hostEnd.index, spec.gateway, 32, spec.hostVeth);
    sock.transact([nl.newRoute({ dst: spec.ip, prefix: 32, oifIndex: hostEnd.index, src: spec.gateway })], [`route ${spec.ip}/32 via ${spec.hostVeth}`]);
    const hostMac = hostEnd.mac;
    withNetns(spec.netnsPath, () => configureInside(spec, hostMac));
  } catch (err) {
    deleteLink(spec.hostVeth);
    throw err;
  }
}

function configureInside(spec: PtpAttachSpec, hostMac: string | undefined): void {
  const sock = new NetlinkSocket();
  try {
    const peer = linkByName(sock, spec.ifname);
    if (!peer) throw new Error(`interface ${spec.ifname} did not appear in the sandbox`);
    disableIpv6(spec.ifname);
    const steps = [
      nl.setLinkUp({ index: peer.index }),
      nl.newAddress(peer.index, spec.ip, 32),
      nl.newRoute({ dst: spec.gateway, prefix: 32, oifIndex: peer.index, src: spec.ip }),
      nl.newRoute({ dst: spec.subnet, prefix: spec.subnetPrefix, oifIndex: peer.index, gateway: spec.gateway, src: spec.ip }),
    ];
    const labels = [`bring ${spec.ifname} up`, `add ${spec.ip}/32 to ${spec.ifname}`, `route to the gateway ${spec.gateway}`, `route ${spec.subnet}/${spec.subnetPrefix} via the gateway`];
    // The host end's MAC never changes while the pair lives: the container need not ARP for it.
    if (hostMac) {
      steps.push(nl.newNeighbour(peer.index, spec.gateway, hostMac));
      labels.push(`neighbour ${spec.gateway} (the gateway) on ${spec.ifname}`);
    }
    if (spec.defaultRoute) {
      steps.push(nl.newDefaultRoute(spec.gateway, peer.index));
      labels.push(`add default route via ${spec.gateway}`);
    }
    sock.transact(steps, labels);
  } finally {
    sock.close();
  }
}

/** Whether the host still routes to the container through its veth (the reconciler restores it). */
export function ptpRouteMissing(spec: { hostVeth: string; ip: string }): boolean {
  const sock = host();
  const veth = linkByName(sock, spec.hostVeth);
  if (!veth) return false;
  const routes = sock.dump(nl.dumpRoutes(), 'list routes').map((m) => nl.parseRoute(m.body));
  return !routes.some((r) => r !== undefined && r.dst === spec.ip && r.prefix === 32 && r.oif === veth.index);
}

/** Puts the host's /32 route to the container back. */
export function restorePtpRoute(spec: { hostVeth: string; ip: string; gateway: string }): void {
  const sock = host();
  const veth = linkByName(sock, spec.hostVeth);
  if (!veth) throw new Error(`cannot restore the route to ${spec.ip}: veth ${spec.hostVeth} is missing`);
  addAddress(sock, veth.index, spec.gateway, 32, spec.hostVeth);
  sock.transact([nl.newRoute({ dst: spec.ip, prefix: 32, oifIndex: veth.index, src: spec.gateway })], [`route ${spec.ip}/32 via ${spec.hostVeth}`]);
}
