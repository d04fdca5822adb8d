/**
 * rtnetlink wire format: just the messages and attributes berth uses (links, addresses, routes).
 * Pure code: builds request buffers and parses replies, never touches a socket.
 * Layouts follow linux/netlink.h, linux/rtnetlink.h and linux/if_link.h.
 */

import { formatIpv6, ipv6Bytes, ipv6FromBytes, parseIpv6 } from '../../ipam/ipv6.js';

export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
/** Set on dump messages when the table changed during the dump: the result may miss or repeat entries. */
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;

const AF_INET = 2;
const AF_INET6 = 10;
const AF_UNSPEC = 0;
/** An address family as the kernel numbers it; every address-bearing message carries one. */
export type Family = typeof AF_INET | typeof AF_INET6;
export const FAMILY_INET = AF_INET;
export const FAMILY_INET6 = AF_INET6;
/** The family of an address in text: colon notation is IPv6. */
export const familyOf = (ip: string): Family => (ip.includes(':') ? AF_INET6 : AF_INET);
export const IFF_UP = 0x1;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_IFALIAS = 20;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_BROADCAST = 4;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PREFSRC = 7;
const RTA_TABLE = 15;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RTPROT_KERNEL = 2;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

const HEADER_LEN = 16;
const align4 = (n: number) => (n + 3) & ~3;

/** One netlink attribute (TLV); nested attributes carry their children already encoded. */
type Attr = { type: number; value: Buffer };

function attr(type: number, value: Buffer): Attr {
  return { type, value };
}
const u32Attr = (type: number, v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return attr(type, b);
};
const strAttr = (type: number, s: string) => attr(type, Buffer.from(`${s}\0`));
/** An address attribute of either family (4 or 16 bytes). */
const ipAttr = (type: number, ip: string) => attr(type, familyOf(ip) === AF_INET6 ? ipv6Bytes(parseIpv6(ip)) : ipv4Bytes(ip));
const nested = (type: number, children: Attr[]) => attr(type | NLA_F_NESTED, encodeAttrs(children));

export function ipv4Bytes(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${ip}`);
  }
  return Buffer.from(parts);
}

/** Formats 4 or 16 address bytes as text. */
function formatIp(b: Buffer): string {
  return b.length === 16 ? formatIpv6(ipv6FromBytes(b)) : formatIpv4(b);
}

export function macBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6) throw new Error(`not a MAC address: ${mac}`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

function encodeAttrs(attrs: Attr[]): Buffer {
  const chunks: Buffer[] = [];
  for (const a of attrs) {
    const len = 4 + a.value.length;
    const buf = Buffer.alloc(align4(len));
    buf.writeUInt16LE(len, 0);
    buf.writeUInt16LE(a.type, 2);
    a.value.copy(buf, 4);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** A request before its sequence number is known; the socket stamps seq when sending. */
export interface NetlinkRequest {
  type: number;
  flags: number;
  body: Buffer;
}

function request(type: number, flags: number, fixed: Buffer, attrs: Attr[] = []): NetlinkRequest {
  return { type, flags: flags | NLM_F_REQUEST, body: Buffer.concat([fixed, encodeAttrs(attrs)]) };
}

export function encodeMessage(req: NetlinkRequest, seq: number): Buffer {
  const buf = Buffer.alloc(HEADER_LEN + align4(req.body.length));
  buf.writeUInt32LE(HEADER_LEN + req.body.length, 0);
  buf.writeUInt16LE(req.type, 4);
  buf.writeUInt16LE(req.flags, 6);
  buf.writeUInt32LE(seq, 8);
  buf.writeUInt32LE(0, 12);
  req.body.copy(buf, HEADER_LEN);
  return buf;
}

function ifinfomsg(index = 0, flags = 0, change = 0, family = AF_UNSPEC): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

const IFA_F_NODAD = 0x02;

function ifaddrmsg(prefix: number, index: number, scope = RT_SCOPE_UNIVERSE, family: number = AF_INET, flags = 0): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefix, 1);
  b.writeUInt8(flags, 2);
  b.writeUInt8(scope, 3);
  b.writeUInt32LE(index, 4);
  return b;
}

function rtmsg(dstLen: number, scope: number, protocol = RTPROT_BOOT, family: number = AF_INET): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(family, 0);
  b.writeUInt8(dstLen, 1);
  b.writeUInt8(RT_TABLE_MAIN, 4);
  b.writeUInt8(protocol, 5);
  b.writeUInt8(scope, 6);
  b.writeUInt8(RTN_UNICAST, 7);
  return b;
}

const CREATE = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

export interface LinkCommon {
  mtu?: number;
  up?: boolean;
}

export function newBridge(name: string, opts: LinkCommon & { mac?: string } = {}): NetlinkRequest {
  const attrs = [strAttr(IFLA_IFNAME, name), nested(IFLA_LINKINFO, [strAttr(IFLA_INFO_KIND, 'bridge')])];
  if (opts.mtu) attrs.push(u32Attr(IFLA_MTU, opts.mtu));
  if (opts.mac) attrs.push(attr(IFLA_ADDRESS, macBytes(opts.mac)));
  const up = opts.up ? IFF_UP : 0;
  return request(RTM_NEWLINK, CREATE, ifinfomsg(0, up, up), attrs);
}

export interface VethSpec extends LinkCommon {
  name: string;
  /** Attach the host end to this bridge in the same message. */
  masterIndex?: number;
  peerName: string;
  /** File descriptor of the namespace the peer is created in. */
  peerNetnsFd: number;
  peerMac?: string;
}

/**
 * A veth pair with its peer created straight inside the target namespace. The host end may be
 * brought up and enslaved here; the peer cannot be created up (the kernel answers ENOTCONN), so
 * it is brought up from inside its namespace afterwards.
 */
export function newVeth(spec: VethSpec): NetlinkRequest {
  const peerAttrs = [strAttr(IFLA_IFNAME, spec.peerName), u32Attr(IFLA_NET_NS_FD, spec.peerNetnsFd)];
  if (spec.peerMac) peerAttrs.push(attr(IFLA_ADDRESS, macBytes(spec.peerMac)));
  if (spec.mtu) peerAttrs.push(u32Attr(IFLA_MTU, spec.mtu));
  const peer = attr(VETH_INFO_PEER, Buffer.concat([ifinfomsg(), encodeAttrs(peerAttrs)]));
  const attrs = [
    strAttr(IFLA_IFNAME, spec.name),
    nested(IFLA_LINKINFO, [strAttr(IFLA_INFO_KIND, 'veth'), nested(IFLA_INFO_DATA, [peer])]),
  ];
  if (spec.mtu) attrs.push(u32Attr(IFLA_MTU, spec.mtu));
  if (spec.masterIndex) attrs.push(u32Attr(IFLA_MASTER, spec.masterIndex));
  const up = spec.up ? IFF_UP : 0;
  return request(RTM_NEWLINK, CREATE, ifinfomsg(0, up, up), attrs);
}

/** Set a link up or down, addressed by index, or by name when index is 0. */
export function setLinkUp(target: { index?: number; name?: string }, up = true): NetlinkRequest {
  const attrs = target.index ? [] : [strAttr(IFLA_IFNAME, target.name ?? '')];
  return request(RTM_NEWLINK, NLM_F_ACK, ifinfomsg(target.index ?? 0, up ? IFF_UP : 0, IFF_UP), attrs);
}

/** Moves a link into the namespace open at `netnsFd`, renamed there to `name` (one message, as `ip link set … netns … name …`). */
export function moveLink(index: number, netnsFd: number, name: string): NetlinkRequest {
  return request(RTM_NEWLINK, NLM_F_ACK, ifinfomsg(index), [u32Attr(IFLA_NET_NS_FD, netnsFd), strAttr(IFLA_IFNAME, name)]);
}

const RTM_NEWNEIGH = 28;
const RTM_DELNEIGH = 29;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const NUD_PERMANENT = 0x80;

function ndmsg(index: number, state = 0, family: number = AF_INET): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(state, 8);
  return b;
}

/**
 * A permanent neighbour entry (IP → MAC) on a bridge. With one for every container the host never
 * ARPs for them: on a bridge with ~1,000 ports each ARP broadcast is copied to every port, which
 * overflows the kernel's receive backlog and leaves the host unable to resolve a container.
 */
export function newNeighbour(index: number, ip: string, mac: string): NetlinkRequest {
  return request(RTM_NEWNEIGH, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, ndmsg(index, NUD_PERMANENT, familyOf(ip)), [
    ipAttr(NDA_DST, ip),
    attr(NDA_LLADDR, macBytes(mac)),
  ]);
}

const NUD_NOARP = 0x40;
const NTF_MASTER = 0x04;

/**
 * A static forwarding entry (MAC → port) on the bridge for a container's MAC. Without it the
 * bridge forgets an idle container after the ageing time and floods frames for it to every port;
 * on a bridge with ~1,000 ports those copies overflow the receive backlog and get lost. The kernel
 * removes the entry with the port.
 */
export function newStaticFdb(portIndex: number, mac: string): NetlinkRequest {
  const b = Buffer.alloc(12);
  b.writeUInt8(AF_BRIDGE, 0);
  b.writeInt32LE(portIndex, 4);
  b.writeUInt16LE(NUD_NOARP, 8);
  b.writeUInt8(NTF_MASTER, 10);
  return request(RTM_NEWNEIGH, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, b, [attr(NDA_LLADDR, macBytes(mac))]);
}

export function deleteNeighbour(index: number, ip: string): NetlinkRequest {
  return request(RTM_DELNEIGH, NLM_F_ACK, ndmsg(index, 0, familyOf(ip)), [ipAttr(NDA_DST, ip)]);
}

/** Enslaves a link to a bridge and brings it up. */
export function setMaster(index: number, masterIndex: number): NetlinkRequest {
  return request(RTM_NEWLINK, NLM_F_ACK, ifinfomsg(index, IFF_UP, IFF_UP), [u32Attr(IFLA_MASTER, masterIndex)]);
}

/** IFLA_IFALIAS is ignored when a link is created, so it is set by a second message. */
export function setAlias(index: number, alias: string): NetlinkRequest {
  return request(RTM_SETLINK, NLM_F_ACK, ifinfomsg(index), [strAttr(IFLA_IFALIAS, alias)]);
}

const AF_BRIDGE = 7;
const IFLA_PROTINFO = 12;
const IFLA_BRPORT_MODE = 4;

/**
 * Hairpin mode on a bridge port: lets a frame leave by the port it came in. With br_netfilter
 * active (the kernel's default in new namespaces), a container reaching its own published port
 * is DNAT'd back out of its own port, which the bridge drops without this.
 */
export function setHairpin(index: number): NetlinkRequest {
  return request(RTM_SETLINK, NLM_F_ACK, ifinfomsg(index, 0, 0, AF_BRIDGE), [nested(IFLA_PROTINFO, [attr(IFLA_BRPORT_MODE, Buffer.from([1]))])]);
}

export function deleteLink(target: { index?: number; name?: string }): NetlinkRequest {
  const attrs = target.index ? [] : [strAttr(IFLA_IFNAME, target.name ?? '')];
  return request(RTM_DELLINK, NLM_F_ACK, ifinfomsg(target.index ?? 0), attrs);
}

export function getLink(name: string): NetlinkRequest {
  return request(RTM_GETLINK, 0, ifinfomsg(), [strAttr(IFLA_IFNAME, name)]);
}

export function dumpLinks(): NetlinkRequest {
  return request(RTM_GETLINK, NLM_F_DUMP, ifinfomsg());
}

/**
 * An address of either family. An IPv6 one is added with NODAD: berth's addresses are unique by
 * construction (its IPAM), and duplicate address detection would hold the address `tentative`,
 * unusable, for a second or more after the container starts (Docker sets nodad too).
 */
export function newAddress(index: number, ip: string, prefix: number, broadcast?: string): NetlinkRequest {
  const family = familyOf(ip);
  const attrs = family === AF_INET6 ? [ipAttr(IFA_ADDRESS, ip)] : [ipAttr(IFA_LOCAL, ip), ipAttr(IFA_ADDRESS, ip)];
  if (broadcast && family === AF_INET) attrs.push(ipAttr(IFA_BROADCAST, broadcast));
  return request(RTM_NEWADDR, CREATE, ifaddrmsg(prefix, index, RT_SCOPE_UNIVERSE, family, family === AF_INET6 ? IFA_F_NODAD : 0), attrs);
}

/** Addresses of one family (IPv4 unless asked). */
export function dumpAddresses(family: Family = AF_INET): NetlinkRequest {
  return request(RTM_GETADDR, NLM_F_DUMP, ifaddrmsg(0, 0, RT_SCOPE_UNIVERSE, family));
}

export function newDefaultRoute(gateway: string, oifIndex: number): NetlinkRequest {
  return request(RTM_NEWROUTE, CREATE, rtmsg(0, RT_SCOPE_UNIVERSE, RTPROT_BOOT, familyOf(gateway)), [
    ipAttr(RTA_GATEWAY, gateway),
    u32Attr(RTA_OIF, oifIndex),
  ]);
}

export function deleteDefaultRoute(oifIndex: number, family: Family = AF_INET): NetlinkRequest {
  return request(RTM_DELROUTE, NLM_F_ACK, rtmsg(0, RT_SCOPE_UNIVERSE, RTPROT_BOOT, family), [u32Attr(RTA_OIF, oifIndex)]);
}

/**
 * A route to `dst/prefix` straight out of `oifIndex` (scope link), with `gateway` if given; `src`
 * sets the preferred source address. Replaces a route to the same destination.
 */
export function newRoute(spec: { dst: string; prefix: number; oifIndex: number; gateway?: string; src?: string }): NetlinkRequest {
  const attrs = [ipAttr(RTA_DST, spec.dst), u32Attr(RTA_OIF, spec.oifIndex)];
  if (spec.gateway) attrs.push(ipAttr(RTA_GATEWAY, spec.gateway));
  if (spec.src) attrs.push(ipAttr(RTA_PREFSRC, spec.src));
  // IPv6 routes are always universe scope (the kernel ignores rtm_scope for them).
  const scope = spec.gateway || familyOf(spec.dst) === AF_INET6 ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  return request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, rtmsg(spec.prefix, scope, RTPROT_BOOT, familyOf(spec.dst)), attrs);
}

export function deleteRoute(spec: { dst: string; prefix: number; oifIndex: number }): NetlinkRequest {
  const family = familyOf(spec.dst);
  return request(RTM_DELROUTE, NLM_F_ACK, rtmsg(spec.prefix, family === AF_INET6 ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK, RTPROT_BOOT, family), [
    ipAttr(RTA_DST, spec.dst),
    u32Attr(RTA_OIF, spec.oifIndex),
  ]);
}

/** Routes of one family (IPv4 unless asked). */
export function dumpRoutes(family: Family = AF_INET): NetlinkRequest {
  return request(RTM_GETROUTE, NLM_F_DUMP, rtmsg(0, RT_SCOPE_UNIVERSE, 0, family));
}

/* ---------------------------------------------------------------- replies */

export interface Message {
  type: number;
  flags: number;
  seq: number;
  body: Buffer;
}

/** Splits a received datagram into messages; bodies are copies, so the receive buffer can be reused. */
export function* splitMessages(buf: Buffer, length: number): Generator<Message> {
  let off = 0;
  while (off + HEADER_LEN <= length) {
    const len = buf.readUInt32LE(off);
    if (len < HEADER_LEN || off + len > length) break;
    yield {
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      body: Buffer.from(buf.subarray(off + HEADER_LEN, off + len)),
    };
    off += align4(len);
  }
}

/** An NLMSG_ERROR body: errno 0 is an ACK; otherwise the kernel's extended message if it sent one. */
export function parseError(msg: Message): { errno: number; detail?: string } {
  const errno = Math.abs(msg.body.readInt32LE(0));
  if (errno === 0 || !(msg.flags & NLM_F_ACK_TLVS)) return { errno };
  // With NETLINK_CAP_ACK the echoed request is only its 16-byte header.
  const attrs = parseAttrs(msg.body.subarray(4 + HEADER_LEN));
  const text = attrs.get(NLMSGERR_ATTR_MSG);
  return { errno, detail: text ? cString(text) : undefined };
}

export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

const cString = (b: Buffer) => b.toString('utf8', 0, b.indexOf(0) >= 0 ? b.indexOf(0) : b.length);
function formatIpv4(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}
const formatMac = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

export interface LinkInfo {
  index: number;
  name: string;
  flags: number;
  up: boolean;
  mtu?: number;
  mac?: string;
  master?: number;
  /** For a veth, the peer's index (in the peer's namespace). */
  link?: number;
  kind?: string;
  alias?: string;
}

export function parseLink(body: Buffer): LinkInfo {
  const attrs = parseAttrs(body.subarray(16));
  const info = attrs.get(IFLA_LINKINFO);
  const kind = info ? parseAttrs(info).get(IFLA_INFO_KIND) : undefined;
  const get32 = (t: number) => attrs.get(t)?.readUInt32LE(0);
  const flags = body.readUInt32LE(8);
  const mac = attrs.get(IFLA_ADDRESS);
  const alias = attrs.get(IFLA_IFALIAS);
  return {
    index: body.readInt32LE(4),
    name: cString(attrs.get(IFLA_IFNAME) ?? Buffer.alloc(0)),
    flags,
    up: (flags & IFF_UP) !== 0,
    mtu: get32(IFLA_MTU),
    mac: mac?.length === 6 ? formatMac(mac) : undefined,
    master: get32(IFLA_MASTER),
    link: get32(IFLA_LINK),
    kind: kind ? cString(kind) : undefined,
    alias: alias ? cString(alias) : undefined,
  };
}

export interface AddressInfo {
  index: number;
  address: string;
  prefix: number;
}

/** An address of either family (a dump asks for one family: dumpAddresses). */
export function parseAddress(body: Buffer): AddressInfo | undefined {
  const family = body.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const attrs = parseAttrs(body.subarray(8));
  const ip = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
  if (!ip) return undefined;
  return { index: body.readUInt32LE(4), address: formatIp(ip), prefix: body.readUInt8(1) };
}

export interface RouteInfo {
  dst: string;
  prefix: number;
  gateway?: string;
  oif?: number;
  table: number;
  protocol: number;
  prefsrc?: string;
}

/** A route of either family (a dump asks for one family: dumpRoutes). */
export function parseRoute(body: Buffer): RouteInfo | undefined {
  const family = body.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const attrs = parseAttrs(body.subarray(12));
  const dst = attrs.get(RTA_DST);
  const gw = attrs.get(RTA_GATEWAY);
  const src = attrs.get(RTA_PREFSRC);
  return {
    dst: dst ? formatIp(dst) : family === AF_INET6 ? '::' : '0.0.0.0',
    prefix: body.readUInt8(1),
    gateway: gw ? formatIp(gw) : undefined,
    oif: attrs.get(RTA_OIF)?.readUInt32LE(0),
    table: attrs.get(RTA_TABLE)?.readUInt32LE(0) ?? body.readUInt8(4),
    protocol: body.readUInt8(5),
    prefsrc: src ? formatIp(src) : undefined,
  };
}

export const ROUTE_PROTOCOL_KERNEL = RTPROT_KERNEL;
export const ROUTE_SCOPE_LINK = RT_SCOPE_LINK;
