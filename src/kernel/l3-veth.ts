/**
 * A container's veth pair on a network without a bridge (point-to-point and routed networks): the
 * container reaches everything through the host's routing. The pair is made with its peer inside
 * the sandbox in one NEWLINK; the caller sets up the host end; the container end gets each address
 * as a host route (/32, /128), a link route to its gateway and its subnet (and, on its first
 * network, the default route) via that gateway. On failure the host end is deleted, which takes
 * the peer with it.
 */
import * as fs from 'node:fs';
import * as nl from './netlink/codec.js';
import { NetlinkSocket } from './netlink/socket.js';
import { createSandbox, deleteLink } from './ops.js';
import { openNetns, withNetns } from './netns.js';
import { disableIpv6, enableIpv6, host, linkByName } from './link-steps.js';

export interface L3VethSpec {
  netnsPath: string;
  hostVeth: string;
  ifname: string;
  mac: string;
  mtu?: number;
  defaultRoute: boolean;
  createSandbox?: boolean;
}

/** One address family of the container end: its address, its gateway, and what it routes via that gateway. */
export interface L3Family {
  ip: string;
  /** 32 or 128. */
  hostPrefix: number;
  subnet: string;
  prefix: number;
  gateway: string;
}

/** Makes the pair; `hostSide` sets up the host end; then the container end gets `families` (IPv6 on only if one is IPv6). */
export function attachL3Veth(spec: L3VethSpec, families: L3Family[], hostSide: (sock: NetlinkSocket, hostEnd: nl.LinkInfo) => void): void {
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
    hostSide(sock, hostEnd);
    withNetns(spec.netnsPath, () => configureContainerEnd(spec, families, hostEnd.mac));
  } catch (err) {
    deleteLink(spec.hostVeth);
    throw err;
  }
}

/**
 * The gateway's neighbour entry is written too, permanent, with the host end's MAC (which never
 * changes while the pair lives): the container need not ARP for it, and proxy ARP, which answers
 * only when the host routes the gateway out of another interface, is not relied on.
 */
function configureContainerEnd(spec: L3VethSpec, families: L3Family[], hostMac: string | undefined): void {
  const sock = new NetlinkSocket();
  try {
    const peer = linkByName(sock, spec.ifname);
    if (!peer) throw new Error(`interface ${spec.ifname} did not appear in the sandbox`);
    // Before it goes up: a runtime's namespace may have IPv6 on, and no interface takes an RA.
    if (families.some((f) => f.hostPrefix === 128)) enableIpv6(spec.ifname);
    else disableIpv6(spec.ifname);
    const steps = [nl.setLinkUp({ index: peer.index })];
    const labels = [`bring ${spec.ifname} up`];
    for (const f of families) {
      steps.push(
        nl.newAddress(peer.index, f.ip, f.hostPrefix),
        nl.newRoute({ dst: f.gateway, prefix: f.hostPrefix, oifIndex: peer.index, src: f.ip }),
        nl.newRoute({ dst: f.subnet, prefix: f.prefix, oifIndex: peer.index, gateway: f.gateway, src: f.ip }),
      );
      labels.push(`add ${f.ip}/${f.hostPrefix} to ${spec.ifname}`, `route to the gateway ${f.gateway}`, `route ${f.subnet}/${f.prefix} via the gateway`);
      if (hostMac) {
        steps.push(nl.newNeighbour(peer.index, f.gateway, hostMac));
        labels.push(`neighbour ${f.gateway} (the gateway) on ${spec.ifname}`);
      }
      if (spec.defaultRoute) {
        steps.push(nl.newDefaultRoute(f.gateway, peer.index));
        labels.push(`add default route via ${f.gateway}`);
      }
    }
    sock.transact(steps, labels);
  } finally {
    sock.close();
  }
}
