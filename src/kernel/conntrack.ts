/**
 * Conntrack clean-up through ctnetlink (no `conntrack` process): when a container's address is
 * released, the connection-tracking entries that name it are deleted, as netavark and libnetwork
 * do. Otherwise a UDP flow keeps being DNAT'd to the old address (its entry is refreshed by every
 * packet) and reaches whichever container gets that address next; likewise replies to the old
 * container's own connections.
 *
 * An entry is deleted by its original tuple, which is copied verbatim from the dump (with its
 * zone), so every protocol's tuple layout works without decoding it.
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
 * Returns how many were deleted.
 */
export function forgetConnections(ips: string[], bindings: NewBinding[] = []): number {
  if (ips.length === 0 && bindings.length === 0) return 0;
  const doomedSpec: Doomed = { ips: new Set(ips), bindings };
  const sock = new NetlinkSocket(NETLINK_NETFILTER);
  try {
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
  } finally {
    sock.close();
  }
}
