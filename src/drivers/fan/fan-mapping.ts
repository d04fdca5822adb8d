/**
 * Ubuntu Fan's address mapping (fanctl(8), fanatic(8)), as pure arithmetic. An underlay network
 * (the hosts' own addresses, a /16 in the classic fan) and an overlay network (a /8) give every
 * host of the underlay its own slice of the overlay: the overlay's prefix followed by the host's
 * bits of its underlay address. With underlay 172.16.0.0/16 and overlay 250.0.0.0/8, host
 * 172.16.3.4 owns 250.3.4.0/24, and 250.3.4.15 lives on 172.16.3.4. Any host computes any other
 * host's slice, and back, from the two networks alone: nothing is stored or announced.
 *
 * fanatic's general rule: slice prefix = overlay prefix + (32 − underlay prefix), so a /24
 * underlay with a /8 overlay gives /16 slices. Each slice must hold a gateway and at least one
 * container, so it is at most a /30.
 */
import { invalid } from '../../errors.js';
import { cidrFromAddress, cidrContains, cidrsOverlap, firstHost, formatIpv4, parseCidr, parseIpv4, type Cidr } from '../../ipam/ipv4.js';

export interface FanMap {
  underlay: Cidr;
  overlay: Cidr;
  /** Bits of an underlay address that name the host (32 − underlay prefix). */
  hostBits: number;
  /** The prefix length of each host's slice of the overlay. */
  slicePrefix: number;
}

/** The option as given: the underlay network, and this host's address if the user named it (fanctl's `-u 172.16.3.4/16`). */
export interface UnderlayOption {
  underlay: Cidr;
  hostAddress?: number;
}

/** An overlay is at most a /24, so its top 24 bits tell it from any overlay it does not overlap (fanVni). */
export const MAX_OVERLAY_PREFIX = 24;

/** The smallest slice that holds a gateway and one container (network and broadcast aside). */
export const MAX_SLICE_PREFIX = 30;

const RESERVED: { cidr: Cidr; what: string }[] = [
  { cidr: cidrFromAddress(0, 8), what: '"this network" space (0.0.0.0/8)' },
  { cidr: cidrFromAddress(0x7f000000, 8), what: 'loopback space (127.0.0.0/8)' },
  { cidr: cidrFromAddress(0xa9fe0000, 16), what: 'link-local space (169.254.0.0/16)' },
  { cidr: cidrFromAddress(0xe0000000, 4), what: 'multicast space (224.0.0.0/4)' },
];

/** `a.b.c.d/len`: the underlay network, or this host's address in it (host bits set). */
export function parseUnderlay(text: string): UnderlayOption {
  const slash = text.indexOf('/');
  const lengthText = text.slice(slash + 1);
  if (slash < 0 || !/^\d{1,2}$/.test(lengthText) || Number(lengthText) > 32) {
    throw invalid(`-o underlay=${text} is not an IPv4 CIDR: give the network the hosts' addresses are in, e.g. -o underlay=192.168.0.0/16`);
  }
  const address = parseIpv4(text.slice(0, slash), `underlay address in -o underlay=${text}`);
  const underlay = cidrFromAddress(address, Number(lengthText));
  return address === underlay.network ? { underlay } : { underlay, hostAddress: address };
}

/** Checks the two networks against each other and fanatic's rule; throws a BerthError naming what is wrong. */
export function fanMap(underlayText: string, overlayText: string): FanMap & UnderlayOption {
  const under = parseUnderlay(underlayText);
  const overlay = parseCidr(overlayText, 'overlay (-o overlay)');
  const { underlay } = under;
  if (overlay.prefix < 1) throw invalid(`-o overlay=${overlay.text} is the whole address space: give a network such as 250.0.0.0/8`);
  if (overlay.prefix > MAX_OVERLAY_PREFIX) throw invalid(`-o overlay=${overlay.text} is smaller than a /${MAX_OVERLAY_PREFIX}: a fan's overlay is shared out among hosts; give a /${MAX_OVERLAY_PREFIX} or larger, e.g. 250.0.0.0/8`);
  const reserved = RESERVED.find((r) => cidrsOverlap(r.cidr, overlay));
  if (reserved) throw invalid(`-o overlay=${overlay.text} overlaps ${reserved.what}: pick another range, e.g. 250.0.0.0/8 (the classic fan's) or 10.0.0.0/8`);
  if (cidrsOverlap(underlay, overlay)) throw invalid(`the overlay ${overlay.text} overlaps the underlay ${underlay.text}: container addresses must not be host addresses; pick an overlay outside it`);
  const hostBits = 32 - underlay.prefix;
  const slicePrefix = overlay.prefix + hostBits;
  if (slicePrefix > MAX_SLICE_PREFIX) {
    throw invalid(
      `an underlay /${underlay.prefix} and an overlay /${overlay.prefix} leave each host a /${slicePrefix} (overlay prefix + ${hostBits} host bits of the underlay), ` +
        `too small for a gateway and a container: the slice must be at most a /${MAX_SLICE_PREFIX}; use a shorter overlay prefix or a longer underlay prefix (the classic fan is a /16 underlay with a /8 overlay, giving /24 slices)`,
    );
  }
  return { ...under, overlay, hostBits, slicePrefix };
}

const hostMask = (map: FanMap) => (map.hostBits === 32 ? 0xffffffff : 2 ** map.hostBits - 1);

/** The host part of an underlay address (its bits below the underlay prefix). */
export function hostPartOf(map: FanMap, underlayAddress: number): number {
  return (underlayAddress & hostMask(map)) >>> 0;
}

/** The underlay's network and broadcast addresses are no host's: they own no slice. */
function isHostPart(map: FanMap, part: number): boolean {
  return part !== 0 && part !== hostMask(map);
}

/** The slice of the overlay owned by the host at `underlayAddress`, and its gateway (the slice's first address). */
export function sliceOf(map: FanMap, underlayAddress: number): { subnet: Cidr; gateway: number } {
  if (!cidrContains(map.underlay, underlayAddress) || !isHostPart(map, hostPartOf(map, underlayAddress))) {
    throw invalid(`${formatIpv4(underlayAddress)} is not a host address of the underlay ${map.underlay.text}`);
  }
  const network = (map.overlay.network + hostPartOf(map, underlayAddress) * 2 ** (32 - map.slicePrefix)) >>> 0;
  const subnet = cidrFromAddress(network, map.slicePrefix);
  return { subnet, gateway: firstHost(subnet) };
}

/**
 * The underlay address of the host that owns an overlay address (where the fan sends it), or
 * undefined if the address is outside the overlay or in a slice no host can own.
 */
export function underlayHostOf(map: FanMap, overlayAddress: number): number | undefined {
  if (!cidrContains(map.overlay, overlayAddress)) return undefined;
  const part = Math.floor(overlayAddress / 2 ** (32 - map.slicePrefix)) & hostMask(map);
  return isHostPart(map, part >>> 0) ? (map.underlay.network + (part >>> 0)) >>> 0 : undefined;
}

/** The host whose slice `subnet` is (the network record keeps the slice, not the host address). */
export function hostOfSlice(map: FanMap, subnet: Cidr): number {
  const host = subnet.prefix === map.slicePrefix ? underlayHostOf(map, subnet.network) : undefined;
  if (host === undefined) throw invalid(`${subnet.text} is not a host's slice of the fan ${map.overlay.text} over ${map.underlay.text}`);
  return host;
}

/**
 * The MAC of the fan device on the host with this host part: 02:fa and the host part's four
 * bytes. Every host computes every peer's, so a frame sent across the fan carries the receiving
 * device's own MAC (which it accepts) and the sender's (which differs: the device drops frames
 * from its own MAC as loops).
 */
export function fanDeviceMac(hostPart: number): string {
  const bytes = [hostPart >>> 24, (hostPart >>> 16) & 0xff, (hostPart >>> 8) & 0xff, hostPart & 0xff];
  return ['02', 'fa', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * The VXLAN network identifier of a fan: the overlay's top 24 bits (250.0.0.0/8 → 0xfa0000).
 * Every host derives the same one, and overlays that do not overlap (berth refuses those that
 * do) get different ones, since an overlay is at most a /24.
 */
export function fanVni(map: FanMap): number {
  return Math.floor(map.overlay.network / 256);
}

export interface HostAddress {
  address: string;
  prefix: number;
  ifname: string;
}

/**
 * This host's address in the underlay: the one the user named, or the only one it has there.
 * Throws a BerthError naming the underlay and the host's addresses when there is none, or several.
 */
export function pickHostAddress<T extends HostAddress>(under: UnderlayOption, addresses: T[]): T {
  const listed = () => addresses.map((a) => `${a.address}/${a.prefix} on ${a.ifname}`).join(', ') || 'none';
  const inside = addresses.filter((a) => cidrContains(under.underlay, parseIpv4(a.address)));
  if (under.hostAddress !== undefined) {
    const asked = formatIpv4(under.hostAddress);
    const hit = inside.find((a) => a.address === asked);
    if (!hit) throw invalid(`-o underlay=${asked}/${under.underlay.prefix} names ${asked}, which is not an address of this host (its IPv4 addresses: ${listed()})`);
    return hit;
  }
  if (inside.length === 0) {
    throw invalid(
      `this host has no address in the underlay ${under.underlay.text} (its IPv4 addresses: ${listed()}): a fan network needs the host's own address in the underlay, ` +
        'since that address picks the host\'s slice of the overlay; create it on hosts of that underlay, or give the underlay this host is on',
    );
  }
  if (inside.length > 1) {
    throw invalid(
      `this host has several addresses in the underlay ${under.underlay.text} (${inside.map((a) => `${a.address} on ${a.ifname}`).join(', ')}): ` +
        `name the one the fan uses, e.g. -o underlay=${inside[0]!.address}/${under.underlay.prefix}`,
    );
  }
  return inside[0]!;
}
