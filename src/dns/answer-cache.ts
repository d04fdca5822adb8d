/**
 * Forwarded answers, kept for as long as their TTLs allow (RFC 1035 §7.4; negative answers for
 * the SOA's negative TTL, RFC 2308 §5), so a name a container asks for again is answered without
 * a trip upstream. An answer is served with the client's id and question bytes and with every TTL
 * lowered by the time it spent here, as a caching resolver must. Truncated answers, SERVFAIL,
 * REFUSED, answers with nothing to take a TTL from, and zero TTLs are never kept.
 *
 * Entries are scoped (the caller passes, say, the upstreams asked), so containers with their own
 * `--dns` servers never see answers from someone else's. Least recently used entries go first
 * once the cache is full.
 */
import { HEADER_BYTES, RCODE, isTruncated, rcodeOf, type Query } from './packet.js';

const TYPE_SOA = 6;
const TYPE_OPT = 41;

interface Entry {
  bytes: Buffer;
  storedAt: number;
  expiresAt: number;
  /** Offset and original value of each TTL field to lower on the way out. */
  ttls: { offset: number; ttl: number }[];
}

export interface AnswerCacheOptions {
  maxEntries?: number;
  /** Longest time any answer is kept, whatever its TTL says. */
  maxTtlSeconds?: number;
  now?: () => number;
}

/** Where each record's TTL sits, and the TTL the whole answer may be kept for; undefined if not cacheable. */
export function ttlLayout(answer: Buffer): { ttls: { offset: number; ttl: number }[]; keepSeconds: number } | undefined {
  if (answer.length < HEADER_BYTES) return undefined;
  const rcode = rcodeOf(answer);
  if ((rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) || isTruncated(answer)) return undefined;
  const qd = answer.readUInt16BE(4);
  const an = answer.readUInt16BE(6);
  const ns = answer.readUInt16BE(8);
  const ar = answer.readUInt16BE(10);
  let off = HEADER_BYTES;
  for (let i = 0; i < qd; i++) off = skipName(answer, off) + 4;
  const ttls: { offset: number; ttl: number }[] = [];
  let positiveTtl = Infinity;
  let negativeTtl: number | undefined;
  for (let i = 0; i < an + ns + ar; i++) {
    off = skipName(answer, off);
    if (off + 10 > answer.length) return undefined;
    const type = answer.readUInt16BE(off);
    const ttl = answer.readUInt32BE(off + 4);
    const rdlength = answer.readUInt16BE(off + 8);
    const rdata = off + 10;
    if (rdata + rdlength > answer.length) return undefined;
    if (type !== TYPE_OPT) {
      ttls.push({ offset: off + 4, ttl });
      if (i < an) positiveTtl = Math.min(positiveTtl, ttl);
      else if (i < an + ns && type === TYPE_SOA) negativeTtl = Math.min(ttl, soaMinimum(answer, rdata, rdlength) ?? ttl);
    }
    off = rdata + rdlength;
  }
  // An answer keeps for its shortest answer TTL; NXDOMAIN or no data for the SOA's negative TTL.
  const keep = an > 0 && rcode === RCODE.NOERROR ? positiveTtl : negativeTtl;
  if (keep === undefined || !Number.isFinite(keep) || keep <= 0) return undefined;
  return { ttls, keepSeconds: keep };
}

/** The SOA's MINIMUM field: the last 4 bytes of its rdata. */
function soaMinimum(buf: Buffer, rdata: number, rdlength: number): number | undefined {
  return rdlength >= 22 ? buf.readUInt32BE(rdata + rdlength - 4) : undefined;
}

/** Offset just past a (possibly compressed) name starting at `off`; throws RangeError on a malformed one. */
function skipName(buf: Buffer, off: number): number {
  for (let guard = 0; guard < 128; guard++) {
    if (off >= buf.length) throw new RangeError('name runs past the packet');
    const len = buf[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2;
    off += len + 1;
  }
  throw new RangeError('name has too many labels');
}

export class AnswerCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly maxTtlSeconds: number;
  private readonly now: () => number;

  constructor(options: AnswerCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxTtlSeconds = options.maxTtlSeconds ?? 3600;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  private key(scope: string, query: Query): string {
    return `${scope}\n${query.key}\n${query.qtype}\n${query.qclass}\n${query.edns ? 'e' : ''}`;
  }

  /** Keeps `answer` to `query` if it may be kept. */
  put(scope: string, query: Query, answer: Buffer): void {
    let layout;
    try {
      layout = ttlLayout(answer);
    } catch {
      return; // malformed: simply not kept
    }
    if (!layout) return;
    const now = this.now();
    const key = this.key(scope, query);
    this.entries.delete(key);
    this.entries.set(key, { bytes: Buffer.from(answer), storedAt: now, expiresAt: now + Math.min(layout.keepSeconds, this.maxTtlSeconds) * 1000, ttls: layout.ttls });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** The kept answer for `query`, with its id, question and lowered TTLs; undefined on a miss. */
  get(scope: string, query: Query): Buffer | undefined {
    const key = this.key(scope, query);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const now = this.now();
    if (now >= entry.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    // Most recently used last: the first key is the one to evict.
    this.entries.delete(key);
    this.entries.set(key, entry);
    const out = Buffer.from(entry.bytes);
    out.writeUInt16BE(query.id, 0);
    // The client's own question bytes (0x20 case randomisation); the same name has the same length.
    if (out.readUInt16BE(4) === 1 && HEADER_BYTES + query.question.length <= out.length) query.question.copy(out, HEADER_BYTES);
    const elapsed = Math.floor((now - entry.storedAt) / 1000);
    for (const { offset, ttl } of entry.ttls) out.writeUInt32BE(Math.max(0, ttl - elapsed), offset);
    return out;
  }

  clear(): void {
    this.entries.clear();
  }
}
