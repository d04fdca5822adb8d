/**
 * IPv4 arithmetic on addresses held as unsigned 32-bit numbers. Numbers compare, sort and index
 * cheaply (the allocator keeps sets of them); text appears only at the edges, via parse/format.
 * Bitwise operators in JavaScript yield signed 32-bit results, so every mask ends in `>>> 0`.
 */
import { BerthError, invalid } from '../errors.js';

/** An IPv4 network. `network` has no host bits set; `text` is the canonical `a.b.c.d/len`. */
export interface Cidr {
  readonly network: number;
  readonly prefix: number;
  readonly text: string;
}

const MAX_IPV4 = 0xffffffff;
// No leading zeros: some tools read "010" as octal (8), others as decimal, so it is ambiguous.
const OCTET = /^(0|[1-9][0-9]{0,2})$/;
const PREFIX = /^(0|[1-9][0-9]?)$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** Parses dotted-quad text. `what` names the value in the error ("gateway", "host IP"). */
export function parseIpv4(text: string, what = 'IPv4 address'): number {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p) && Number(p) <= 255)) {
    throw invalid(`invalid ${what} "${text}": expected four numbers 0-255 like 10.1.0.5`);
  }
  // Multiplying instead of shifting keeps the result unsigned for addresses above 127.255.255.255.
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIpv4(ip: number): string {
  assertIpv4(ip);
  return [ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff].join('.');
}

/** Parses `a.b.c.d/len`, refusing host bits so a typo cannot silently name a different network. */
export function parseCidr(text: string, what = 'subnet'): Cidr {
  const notCidr = (cause?: unknown) =>
    invalid(`invalid ${what} "${text}": not a CIDR (expected e.g. 10.1.0.0/16)`, cause);
  const slash = text.indexOf('/');
  const prefixText = text.slice(slash + 1);
  if (slash < 0 || !PREFIX.test(prefixText) || Number(prefixText) > 32) throw notCidr();
  let ip: number;
  try {
    ip = parseIpv4(text.slice(0, slash));
  } catch (err) {
    throw notCidr(err);
  }
  const prefix = Number(prefixText);
  const network = (ip & maskOf(prefix)) >>> 0;
  if (network !== ip) {
    throw invalid(`invalid ${what} "${text}": host bits are set; did you mean ${formatIpv4(network)}/${prefix}?`);
  }
  return { network, prefix, text: `${formatIpv4(network)}/${prefix}` };
}

/**
 * The network an address with this prefix belongs to, e.g. a host address 192.168.1.5/24 gives
 * 192.168.1.0/24. Host addresses and routes come with host bits set, unlike user input.
 */
export function cidrFromAddress(ip: number, prefix: number): Cidr {
  assertIpv4(ip);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
    throw new BerthError('internal', `IPv4 prefix length out of range: ${prefix}`);
  }
  const network = (ip & maskOf(prefix)) >>> 0;
  return { network, prefix, text: `${formatIpv4(network)}/${prefix}` };
}

export function cidrContains(cidr: Cidr, ip: number): boolean {
  return ((ip & maskOf(cidr.prefix)) >>> 0) === cidr.network;
}

export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, inner.network);
}

/** Two CIDRs overlap exactly when one contains the other: prefixes nest, they never straddle. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContainsCidr(a, b) || cidrContainsCidr(b, a);
}

export function broadcastOf(cidr: Cidr): number {
  return (cidr.network | ~maskOf(cidr.prefix)) >>> 0;
}

/** Number of addresses in the block, network and broadcast included. */
export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

/**
 * The first address after the network address. /31 (RFC 3021 point-to-point) and /32 have no
 * network or broadcast address, so there every address is a host.
 */
export function firstHost(cidr: Cidr): number {
  return cidr.prefix >= 31 ? cidr.network : cidr.network + 1;
}

/** The last address before the broadcast address; see firstHost for /31 and /32. */
export function lastHost(cidr: Cidr): number {
  return cidr.prefix >= 31 ? broadcastOf(cidr) : broadcastOf(cidr) - 1;
}

/**
 * Docker derives a container's MAC from its IPv4 address (02:42 + the four address bytes). The 02
 * marks it locally administered, and the derivation keeps MACs unique wherever IPs are, so ARP
 * caches in neighbours stay valid when an address is reused.
 */
export function macFromIpv4(ip: number): string {
  assertIpv4(ip);
  const bytes = [ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff];
  return ['02', '42', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * Validates a MAC and returns it lower-cased. Multicast and all-zero MACs are refused here because
 * the kernel refuses them on an interface (EADDRNOTAVAIL), which would surface far less clearly.
 */
export function parseMac(text: string): string {
  if (!MAC.test(text)) {
    throw invalid(`invalid MAC address "${text}": expected six hex pairs like 02:42:ac:11:00:02`);
  }
  const mac = text.toLowerCase();
  if (parseInt(mac.slice(0, 2), 16) & 1) {
    throw invalid(`invalid MAC address "${text}": it is a multicast address (lowest bit of the first byte set); use a unicast address like 02:42:ac:11:00:02`);
  }
  if (mac === '00:00:00:00:00:00') throw invalid(`invalid MAC address "${text}": the all-zero address cannot be assigned`);
  return mac;
}

export function isLoopback(ip: number): boolean {
  return ip >>> 24 === 127;
}

function maskOf(prefix: number): number {
  // `x << 32` is `x << 0` in JavaScript, so /0 needs its own case.
  return prefix === 0 ? 0 : (MAX_IPV4 << (32 - prefix)) >>> 0;
}

function assertIpv4(ip: number): void {
  if (!Number.isInteger(ip) || ip < 0 || ip > MAX_IPV4) {
    throw new BerthError('internal', `not an IPv4 address as a uint32: ${ip}`);
  }
}
