/**
 * The DNS wire format as the resolver needs it: a typed adapter over `dns-packet`, whose own types
 * are loose, plus the few header operations the forwarder does on raw packets.
 *
 * Decoding never throws: every packet a client can send maps to a query, an error answer or a drop.
 * Replies echo the client's question section byte for byte (so 0x20 case randomisation and odd
 * label bytes survive) and point at it with name compression instead of re-encoding the name.
 */
import { formatIpv6, parseIpv6 } from '../ipam/ipv6.js';
import dnsPacket from 'dns-packet';
import type { Question } from 'dns-packet';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = (typeof RCODE)[keyof typeof RCODE];

export const HEADER_BYTES = 12;
/** RFC 1035's limit for UDP answers to clients that did not send EDNS. */
export const MIN_UDP_BYTES = 512;
/** Largest UDP query accepted and largest UDP answer sent, whatever EDNS size the client offers. */
export const MAX_UDP_BYTES = 4096;
/** Answers about containers change whenever containers do; Docker uses the same TTL. */
export const LOCAL_TTL = 600;

const FLAG_QR = 0x8000;
const OPCODE_MASK = 0x7800;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const RCODE_MASK = 0x000f;

export const TYPE_A = 1;
export const TYPE_AAAA = 28;
export const TYPE_PTR = 12;
const TYPE_OPT = 41;
export const CLASS_IN = 1;
/** A compression pointer to offset 12: the question's name, always first after the header. */
const POINTER_TO_QNAME = 0xc00c;
/** Smallest encodings (root name) of a question and of a resource record, used to reject impossible counts early. */
const MIN_QUESTION_BYTES = 5;
const MIN_RECORD_BYTES = 11;

/** The parts of dns-packet its published types leave out. */
interface Decoder<T> {
  (buf: Buffer, offset?: number): T;
  bytes: number;
}
interface Untyped {
  question: { decode: Decoder<Question> };
  ptr: { encode(name: string): Buffer };
}
const untyped = dnsPacket as unknown as Untyped;

export interface Query {
  id: number;
  /** The 16-bit flags word as received. */
  flags: number;
  /** Question name as sent (case kept, no trailing dot; "." for the root), decoded as dns-packet does. */
  name: string;
  /** The name as the directory and the cache key it: lower case. */
  key: string;
  /** Question type and class, as numbers (A = 1, AAAA = 28, PTR = 12; IN = 1). */
  qtype: number;
  qclass: number;
  /** The question section exactly as received. */
  question: Buffer;
  /** Largest UDP answer this client accepts. */
  udpLimit: number;
  /** The client sent an OPT record, so answers carry one too. */
  edns: boolean;
  /** The whole packet, forwarded unchanged. */
  raw: Buffer;
}

export type Decoded =
  | { kind: 'query'; query: Query }
  /** The header is readable but the query cannot be served: answer with a bare header. */
  | { kind: 'error'; reply: Buffer; rcode: Rcode }
  /** Nothing sensible to answer (too short to have an id, or not a query at all). */
  | { kind: 'drop'; reason: string };

export type LocalRecord = { type: 'A'; address: string } | { type: 'AAAA'; address: string } | { type: 'PTR'; target: string };

/** Decodes a client packet of at most `maxBytes`. Never throws. */
export function decodeQuery(buf: Buffer, maxBytes: number): Decoded {
  if (buf.length < HEADER_BYTES) return { kind: 'drop', reason: 'shorter than a DNS header' };
  const flags = buf.readUInt16BE(2);
  // Answering answers would let two resolvers bounce packets at each other forever.
  if (flags & FLAG_QR) return { kind: 'drop', reason: 'not a query' };
  const fail = (rcode: Rcode): Decoded => ({ kind: 'error', rcode, reply: headerReply(buf.readUInt16BE(0), flags, rcode) });
  if (buf.length > maxBytes) return fail(RCODE.FORMERR);
  if ((flags & OPCODE_MASK) !== 0) return fail(RCODE.NOTIMP);
  if (!countsFit(buf)) return fail(RCODE.FORMERR);
  const query = parseQuery(buf, flags);
  return query ? { kind: 'query', query } : fail(RCODE.FORMERR);
}

/** One question, and no more records than the bytes could hold: keeps dns-packet from sizing arrays by a forged count. */
function countsFit(buf: Buffer): boolean {
  if (buf.readUInt16BE(4) !== 1) return false;
  const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  return HEADER_BYTES + MIN_QUESTION_BYTES + records * MIN_RECORD_BYTES <= buf.length;
}

/**
 * Reads the question and finds the OPT record in one pass over the bytes, with no decoder objects:
 * this runs for every query. Anything dns-packet would refuse to decode is refused here too.
 */
function parseQuery(buf: Buffer, flags: number): Query | undefined {
  const name = questionName(buf);
  if (!name) return undefined;
  const questionEnd = name.end + 4;
  if (questionEnd > buf.length) return undefined;
  let off = questionEnd;
  let udpSize: number | undefined;
  const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  for (let i = 0; i < records; i++) {
    off = skipName(buf, off);
    if (off < 0 || off + 10 > buf.length) return undefined;
    const rdataEnd = off + 10 + buf.readUInt16BE(off + 8);
    if (rdataEnd > buf.length) return undefined;
    if (buf.readUInt16BE(off) === TYPE_OPT) {
      if (udpSize !== undefined) return undefined; // RFC 6891 6.1.1: at most one OPT
      udpSize = buf.readUInt16BE(off + 2);
    }
    off = rdataEnd;
  }
  return {
    id: buf.readUInt16BE(0),
    flags,
    name: name.text,
    key: name.text.toLowerCase(),
    qtype: buf.readUInt16BE(name.end),
    qclass: buf.readUInt16BE(name.end + 2),
    question: buf.subarray(HEADER_BYTES, questionEnd),
    udpLimit: udpSize === undefined ? MIN_UDP_BYTES : clamp(udpSize, MIN_UDP_BYTES, MAX_UDP_BYTES),
    edns: udpSize !== undefined,
    raw: buf,
  };
}

/**
 * The first question's name, which must not be compressed (a pointer could only point into the
 * header, which the reply rewrites): its labels decoded as UTF-8 and joined with dots, as
 * dns-packet does, within its 254-byte limit; `end` is where the type follows.
 */
function questionName(buf: Buffer): { text: string; end: number } | undefined {
  let text = '';
  let total = 0;
  for (let i = HEADER_BYTES; i < buf.length; ) {
    const len = buf[i]!;
    if (len === 0) return { text: total === 0 ? '.' : text, end: i + 1 };
    if (len & 0xc0 || i + 1 + len > buf.length) return undefined;
    total += len + 1;
    if (total > 254) return undefined;
    const label = buf.toString('utf8', i + 1, i + 1 + len);
    text = total === len + 1 ? label : `${text}.${label}`;
    i += len + 1;
  }
  return undefined;
}

/** Offset just past a name that may end in a pointer to earlier bytes, or -1 if it is malformed. */
function skipName(buf: Buffer, off: number): number {
  const start = off;
  while (off < buf.length) {
    const len = buf[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= buf.length && buf.readUInt16BE(off) - 0xc000 < start ? off + 2 : -1;
    if (len & 0xc0) return -1;
    off += len + 1;
  }
  return -1;
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}

/** Response flags: QR and RA set, opcode and RD copied, AA off (we are not an authority, like Docker). */
function replyFlags(queryFlags: number, rcode: number): number {
  return FLAG_QR | (queryFlags & (OPCODE_MASK | FLAG_RD)) | FLAG_RA | (rcode & RCODE_MASK);
}

function header(id: number, flags: number, qd: number, an: number, ar: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  writeHeader(h, id, flags, qd, an, ar);
  return h;
}

function writeHeader(buf: Buffer, id: number, flags: number, qd: number, an: number, ar: number): void {
  buf.writeUInt16BE(id, 0);
  buf.writeUInt16BE(flags, 2);
  buf.writeUInt16BE(qd, 4);
  buf.writeUInt16BE(an, 6);
  buf.writeUInt16BE(0, 8);
  buf.writeUInt16BE(ar, 10);
}

/** A bare header, for queries whose question cannot be trusted. */
function headerReply(id: number, queryFlags: number, rcode: Rcode): Buffer {
  return header(id, replyFlags(queryFlags, rcode), 0, 0, 0);
}

/**
 * A reply built here, at most `limit` bytes: the records that fit, in order, with TC set if any
 * were left out. Keeping a partial answer (like Docker) helps stub resolvers that never retry over TCP.
 * One buffer is allocated and filled: header, the client's question, pre-encoded records, OPT.
 */
export function buildReply(query: Query, rcode: Rcode, records: readonly LocalRecord[], limit: number): { bytes: Buffer; truncated: boolean } {
  const encoded = records.map(encodedRecord);
  const optBytes = query.edns ? OPT_RECORD.length : 0;
  let size = HEADER_BYTES + query.question.length + optBytes;
  let kept = 0;
  while (kept < encoded.length && size + encoded[kept]!.length <= limit) size += encoded[kept++]!.length;
  const truncated = kept < encoded.length;
  const bytes = Buffer.allocUnsafe(size);
  writeHeader(bytes, query.id, replyFlags(query.flags, rcode) | (truncated ? FLAG_TC : 0), 1, kept, optBytes ? 1 : 0);
  let off = HEADER_BYTES + query.question.copy(bytes, HEADER_BYTES);
  for (let i = 0; i < kept; i++) off += encoded[i]!.copy(bytes, off);
  if (optBytes) OPT_RECORD.copy(bytes, off);
  return { bytes, truncated };
}

/**
 * Records encoded once per address (or PTR target) and reused: the answers about containers are
 * the same few records over and over. Only their owner name is a pointer to the question, so one
 * encoding serves every query. Bounded: cleared whole when full (re-encoding is cheap, a leak is not).
 */
const recordCache = new Map<string, Buffer>();
const RECORD_CACHE_ENTRIES = 4096;

function encodedRecord(record: LocalRecord): Buffer {
  const key = record.type === 'PTR' ? `PTR ${record.target}` : record.address;
  let bytes = recordCache.get(key);
  if (!bytes) {
    if (recordCache.size >= RECORD_CACHE_ENTRIES) recordCache.clear();
    recordCache.set(key, (bytes = encodeRecord(record)));
  }
  return bytes;
}

function encodeRecord(record: LocalRecord): Buffer {
  const rdata = record.type === 'A' ? ipv4Bytes(record.address) : record.type === 'AAAA' ? ipv6Bytes(record.address) : untyped.ptr.encode(record.target);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(POINTER_TO_QNAME, 0);
  fixed.writeUInt16BE(record.type === 'A' ? TYPE_A : record.type === 'AAAA' ? TYPE_AAAA : TYPE_PTR, 2);
  fixed.writeUInt16BE(CLASS_IN, 4);
  fixed.writeUInt32BE(LOCAL_TTL, 6);
  return Buffer.concat([fixed, rdata]);
}

/** RDLENGTH then the four octets. */
function ipv4Bytes(address: string): Buffer {
  const out = Buffer.alloc(6);
  out.writeUInt16BE(4, 0);
  address.split('.').forEach((octet, i) => out.writeUInt8(Number(octet), 2 + i));
  return out;
}

/** RDLENGTH then the sixteen bytes. */
function ipv6Bytes(address: string): Buffer {
  const out = Buffer.alloc(18);
  out.writeUInt16BE(16, 0);
  let value = parseIpv6(address);
  for (let i = 17; i >= 2; i--, value >>= 8n) out[i] = Number(value & 0xffn);
  return out;
}

/** Our OPT record (RFC 6891): root owner, type 41, our UDP size as its class, no extended flags, no options. */
const OPT_RECORD = (() => {
  const opt = Buffer.alloc(11);
  opt.writeUInt16BE(TYPE_OPT, 1);
  opt.writeUInt16BE(MAX_UDP_BYTES, 3);
  return opt;
})();

/** A forwarded answer too big for the client's UDP limit: header and question only, TC set, so it retries over TCP. */
export function truncateForwarded(response: Buffer, query: Query): Buffer {
  const flags = response.readUInt16BE(2) | FLAG_TC;
  return Buffer.concat([header(response.readUInt16BE(0), flags, 1, 0, 0), query.question]);
}

export function rcodeOf(packet: Buffer): number {
  return packet.readUInt16BE(2) & RCODE_MASK;
}

export function isTruncated(packet: Buffer): boolean {
  return (packet.readUInt16BE(2) & FLAG_TC) !== 0;
}

/**
 * Whether `response` answers `query`: same id, QR set and the same question (names compared
 * case-insensitively, as some upstreams lower-case them). An error answer without a question is
 * accepted too: it carries no data that could poison anything.
 */
export function answersQuery(response: Buffer, query: Query): boolean {
  if (response.length < HEADER_BYTES || response.readUInt16BE(0) !== query.id) return false;
  if ((response.readUInt16BE(2) & FLAG_QR) === 0) return false;
  const qd = response.readUInt16BE(4);
  if (qd === 0) return rcodeOf(response) !== RCODE.NOERROR && rcodeOf(response) !== RCODE.NXDOMAIN;
  if (qd !== 1) return false;
  try {
    const q = untyped.question.decode(response, HEADER_BYTES);
    const at = HEADER_BYTES + untyped.question.decode.bytes - 4;
    return q.name.toLowerCase() === query.key && response.readUInt16BE(at) === query.qtype && response.readUInt16BE(at + 2) === query.qclass;
  } catch {
    return false;
  }
}

/**
 * The address a reverse name stands for: `d.c.b.a.in-addr.arpa` (IPv4), or 32 nibbles under
 * `ip6.arpa` (IPv6, canonical text); undefined for any other name.
 */
export function reverseAddress(name: string): string | undefined {
  const six = /^((?:[0-9a-f]\.){32})ip6\.arpa\.?$/i.exec(name);
  if (six) return formatIpv6(BigInt(`0x${six[1]!.split('.').filter(Boolean).reverse().join('')}`));
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa\.?$/i.exec(name);
  if (!m) return undefined;
  const octets = m.slice(1, 5);
  if (!octets.every((o) => String(Number(o)) === o && Number(o) <= 255)) return undefined;
  return octets.reverse().join('.');
}

/** Largest message DNS over TCP can carry: the length prefix is 16 bits. */
export const MAX_TCP_BYTES = 65535;

/** A message with the 2-byte length prefix DNS over TCP uses (RFC 1035 4.2.2). */
export function frame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(message.length, 0);
  return Buffer.concat([prefix, message]);
}

/**
 * Splits a TCP byte stream into DNS messages, whatever the chunking. It holds at most one
 * incomplete message (< 64 KiB), so a client cannot make it buffer without bound.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const messages: Buffer[] = [];
    let offset = 0;
    while (this.pending.length - offset >= 2) {
      const length = this.pending.readUInt16BE(offset);
      if (this.pending.length - offset - 2 < length) break;
      messages.push(this.pending.subarray(offset + 2, offset + 2 + length));
      offset += 2 + length;
    }
    this.pending = this.pending.subarray(offset);
    return messages;
  }
}
