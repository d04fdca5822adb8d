/**
 * rtnetlink requests of the overlay data plane: a VXLAN device and the entries that make a remote
 * endpoint reachable without flooding. Pure code like codec.ts; constants follow linux/if_link.h,
 * linux/neighbour.h and linux/if_bridge.h. The device matches
 * `ip link add NAME type vxlan id VNI local IP dev UNDERLAY dstport 4789 nolearning proxy`
 * (anchors/multihost §2, the commands that worked on this kernel).
 */
import { be16, nest, tlv, u32, u8 } from './tlv.js';
import { NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, RTM_NEWLINK, RTM_SETLINK, ipv4Bytes, macBytes, parseAttrs, type NetlinkRequest } from './codec.js';

const RTM_NEWNEIGH = 28;
const RTM_DELNEIGH = 29;
const AF_BRIDGE = 7;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_PROTINFO = 12;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_VXLAN_ID = 1;
const IFLA_VXLAN_LINK = 3;
const IFLA_VXLAN_LOCAL = 4;
const IFLA_VXLAN_TTL = 5;
const IFLA_VXLAN_LEARNING = 7;
const IFLA_VXLAN_PROXY = 11;
const IFLA_VXLAN_PORT = 15;
const IFLA_VXLAN_COLLECT_METADATA = 25;
const IFLA_VXLAN_VNIFILTER = 30;
const IFF_NOARP = 0x80;
const RTM_NEWTUNNEL = 120;
const VXLAN_VNIFILTER_ENTRY = 1;
const VXLAN_VNIFILTER_ENTRY_START = 1;
const IFLA_BRPORT_LEARNING = 8;
const IFLA_BRPORT_UNICAST_FLOOD = 9;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const NUD_PERMANENT = 0x80;
const NTF_SELF = 0x02;

/** IANA's VXLAN port (Linux's default is 8472, the pre-standard one). */
export const VXLAN_PORT = 4789;
/** Outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD_IPV4 = 50;
export const VNI_MIN = 1;
export const VNI_MAX = 0xffffff;


function ifinfomsg(index: number, family = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  return b;
}

export interface VxlanSpec {
  name: string;
  vni: number;
  /** This host's underlay address: the VTEP, the outer source address. */
  local: string;
  /** The underlay interface's index: the device's MTU is capped at its MTU − 50. */
  underlayIndex: number;
  mtu: number;
  masterIndex?: number;
  /** The UDP port (default IANA's 4789; host subnets use Flannel's 8472). */
  port?: number;
  /** Answer ARP from the neighbour table (default on; a routed device needs no ARP at all). */
  proxy?: boolean;
  /** The device's own MAC (default random): a host subnet's VTEP MAC must survive a restart. */
  mac?: string;
}

/** A VXLAN device with learning off and ARP answered locally from its neighbour table (proxy). */
export function newVxlan(spec: VxlanSpec): NetlinkRequest {
  if (!Number.isInteger(spec.vni) || spec.vni < VNI_MIN || spec.vni > VNI_MAX) throw new Error(`VNI ${spec.vni} is out of range ${VNI_MIN}-${VNI_MAX}`);
  const data = [
    u32(IFLA_VXLAN_ID, spec.vni),
    u32(IFLA_VXLAN_LINK, spec.underlayIndex),
    tlv(IFLA_VXLAN_LOCAL, ipv4Bytes(spec.local)),
    u8(IFLA_VXLAN_TTL, 0),
    u8(IFLA_VXLAN_LEARNING, 0),
    u8(IFLA_VXLAN_PROXY, spec.proxy === false ? 0 : 1),
    be16(IFLA_VXLAN_PORT, spec.port ?? VXLAN_PORT),
  ];
  const attrs = [tlv(IFLA_IFNAME, Buffer.from(`${spec.name}\0`)), u32(IFLA_MTU, spec.mtu), nest(IFLA_LINKINFO, [tlv(IFLA_INFO_KIND, Buffer.from('vxlan\0')), nest(IFLA_INFO_DATA, data)])];
  if (spec.masterIndex) attrs.push(u32(IFLA_MASTER, spec.masterIndex));
  if (spec.mac) attrs.push(tlv(IFLA_ADDRESS, macBytes(spec.mac)));
  return { type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body: Buffer.concat([ifinfomsg(0), ...attrs]) };
}

export interface ExternalVxlanSpec {
  name: string;
  /** The device's own MAC (a fan device's is computed: fan-mapping.ts fanDeviceMac). */
  mac: string;
  port: number;
  /** The underlay interface's index (the device's MTU is capped at its MTU − 50). */
  underlayIndex: number;
  mtu: number;
}

/**
 * A VXLAN device in external (collect_md) mode with a VNI filter, NOARP:
 * `ip link add NAME address MAC mtu MTU type vxlan external vnifilter dstport PORT dev UNDERLAY nolearning`
 * then `ip link set NAME arp off`. Each packet's remote and VNI come from its tunnel metadata (set
 * by an eBPF program); the filter (addVni) says which VNIs it receives, so several such devices
 * share one UDP port (kernel ≥ 6.0). No ARP: the inner destination MAC is written per packet too.
 */
export function newExternalVxlan(spec: ExternalVxlanSpec): NetlinkRequest {
  const data = [u8(IFLA_VXLAN_COLLECT_METADATA, 1), u8(IFLA_VXLAN_VNIFILTER, 1), u32(IFLA_VXLAN_LINK, spec.underlayIndex), u8(IFLA_VXLAN_LEARNING, 0), be16(IFLA_VXLAN_PORT, spec.port)];
  const attrs = [
    tlv(IFLA_IFNAME, Buffer.from(`${spec.name}\0`)),
    tlv(IFLA_ADDRESS, macBytes(spec.mac)),
    u32(IFLA_MTU, spec.mtu),
    nest(IFLA_LINKINFO, [tlv(IFLA_INFO_KIND, Buffer.from('vxlan\0')), nest(IFLA_INFO_DATA, data)]),
  ];
  const info = ifinfomsg(0);
  info.writeUInt32LE(IFF_NOARP, 8);
  info.writeUInt32LE(IFF_NOARP, 12);
  return { type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body: Buffer.concat([info, ...attrs]) };
}

/** Sets or clears NOARP on a link (`ip link set D arp off`). */
export function setNoArp(index: number, noarp = true): NetlinkRequest {
  const info = ifinfomsg(index);
  info.writeUInt32LE(noarp ? IFF_NOARP : 0, 8);
  info.writeUInt32LE(IFF_NOARP, 12);
  return { type: RTM_SETLINK, flags: NLM_F_REQUEST | NLM_F_ACK, body: info };
}

/** Adds `vni` to an external device's VNI filter (`bridge vni add dev D vni N`); adding one it has is a no-op. */
export function addVni(index: number, vni: number): NetlinkRequest {
  const msg = Buffer.alloc(8);
  msg.writeUInt8(AF_BRIDGE, 0);
  msg.writeUInt32LE(index, 4);
  return { type: RTM_NEWTUNNEL, flags: NLM_F_REQUEST | NLM_F_ACK, body: Buffer.concat([msg, nest(VXLAN_VNIFILTER_ENTRY, [u32(VXLAN_VNIFILTER_ENTRY_START, vni)])]) };
}

/**
 * The VXLAN device's bridge port: no MAC learning (remote MACs are programmed from the cluster
 * store) and no flooding of unknown unicast over the underlay.
 */
export function quietBridgePort(index: number): NetlinkRequest {
  return { type: RTM_SETLINK, flags: NLM_F_REQUEST | NLM_F_ACK, body: Buffer.concat([ifinfomsg(index, AF_BRIDGE), nest(IFLA_PROTINFO, [u8(IFLA_BRPORT_LEARNING, 0), u8(IFLA_BRPORT_UNICAST_FLOOD, 0)])]) };
}

function fdbMsg(index: number, state: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(AF_BRIDGE, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(state, 8);
  b.writeUInt8(flags, 10);
  return b;
}

/** The VXLAN device's own forwarding entry: frames for `mac` go to the VTEP `vtep` (`bridge fdb replace … self`). */
export function newVxlanFdb(vxlanIndex: number, mac: string, vtep: string): NetlinkRequest {
  return {
    type: RTM_NEWNEIGH,
    flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
    body: Buffer.concat([fdbMsg(vxlanIndex, NUD_PERMANENT, NTF_SELF), tlv(NDA_LLADDR, macBytes(mac)), tlv(NDA_DST, ipv4Bytes(vtep))]),
  };
}

export function deleteVxlanFdb(vxlanIndex: number, mac: string): NetlinkRequest {
  return { type: RTM_DELNEIGH, flags: NLM_F_REQUEST | NLM_F_ACK, body: Buffer.concat([fdbMsg(vxlanIndex, 0, NTF_SELF), tlv(NDA_LLADDR, macBytes(mac))]) };
}

/** The bridge's entry for a MAC behind a port (`bridge fdb del … master`). */
export function deleteBridgeFdb(portIndex: number, mac: string): NetlinkRequest {
  return { type: RTM_DELNEIGH, flags: NLM_F_REQUEST | NLM_F_ACK, body: Buffer.concat([fdbMsg(portIndex, 0, 0x04), tlv(NDA_LLADDR, macBytes(mac))]) };
}

/** Sets a link's MTU (the WireGuard device wireguard-go made carries its own default). */
export function setLinkMtu(index: number, mtu: number): NetlinkRequest {
  return { type: RTM_SETLINK, flags: NLM_F_REQUEST | NLM_F_ACK, body: Buffer.concat([ifinfomsg(index), u32(IFLA_MTU, mtu)]) };
}

const RTM_GETNEIGH = 30;
const NLM_F_DUMP = 0x300;

/** Dumps the IPv4 neighbour table (filtered by the caller: the kernel ignores ndm_ifindex here). */
export function dumpNeighbours(): NetlinkRequest {
  const b = Buffer.alloc(12);
  b.writeUInt8(2, 0);
  return { type: RTM_GETNEIGH, flags: NLM_F_REQUEST | NLM_F_DUMP, body: b };
}

/** One neighbour entry: its interface, address and MAC (undefined for an incomplete one). */
export function parseNeighbour(body: Buffer): { index: number; ip: string; mac?: string } | undefined {
  const index = body.readInt32LE(4);
  const attrs = parseAttrs(body.subarray(12));
  const dst = attrs.get(NDA_DST);
  if (!dst || dst.length !== 4) return undefined;
  const ll = attrs.get(NDA_LLADDR);
  return { index, ip: [...dst].join('.'), mac: ll && ll.length === 6 ? [...ll].map((x) => x.toString(16).padStart(2, '0')).join(':') : undefined };
}
