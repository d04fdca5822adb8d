/**
 * The DNS wire format as the resolver needs it: a typed adapter over `dns-packet`, whose own types
 * are loose, plus the few header operations the forwarder does on raw packets.
 *
 * Decoding never throws: every packet a client can send maps to a query, an error answer or a drop.
 * Replies echo the client's question section byte for byte (so 0x20 case randomisation and odd
 * label bytes survive) and point at it with name compression instead of re-encoding the name.
 */
import { formatIpv6 } from '../ipam/ipv6.js';
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

const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_PTR = 12;
const CLASS_IN = 1;
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
  a: { encode(address: string): Buffer };
  aaaa: { encode(address: string): Buffer };
  ptr: { encode(name: string): Buffer };
}
const untyped = dnsPacket as unknown as Untyped;

export interface Query {
  id: number;
  /** The 16-bit flags word as received. */
  flags: number;
  /** Question name as sent (case kept, no trailing dot; "." for the root). */
  name: string;
  /** dns-packet's type name: "A", "AAAA", "PTR", ... or "UNKNOWN_<n>". */
  type: string;
  class: string;
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

function parseQuery(buf: Buffer, flags: number): Query | undefined {
  // A pointer in the first question could only point into the header, which the reply rewrites.
  if (!uncompressedName(buf, HEADER_BYTES)) return undefined;
  try {
    const packet = dnsPacket.decode(buf);
    const q = untyped.question.decode(buf, HEADER_BYTES);
    const questionBytes = untyped.question.decode.bytes;
    const opts = (packet.additionals ?? []).filter((r) => r.type === 'OPT');
    if (opts.length > 1) return undefined; // RFC 6891 6.1.1
    const opt = opts[0];
    return {
      id: buf.readUInt16BE(0),
      flags,
      name: q.name,
      type: String(q.type),
      class: String(q.class),
      question: Buffer.from(buf.subarray(HEADER_BYTES, HEADER_BYTES + questionBytes)),
      udpLimit: opt && opt.type === 'OPT' ? clamp(opt.udpPayloadSize, MIN_UDP_BYTES, MAX_UDP_BYTES) : MIN_UDP_BYTES,
      edns: opt !== undefined,
      raw: buf,
    };
  } catch {
    return undefined;
  }
}

function uncompressedName(buf: Buffer, offset: number): boolean {
  for (let i = offset; i < buf.length; i += buf[i]! + 1) {
    if (buf[i] === 0) return true;
    if (buf[i]! & 0xc0) return false;
  }
  return false;
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
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(ar, 10);
  return h;
}

/** A bare header, for queries whose question cannot be trusted. */
function headerReply(id: number, queryFlags: number, rcode: Rcode): Buffer {
  return header(id, replyFlags(queryFlags, rcode), 0, 0, 0);
}

/**
 * A reply built here, at most `limit` bytes: the records that fit, in order, with TC set if any
 * were left out. Keeping a partial answer (like Docker) helps stub resolvers that never retry over TCP.
 */
export function buildReply(query: Query, rcode: Rcode, records: readonly LocalRecord[], limit: number): { bytes: Buffer; truncated: boolean } {
  const opt = query.edns ? encodeOpt() : undefined;
  const encoded = records.map(encodeRecord);
  let room = limit - HEADER_BYTES - query.question.length - (opt?.length ?? 0);
  let kept = 0;
  while (kept < encoded.length && encoded[kept]!.length <= room) room -= encoded[kept++]!.length;
  const truncated = kept < encoded.length;
  const flags = replyFlags(query.flags, rcode) | (truncated ? FLAG_TC : 0);
  const parts = [header(query.id, flags, 1, kept, opt ? 1 : 0), query.question, ...encoded.slice(0, kept)];
  if (opt) parts.push(opt);
  return { bytes: Buffer.concat(parts), truncated };
}

function encodeRecord(record: LocalRecord): Buffer {
  const rdata = record.type === 'A' ? untyped.a.encode(record.address) : record.type === 'AAAA' ? untyped.aaaa.encode(record.address) : untyped.ptr.encode(record.target);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(POINTER_TO_QNAME, 0);
  fixed.writeUInt16BE(record.type === 'A' ? TYPE_A : record.type === 'AAAA' ? TYPE_AAAA : TYPE_PTR, 2);
  fixed.writeUInt16BE(CLASS_IN, 4);
  fixed.writeUInt32BE(LOCAL_TTL, 6);
  return Buffer.concat([fixed, rdata]);
}

function encodeOpt(): Buffer {
  return dnsPacket.encode({ additionals: [{ type: 'OPT', name: '.', udpPayloadSize: MAX_UDP_BYTES, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] }).subarray(HEADER_BYTES);
}

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
    return q.name.toLowerCase() === query.name.toLowerCase() && String(q.type) === query.type && String(q.class) === query.class;
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
