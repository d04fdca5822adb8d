/**
 * IPv6 arithmetic on addresses held as 128-bit BigInts, the twin of ipv4.ts. Text appears only at
 * the edges: parse accepts any RFC 4291 form (with `::`, and an embedded dotted quad), format
 * writes the RFC 5952 canonical form (lower case, longest zero run as `::`), so stored addresses
 * compare as text.
 */
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { invalid } from '../errors.js';

/** An IPv6 network. `network` has no host bits set; `text` is canonical (`fd00:1::/64`). */
export interface Cidr6 {
  readonly network: bigint;
  readonly prefix: number;
  readonly text: string;
}

const BITS = 128n;
const ALL = (1n << BITS) - 1n;
const PREFIX = /^(0|[1-9][0-9]{0,2})$/;

/** True for text that is an IPv6 address (so callers can tell the families apart). */
export function isIpv6Text(text: string): boolean {
  return isIPv6(text);
}

/** Parses IPv6 text. `what` names the value in the error ("gateway", "--ip6"). */
export function parseIpv6(text: string, what = 'IPv6 address'): bigint {
  if (!isIPv6(text) || text.includes('%')) {
    throw invalid(`invalid ${what} "${text}": expected an IPv6 address like fd00:1::5`);
  }
  let head = text;
  let tail32: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    // An embedded IPv4 address (::ffff:10.0.0.1) fills the last 32 bits.
    const quad = text.slice(lastColon + 1).split('.').map(Number);
    tail32 = BigInt(((quad[0]! << 24) >>> 0) + (quad[1]! << 16) + (quad[2]! << 8) + quad[3]!);
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const l = groups(left);
  const r = groups(right);
  const all = right === undefined ? l : [...l, ...Array<string>(8 - l.length - r.length).fill('0'), ...r];
  let n = 0n;
  for (const g of all) n = (n << 16n) | BigInt(parseInt(g, 16));
  if (tail32 !== undefined) n = (n & ~0xffffffffn) | tail32;
  return n;
}

/** RFC 5952: lower-case hex, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
export function formatIpv6(ip: bigint): string {
  if (ip < 0n || ip > ALL) throw new Error(`not an IPv6 address value: ${ip}`);
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** The canonical text of an IPv6 address typed in any form. */
export function canonicalIpv6(text: string, what?: string): string {
  return formatIpv6(parseIpv6(text, what));
}

export function maskOf6(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL << (BITS - BigInt(prefix))) & ALL;
}

/** Parses `addr/len`, refusing host bits so a typo cannot silently name a different network. */
export function parseCidr6(text: string, what = 'IPv6 subnet'): Cidr6 {
  const slash = text.indexOf('/');
  const prefixText = text.slice(slash + 1);
  const notCidr = (cause?: unknown) => invalid(`invalid ${what} "${text}": not an IPv6 CIDR (expected e.g. fd00:1::/64)`, cause);
  if (slash < 0 || !PREFIX.test(prefixText) || Number(prefixText) > 128) throw notCidr();
  let ip: bigint;
  try {
    ip = parseIpv6(text.slice(0, slash));
  } catch (err) {
    throw notCidr(err);
  }
  const prefix = Number(prefixText);
  const network = ip & maskOf6(prefix);
  if (network !== ip) {
    throw invalid(`invalid ${what} "${text}": host bits are set; did you mean ${formatIpv6(network)}/${prefix}?`);
  }
  return { network, prefix, text: `${formatIpv6(network)}/${prefix}` };
}

/** The network an address with this prefix belongs to (host addresses and routes have host bits). */
export function cidr6FromAddress(ip: bigint, prefix: number): Cidr6 {
  const network = ip & maskOf6(prefix);
  return { network, prefix, text: `${formatIpv6(network)}/${prefix}` };
}

export function lastOf6(cidr: Cidr6): bigint {
  return cidr.network | (ALL ^ maskOf6(cidr.prefix));
}

export function cidr6Contains(cidr: Cidr6, ip: bigint): boolean {
  return (ip & maskOf6(cidr.prefix)) === cidr.network;
}

export function cidr6ContainsCidr(outer: Cidr6, inner: Cidr6): boolean {
  return inner.prefix >= outer.prefix && cidr6Contains(outer, inner.network);
}

export function cidrs6Overlap(a: Cidr6, b: Cidr6): boolean {
  return cidr6Contains(a, b.network) || cidr6Contains(b, a.network);
}

/** Link-local (fe80::/10), multicast (ff00::/8), loopback and unspecified: never a network's subnet. */
export function isSpecialIpv6(ip: bigint): boolean {
  return ip >> 118n === 0x3fan || ip >> 120n === 0xffn || ip <= 1n;
}

/**
 * The ULA /48 a host's IPv6 networks come from when none is given: `fd` and the low 40 bits of
 * sha256(host id), Docker 27's scheme (RFC 4193 asks for a pseudo-random global id, so two hosts'
 * prefixes do not collide when their networks are joined later).
 */
export function ulaPrefixOf(hostId: string): Cidr6 {
  const digest = createHash('sha256').update(hostId).digest();
  const globalId = BigInt(`0x${digest.subarray(digest.length - 5).toString('hex')}`);
  return cidr6FromAddress(((0xfdn << 40n) | globalId) << 80n, 48);
}

/** The first /64 of `base` not overlapping any of `taken`. */
export function pickSubnet6(base: Cidr6, taken: readonly Cidr6[], size = 64): Cidr6 {
  const count = 1n << BigInt(size - base.prefix);
  const limit = count < 65536n ? count : 65536n;
  for (let i = 0n; i < limit; i++) {
    const candidate = cidr6FromAddress(base.network + (i << (BITS - BigInt(size))), size);
    if (!taken.some((t) => cidrs6Overlap(t, candidate))) return candidate;
  }
  throw invalid(`no free /${size} left in ${base.text} for an IPv6 network: pass --subnet with an IPv6 CIDR`);
}

/** The reverse-lookup name of an address: nibbles, least significant first, under ip6.arpa. */
export function reverseName6(ip: bigint): string {
  const nibbles: string[] = [];
  for (let i = 0; i < 32; i++) nibbles.push(((ip >> BigInt(i * 4)) & 0xfn).toString(16));
  return `${nibbles.join('.')}.ip6.arpa`;
}

/** The 16 bytes of an address, network order (for netlink and DNS AAAA records). */
export function ipv6Bytes(ip: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(ip >> 64n, 0);
  b.writeBigUInt64BE(ip & 0xffffffffffffffffn, 8);
  return b;
}

export function ipv6FromBytes(b: Buffer): bigint {
  return (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8);
}
