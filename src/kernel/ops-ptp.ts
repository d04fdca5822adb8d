/**
 * Kernel operations of point-to-point networks (rkt's default, the CNI ptp plugin): no bridge; a
 * veth pair per container whose host end carries the network's gateway as a /32 and a /32 route to
 * the container. The container has its address as a /32, a route to the gateway out of its
 * interface, and the subnet and the default route via the gateway, so containers reach each other
 * through the host's routing. The gateway also sits on an anchor of the network's own (a veth
 * pair), so it exists, and the network's resolver can listen on it, while no container runs.
 * A dual-stack network does the same in IPv6, with /128s.
 */
import * as fs from 'node:fs';
import * as nl from './netlink/codec.js';
import { NetlinkSocket, EEXIST } from './netlink/socket.js';
import { writeSysctl } from './ops.js';
import { addAddress, disableIpv6, enableIpv6, host, linkByName } from './link-steps.js';
import { attachL3Veth, type L3Family } from './l3-veth.js';

export interface PtpAnchorSpec {
  name: string;
  peer: string;
  /** berth's mark on the pair (`berth:<owner>:network:<id>`). */
  mark: string;
  gateway: string;
  /** The IPv6 gateway of a dual-stack network. */
  gateway6?: string;
}

/** IPv6 on (with the gateway's /128) or off on a host-side link of the network. */
function hostSide6(sock: NetlinkSocket, link: nl.LinkInfo, gateway6: string | undefined): void {
  if (!gateway6) {
    disableIpv6(link.name);
    return;
  }
  enableIpv6(link.name);
  addAddress(sock, link.index, gateway6, 128, link.name);
  // The host routes between its containers and out, as net.ipv4.ip_forward does for IPv4.
  writeSysctl({ key: 'net/ipv6/conf/all/forwarding', value: '1' });
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
  hostSide6(sock, link, spec.gateway6);
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
  /** The IPv6 side on a dual-stack network: the container's address, the network's subnet and gateway. */
  ip6?: { ip: string; subnet: string; prefix: number; gateway: string };
  mtu?: number;
  defaultRoute: boolean;
  createSandbox?: boolean;
}

/**
 * The pair (l3-veth.ts); the host end gets the gateway /32 (and /128), a /32 route to the container
 * and route_localnet (the host reaches ports published on 127.0.0.1); the container end gets its
 * /32, the route to the gateway and the routes via it, in each family.
 */
export function attachPtp(spec: PtpAttachSpec): void {
  const families: L3Family[] = [{ ip: spec.ip, hostPrefix: 32, subnet: spec.subnet, prefix: spec.subnetPrefix, gateway: spec.gateway }];
  if (spec.ip6) families.push({ ip: spec.ip6.ip, hostPrefix: 128, subnet: spec.ip6.subnet, prefix: spec.ip6.prefix, gateway: spec.ip6.gateway });
  attachL3Veth(spec, families, (sock, hostEnd) => {
    hostSide6(sock, hostEnd, spec.ip6?.gateway);
    writeSysctl({ key: `net/ipv4/conf/${spec.hostVeth}/route_localnet`, value: '1' });
    sock.transact([nl.setAlias(hostEnd.index, spec.alias)], [`mark ${spec.hostVeth}`]);
    addAddress(sock, hostEnd.index, spec.gateway, 32, spec.hostVeth);
    sock.transact([nl.newRoute({ dst: spec.ip, prefix: 32, oifIndex: hostEnd.index, src: spec.gateway })], [`route ${spec.ip}/32 via ${spec.hostVeth}`]);
    if (spec.ip6) {
      sock.transact([nl.newRoute({ dst: spec.ip6.ip, prefix: 128, oifIndex: hostEnd.index, src: spec.ip6.gateway })], [`route ${spec.ip6.ip}/128 via ${spec.hostVeth}`]);
    }
  });
}

/** Whether the host still routes to the container (each of its addresses) through its veth (the reconciler restores it). */
export function ptpRouteMissing(spec: { hostVeth: string; ip: string; ip6?: string }): boolean {
  const sock = host();
  const veth = linkByName(sock, spec.hostVeth);
  if (!veth) return false;
  const has = (family: nl.Family, ip: string, prefix: number) =>
    sock
      .dump(nl.dumpRoutes(family), 'list routes')
      .map((m) => nl.parseRoute(m.body))
      .some((r) => r !== undefined && r.dst === ip && r.prefix === prefix && r.oif === veth.index);
  return !has(nl.FAMILY_INET, spec.ip, 32) || (spec.ip6 !== undefined && !has(nl.FAMILY_INET6, spec.ip6, 128));
}

/** Puts the host's /32 (and /128) route to the container back. */
export function restorePtpRoute(spec: { hostVeth: string; ip: string; gateway: string; ip6?: string; gateway6?: string }): void {
  const sock = host();
  const veth = linkByName(sock, spec.hostVeth);
  if (!veth) throw new Error(`cannot restore the route to ${spec.ip}: veth ${spec.hostVeth} is missing`);
  addAddress(sock, veth.index, spec.gateway, 32, spec.hostVeth);
  sock.transact([nl.newRoute({ dst: spec.ip, prefix: 32, oifIndex: veth.index, src: spec.gateway })], [`route ${spec.ip}/32 via ${spec.hostVeth}`]);
  if (spec.ip6 && spec.gateway6) {
    addAddress(sock, veth.index, spec.gateway6, 128, spec.hostVeth);
    sock.transact([nl.newRoute({ dst: spec.ip6, prefix: 128, oifIndex: veth.index, src: spec.gateway6 })], [`route ${spec.ip6}/128 via ${spec.hostVeth}`]);
  }
}
