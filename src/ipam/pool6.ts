/**
 * IPv6 address allocation for one network, allocator.ts's twin. As Docker: the gateway is the
 * subnet's first address after the subnet-router anycast address (`::1` of the prefix), dynamic
 * addresses come from --ip-range (or the subnet) lowest free first, and a requested --ip6 only
 * has to lie in the subnet. IPv6 has no broadcast address, so the last address is usable.
 */
import { conflict, invalid } from '../errors.js';
import { cidr6Contains, cidr6ContainsCidr, formatIpv6, lastOf6, type Cidr6 } from './ipv6.js';

export interface Pool6 {
  readonly subnet: Cidr6;
  readonly gateway: bigint;
  readonly ipRange?: Cidr6;
}

/** Smallest IPv6 subnet: the anycast address, a gateway and two containers. */
const SMALLEST_PREFIX6 = 126;

/** Checks a new network's IPv6 addressing and fills in the default gateway. */
export function validatePool6(subnet: Cidr6, gateway?: bigint, ipRange?: Cidr6): Pool6 {
  if (subnet.prefix > SMALLEST_PREFIX6) {
    throw invalid(`IPv6 subnet ${subnet.text} is too small: a network needs at least a /${SMALLEST_PREFIX6} (subnet-router anycast address, gateway, containers)`);
  }
  const gw = gateway ?? subnet.network + 1n;
  const gwText = formatIpv6(gw);
  if (!cidr6Contains(subnet, gw)) throw invalid(`no matching subnet for IPv6 gateway ${gwText}: the gateway must be inside ${subnet.text}`);
  if (gw === subnet.network) {
    throw invalid(`invalid IPv6 gateway ${gwText}: it is the subnet-router anycast address of ${subnet.text}; use ${formatIpv6(subnet.network + 1n)}`);
  }
  const pool: Pool6 = { subnet, gateway: gw, ...(ipRange && { ipRange }) };
  if (ipRange) {
    if (!cidr6ContainsCidr(subnet, ipRange)) throw invalid(`no matching subnet for IPv6 range ${ipRange.text}: --ip-range must be inside ${subnet.text}`);
    const { first, last } = bounds(pool);
    const gatewayInside = gw >= first && gw <= last ? 1n : 0n;
    if (last - first + 1n - gatewayInside <= 0n) throw invalid(`IPv6 --ip-range ${ipRange.text} leaves no address for containers: use a larger range`);
  }
  return pool;
}

function bounds(pool: Pool6): { first: bigint; last: bigint } {
  const range = pool.ipRange ?? pool.subnet;
  const first = range.network > pool.subnet.network ? range.network : pool.subnet.network + 1n;
  return { first, last: lastOf6(range) };
}

/** The lowest address not in use; costs O(containers) by the same pigeonhole as the IPv4 allocator. */
export function allocate6(pool: Pool6, inUse: ReadonlySet<bigint>, networkName: string): bigint {
  const { first, last } = bounds(pool);
  for (let ip = first; ip <= last; ip++) {
    if (ip !== pool.gateway && !inUse.has(ip)) return ip;
  }
  throw conflict(`no free IPv6 address left in ${(pool.ipRange ?? pool.subnet).text} (network "${networkName}" is full): remove a container or use a larger subnet`);
}

/** Checks an address the user asked for with --ip6. */
export function checkRequested6(pool: Pool6, ip: bigint, inUse: ReadonlySet<bigint>, networkName: string): void {
  const address = formatIpv6(ip);
  const where = `network "${networkName}"'s IPv6 subnet ${pool.subnet.text}`;
  if (!cidr6Contains(pool.subnet, ip)) throw invalid(`Invalid address ${address}: it does not belong to ${where}`);
  if (ip === pool.subnet.network) throw invalid(`Invalid address ${address}: it is the subnet-router anycast address of ${where}`);
  if (ip === pool.gateway) throw invalid(`Invalid address ${address}: it is the IPv6 gateway of network "${networkName}"; pick another address`);
  if (inUse.has(ip)) throw conflict(`address ${address} is already in use on network "${networkName}"`);
}
