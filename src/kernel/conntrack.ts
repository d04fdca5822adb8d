/**
 * Conntrack clean-up through ctnetlink (no `conntrack` process): when a container's address is
 * released, the connection-tracking entries that name it are deleted, as netavark and libnetwork
 * do. Otherwise a UDP flow keeps being DNAT'd to the old address (its entry is refreshed by every
 * packet) and reaches whichever container gets that address next; likewise replies to the old
 * container's own connections.
 *
 * The kernel's conntrack hash is shared by all namespaces (262,144 buckets here), so a dump walks
 * all of it: ~10 ms even when the namespace has no entry, on every container stop. Kernels ≥ 6.3
 * take a filtered flush instead (a DELETE without a full tuple, with CTA_FILTER naming the fields
 * to match), one pass in the kernel: ~0.1 ms. Older kernels refuse such a message (EINVAL: the
 * partial tuple does not parse), never flush everything; there berth falls back to the dump, and
 * deletes each matching entry by its original tuple, copied verbatim with its zone.
 */
import { NetlinkSocket } from './netlink/socket.js';
import { NLM_F_DUMP, NLM_F_REQUEST, type NetlinkRequest } from './netlink/codec.js';

const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_GET = 1;
const IPCTNL_MSG_CT_DELETE = 2;
const AF_INET = 2;
const CTA_TUPLE_ORIG = 1;
const CTA_TUPLE_REPLY = 2;
const CTA_ZONE = 18;
const CTA_FILTER = 25;
const CTA_FILTER_ORIG_FLAGS = 1;
const CTA_FILTER_REPLY_FLAGS = 2;
const FILTER_IP_SRC = 1 << 0;
const FILTER_IP_DST = 1 << 1;
const FILTER_PROTO_NUM = 1 << 3;
const FILTER_PROTO_DST_PORT = 1 << 5;
const NFNETLINK_V1 = 1;
const EINVAL = 22;
const PROTO_NUMBER = { tcp: 6, udp: 17 } as const;
const CTA_TUPLE_IP = 1;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_TUPLE_PROTO = 2;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_DST_PORT = 3;
const IPPROTO: Record<number, 'tcp' | 'udp'> = { 6: 'tcp', 17: 'udp' };
const NFGENMSG_LEN = 4;
const NLA_TYPE_MASK = 0x3fff;
const ENOENT = 2;
/** Deletes per send: each is ~100 bytes, the socket's buffer holds 256 KiB of replies. */
const BATCH = 500;

interface RawAttr {
  type: number;
  /** The whole attribute, header included, padded: what a delete request re-sends. */
  raw: Buffer;
  value: Buffer;
}

function attrs(body: Buffer, from = 0): RawAttr[] {
  const out: RawAttr[] = [];
  for (let off = from; off + 4 <= body.length; ) {
    const len = body.readUInt16LE(off);
    if (len < 4 || off + len > body.length) break;
    const padded = Math.min((len + 3) & ~3, body.length - off);
    out.push({ type: body.readUInt16LE(off + 2) & NLA_TYPE_MASK, raw: body.subarray(off, off + padded), value: body.subarray(off + 4, off + len) });
    off += (len + 3) & ~3;
  }
  return out;
}

const find = (list: RawAttr[], type: number) => list.find((a) => a.type === type);

function ipv4(b: Buffer | undefined): string | undefined {
  return b && b.length === 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : undefined;
}

interface Tuple {
  src?: string;
  dst?: string;
  protocol?: 'tcp' | 'udp';
  dport?: number;
}

/** The addresses, protocol and destination port of a tuple attribute. */
function parseTuple(tuple: RawAttr | undefined): Tuple {
  if (!tuple) return {};
  const parts = attrs(tuple.value);
  const ip = find(parts, CTA_TUPLE_IP);
  const inner = ip ? attrs(ip.value) : [];
  const proto = find(parts, CTA_TUPLE_PROTO);
  const protoParts = proto ? attrs(proto.value) : [];
  const num = find(protoParts, CTA_PROTO_NUM)?.value;
  const dport = find(protoParts, CTA_PROTO_DST_PORT)?.value;
  return {
    src: ipv4(find(inner, CTA_IP_V4_SRC)?.value),
    dst: ipv4(find(inner, CTA_IP_V4_DST)?.value),
    protocol: num && num.length >= 1 ? IPPROTO[num[0]!] : undefined,
    dport: dport && dport.length === 2 ? dport.readUInt16BE(0) : undefined,
  };
}

export interface ConntrackEntry {
  orig: Tuple;
  reply: Tuple;
  /** The delete request for this entry. */
  deleteRequest: NetlinkRequest;
}

const header = () => Buffer.from([AF_INET, 0, 0, 0]);

/** Decodes one ctnetlink message (pure). */
export function parseConntrackEntry(body: Buffer): ConntrackEntry | undefined {
  const list = attrs(body, NFGENMSG_LEN);
  const orig = find(list, CTA_TUPLE_ORIG);
  if (!orig) return undefined;
  const zone = find(list, CTA_ZONE);
  return {
    orig: parseTuple(orig),
    reply: parseTuple(find(list, CTA_TUPLE_REPLY)),
    deleteRequest: {
      type: (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
      flags: NLM_F_REQUEST,
      body: Buffer.concat([header(), orig.raw, ...(zone ? [zone.raw] : [])]),
    },
  };
}

/** A host port just published: flows already tracked to it were not DNAT'd and must start over. */
export interface NewBinding {
  protocol: 'tcp' | 'udp';
  /** 0.0.0.0 for every address. */
  hostIp: string;
  hostPort: number;
}

/**
 * Of ports just published, those whose earlier flows must be forgotten: UDP only, as libnetwork
 * and netavark do. A UDP client keeps sending from one port, so its flow's entry (made before the
 * port existed, without DNAT) lives on; a refused TCP client retries from a new port, a new flow.
 * Each flush walks the kernel's whole conntrack table (~0.3 ms here with one entry in the
 * namespace), so a setup with only TCP ports pays none.
 */
export function bindingsToForget(published: readonly NewBinding[]): NewBinding[] {
  return published.filter((p) => p.protocol === 'udp').map((p) => ({ protocol: p.protocol, hostIp: p.hostIp, hostPort: p.hostPort }));
}

export interface Doomed {
  /** Released addresses: entries naming them as sender, destination or DNAT target go. */
  ips: ReadonlySet<string>;
  bindings: readonly NewBinding[];
}

export function matches(entry: ConntrackEntry, doomed: Doomed): boolean {
  if ([entry.orig.src, entry.orig.dst, entry.reply.src].some((ip) => ip !== undefined && doomed.ips.has(ip))) return true;
  return doomed.bindings.some(
    (b) => entry.orig.protocol === b.protocol && entry.orig.dport === b.hostPort && (b.hostIp === '0.0.0.0' || entry.orig.dst === b.hostIp),
  );
}

/**
 * Deletes the IPv4 conntrack entries of the calling thread's namespace that involve released
 * addresses, or that track flows to host ports published just now (a UDP client that kept
 * sending while the port was unpublished has an entry without DNAT, refreshed by every packet,
 * which would keep it from ever reaching the new container, as libnetwork also handles).
 * Returns how many were deleted, or -1 when the kernel flushed them without counting.
 */
export function forgetConnections(ips: string[], bindings: NewBinding[] = []): number {
  if (ips.length === 0 && bindings.length === 0) return 0;
  try {
    ctnetlink().transact(
      flushRequests(ips, bindings),
      [...ips.flatMap((ip) => [`flush conntrack of replies from ${ip}`, `flush conntrack from ${ip}`]), ...bindings.map((b) => `flush conntrack to ${b.hostIp}:${b.hostPort}/${b.protocol}`)],
    );
    return -1;
  } catch (err) {
    if ((err as { errno?: number }).errno !== EINVAL) throw err;
  }
  return forgetByDump(ips, bindings);
}

/**
 * One ctnetlink socket for the thread's life, opened in the namespace of the first call (the
 * daemon's): closing one after a flush blocks for 1-20 ms in the kernel, on every container stop.
 */
let ctSocket: NetlinkSocket | undefined;
function ctnetlink(): NetlinkSocket {
  return (ctSocket ??= new NetlinkSocket(NETLINK_NETFILTER));
}

/** Filtered flushes, two per released address (it answered, or it sent) and one per new binding. */
export function flushRequests(ips: string[], bindings: NewBinding[]): NetlinkRequest[] {
  const flush = (tupleType: number, tuple: Buffer[], filterType: number, flags: number): NetlinkRequest => ({
    type: (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
    flags: NLM_F_REQUEST,
    // Version 1: the family in the header filters too (version 0 means every family).
    body: Buffer.concat([Buffer.from([AF_INET, NFNETLINK_V1, 0, 0]), nla(tupleType, Buffer.concat(tuple), true), nla(CTA_FILTER, nla(filterType, u32(flags)), true)]),
  });
  const ipAttr = (type: number, ip: string) => nla(CTA_TUPLE_IP, nla(type, ipBytes(ip)), true);
  return [
    ...ips.flatMap((ip) => [
      flush(CTA_TUPLE_REPLY, [ipAttr(CTA_IP_V4_SRC, ip)], CTA_FILTER_REPLY_FLAGS, FILTER_IP_SRC),
      flush(CTA_TUPLE_ORIG, [ipAttr(CTA_IP_V4_SRC, ip)], CTA_FILTER_ORIG_FLAGS, FILTER_IP_SRC),
    ]),
    ...bindings.map((b) => {
      const port = Buffer.alloc(2);
      port.writeUInt16BE(b.hostPort);
      const proto = nla(CTA_TUPLE_PROTO, Buffer.concat([nla(CTA_PROTO_NUM, Buffer.from([PROTO_NUMBER[b.protocol]])), nla(CTA_PROTO_DST_PORT, port)]), true);
      const specific = b.hostIp !== '0.0.0.0';
      return flush(
        CTA_TUPLE_ORIG,
        specific ? [ipAttr(CTA_IP_V4_DST, b.hostIp), proto] : [proto],
        CTA_FILTER_ORIG_FLAGS,
        FILTER_PROTO_NUM | FILTER_PROTO_DST_PORT | (specific ? FILTER_IP_DST : 0),
      );
    }),
  ];
}

/** One netlink attribute, padded; `nested` sets NLA_F_NESTED. */
export function nla(type: number, value: Buffer, nested = false): Buffer {
  const len = 4 + value.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type | (nested ? 0x8000 : 0), 2);
  value.copy(b, 4);
  return b;
}

/** CTA_FILTER flags are host-order u32s, unlike the tuple's network-order fields. */
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

const ipBytes = (ip: string) => Buffer.from(ip.split('.').map(Number));

/** The fallback for kernels without filtered flush: dump everything, delete what matches. */
function forgetByDump(ips: string[], bindings: NewBinding[]): number {
  const doomedSpec: Doomed = { ips: new Set(ips), bindings };
  const sock = ctnetlink();
  const dump = sock.dump({ type: (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, flags: NLM_F_REQUEST | NLM_F_DUMP, body: header() }, 'list conntrack entries');
  const doomed = dump.map((m) => parseConntrackEntry(m.body)).filter((e): e is ConntrackEntry => e !== undefined && matches(e, doomedSpec));
  let deleted = 0;
  for (let i = 0; i < doomed.length; i += BATCH) {
    const batch = doomed.slice(i, i + BATCH);
    try {
      sock.transact(batch.map((e) => e.deleteRequest), batch.map(() => 'delete conntrack entry'));
      deleted += batch.length;
    } catch (err) {
      // An entry that expired between the dump and the delete is already what we wanted.
      if ((err as { errno?: number }).errno !== ENOENT) throw err;
      deleted += batch.length - 1;
    }
  }
  return deleted;
}
