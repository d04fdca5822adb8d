/**
 * Kernel operations of routed networks, Calico's model: a veth pair per container, no bridge and
 * no address on the host end. The container has its address as a /32, a link route to 169.254.1.1
 * and every other route via it; the host end answers ARP for 169.254.1.1 (proxy ARP: the host
 * routes that address elsewhere, so the kernel answers for it with the veth's MAC) and the host
 * has a /32 route to the container. Everything is routed at L3: containers never learn each
 * other's MACs. Routes between hosts are BIRD's business (src/cluster/bgp/).
 */
import * as fs from 'node:fs';
import * as nl from './netlink/codec.js';
import { NetlinkSocket } from './netlink/socket.js';
import { createSandbox, deleteLink, writeSysctl } from './ops.js';
import { openNetns, withNetns } from './netns.js';
import { disableIpv6, host, linkByName } from './link-steps.js';

/** The containers' gateway: link-local, never assigned to anything (Calico's). */
const ROUTED_GATEWAY = '169.254.1.1';

export interface RoutedAttachSpec {
  netnsPath: string;
  hostVeth: string;
  /** berth's mark on the host end (`berth:<owner>:endpoint:<id>`). */
  alias: string;
  ifname: string;
  mac: string;
  ip: string;
  /** The network's pool, routed via the gateway even when another interface has the default route. */
  pool: string;
  poolPrefix: number;
  mtu?: number;
  defaultRoute: boolean;
  createSandbox?: boolean;
}

/** Proxy ARP on the host end, answered at once; forwarding; route_localnet for ports published on 127.0.0.1. */
function hostEndSysctls(veth: string): void {
  writeSysctl({ key: `net/ipv4/conf/${veth}/proxy_arp`, value: '1' });
  writeSysctl({ key: `net/ipv4/neigh/${veth}/proxy_delay`, value: '0' });
  writeSysctl({ key: `net/ipv4/conf/${veth}/forwarding`, value: '1' });
  writeSysctl({ key: `net/ipv4/conf/${veth}/route_localnet`, value: '1' });
}

/**
 * One NEWLINK makes the pair with its peer inside the sandbox; then the host end's sysctls, mark
 * and /32 route, and the container's side. On failure the host end is deleted, which takes the peer.
 */
export function attachRouted(spec: RoutedAttachSpec): void {
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
    hostEndSysctls(spec.hostVeth);
    sock.transact(
      [nl.setAlias(hostEnd.index, spec.alias), nl.newRoute({ dst: spec.ip, prefix: 32, oifIndex: hostEnd.index })],
      [`mark ${spec.hostVeth}`, `route ${spec.ip}/32 via ${spec.hostVeth}`],
    );
    const hostMac = hostEnd.mac;
    withNetns(spec.netnsPath, () => configureInside(spec, hostMac));
  } catch (err) {
    deleteLink(spec.hostVeth);
    throw err;
  }
}

/**
 * The gateway's neighbour entry is also written, permanent, with the host end's MAC (which never
 * changes while the pair lives): proxy ARP answers only when the host routes 169.254.1.1 out of
 * another interface, which a host without a default route does not, and the first packet need not
 * wait for an ARP round trip.
 */
function configureInside(spec: RoutedAttachSpec, hostMac: string | undefined): void {
  const sock = new NetlinkSocket();
  try {
    const peer = linkByName(sock, spec.ifname);
    if (!peer) throw new Error(`interface ${spec.ifname} did not appear in the sandbox`);
    disableIpv6(spec.ifname);
    const steps = [
      nl.setLinkUp({ index: peer.index }),
      nl.newAddress(peer.index, spec.ip, 32),
      nl.newRoute({ dst: ROUTED_GATEWAY, prefix: 32, oifIndex: peer.index, src: spec.ip }),
      nl.newRoute({ dst: spec.pool, prefix: spec.poolPrefix, oifIndex: peer.index, gateway: ROUTED_GATEWAY, src: spec.ip }),
    ];
    const labels = [`bring ${spec.ifname} up`, `add ${spec.ip}/32 to ${spec.ifname}`, `route to the gateway ${ROUTED_GATEWAY}`, `route ${spec.pool}/${spec.poolPrefix} via the gateway`];
    if (hostMac) {
      steps.push(nl.newNeighbour(peer.index, ROUTED_GATEWAY, hostMac));
      labels.push(`neighbour ${ROUTED_GATEWAY} (the gateway) on ${spec.ifname}`);
    }
    if (spec.defaultRoute) {
      steps.push(nl.newDefaultRoute(ROUTED_GATEWAY, peer.index));
      labels.push(`add default route via ${ROUTED_GATEWAY}`);
    }
    sock.transact(steps, labels);
  } finally {
    sock.close();
  }
}

/** Puts the host's /32 route to the container back (and the host end's sysctls, if the veth was remade elsewhere). */
export function restoreRoutedRoute(spec: { hostVeth: string; ip: string }): void {
  const sock = host();
  const veth = linkByName(sock, spec.hostVeth);
  if (!veth) throw new Error(`cannot restore the route to ${spec.ip}: veth ${spec.hostVeth} is missing`);
  hostEndSysctls(spec.hostVeth);
  sock.transact([nl.newRoute({ dst: spec.ip, prefix: 32, oifIndex: veth.index })], [`route ${spec.ip}/32 via ${spec.hostVeth}`]);
}
