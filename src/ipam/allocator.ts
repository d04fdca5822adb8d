/**
 * Address allocation for one network, following Docker's IPAM: dynamic addresses come from the
 * --ip-range (or the whole subnet), lowest free first, so a removed container's address is the
 * next one handed out; a requested --ip only has to lie in the subnet. The functions are pure:
 * the caller owns the set of addresses in use (from the store) and records the result.
 */
import { conflict, invalid } from '../errors.js';
import {
  broadcastOf,
  cidrContains,
  cidrContainsCidr,
  firstHost,
  formatIpv4,
  lastHost,
  type Cidr,
} from './ipv4.js';

export interface PoolSpec {
  readonly subnet: Cidr;
  readonly gateway: number;
  /** Restricts dynamic allocation; always inside `subnet` (see validatePoolSpec). */
  readonly ipRange?: Cidr;
  /** Auxiliary addresses (`--aux-address NAME=IP`): never handed out, never taken by --ip. */
  readonly reserved?: ReadonlyMap<number, string>;
}

/** Smallest subnet that fits a gateway and one container besides network and broadcast. */
const SMALLEST_PREFIX = 30;

/**
 * The lowest address not in use and not reserved. Scanning up from the bottom stops at the first
 * gap, and by pigeonhole that gap lies at most `inUse.size + 1` steps up, so the cost follows the
 * number of containers, never the size of the subnet.
 */
export function allocateAddress(pool: PoolSpec, inUse: ReadonlySet<number>, networkName?: string): number {
  const { first, last } = dynamicBounds(pool);
  for (let ip = first; ip <= last; ip++) {
    if (ip !== pool.gateway && !inUse.has(ip) && !pool.reserved?.has(ip)) return ip;
  }
  const range = (pool.ipRange ?? pool.subnet).text;
  const owner = networkName === undefined ? '' : ` (network "${networkName}" is full)`;
  throw conflict(`no free address left in ${range}${owner}: remove a container or use a larger subnet/--ip-range`);
}

/**
 * The lowest free address at or above the start of this allocator's share of the range (share
 * `index` of `shares`), wrapping round to the bottom. Hosts of a cluster allocating at once each
 * scan from their own share, so they do not race for the same addresses (bench/tools/ipam-race.ts).
 */
export function allocateAddressInShare(pool: PoolSpec, inUse: ReadonlySet<number>, index: number, shares: number, networkName?: string): number {
  const { first, last } = dynamicBounds(pool);
  const span = last - first + 1;
  const start = first + Math.floor((Math.max(0, index) * span) / Math.max(1, shares));
  for (let k = 0; k < span; k++) {
    const ip = first + ((start - first + k) % span);
    if (ip !== pool.gateway && !inUse.has(ip) && !pool.reserved?.has(ip)) return ip;
  }
  return allocateAddress(pool, inUse, networkName);
}

/**
 * Checks an address the user asked for (--ip). Like Docker, it may lie outside --ip-range, which
 * is how users keep static addresses clear of dynamic ones.
 */
export function checkRequestedAddress(
  pool: PoolSpec,
  ip: number,
  inUse: ReadonlySet<number>,
  networkName: string,
): void {
  const { subnet } = pool;
  const address = formatIpv4(ip);
  const where = `network "${networkName}"'s subnet ${subnet.text}`;
  if (!cidrContains(subnet, ip)) throw invalid(`Invalid address ${address}: it does not belong to ${where}`);
  if (ip === subnet.network) throw invalid(`Invalid address ${address}: it is the network address of ${where}`);
  if (ip === broadcastOf(subnet)) throw invalid(`Invalid address ${address}: it is the broadcast address of ${where}`);
  if (ip === pool.gateway) {
    throw invalid(`Invalid address ${address}: it is the gateway of network "${networkName}"; pick another address`);
  }
  const aux = pool.reserved?.get(ip);
  if (aux !== undefined) throw invalid(`Invalid address ${address}: it is the auxiliary address "${aux}" of network "${networkName}"; pick another address`);
  if (inUse.has(ip)) throw conflict(`address ${address} is already in use on network "${networkName}"`);
}

/**
 * Checks the addressing options of a new network and fills in the default gateway (the first
 * host, as Docker does).
 */
export function validatePoolSpec(subnet: Cidr, gateway?: number, ipRange?: Cidr, aux: ReadonlyMap<string, number> = new Map()): PoolSpec {
  if (subnet.prefix > SMALLEST_PREFIX) {
    throw invalid(
      `subnet ${subnet.text} is too small: a network needs at least a /${SMALLEST_PREFIX} ` +
        '(network address, gateway, one container, broadcast address)',
    );
  }
  const reserved = checkAuxAddresses(subnet, gateway ?? firstHost(subnet), aux);
  const pool: PoolSpec = { subnet, gateway: gateway ?? firstHost(subnet), ...(ipRange && { ipRange }), ...(reserved.size > 0 && { reserved }) };
  checkGateway(subnet, pool.gateway);
  if (ipRange) checkIpRange(pool, ipRange);
  return pool;
}

/** Each auxiliary address is a host address of the subnet, not the gateway, and named once. */
function checkAuxAddresses(subnet: Cidr, gateway: number, aux: ReadonlyMap<string, number>): Map<number, string> {
  const reserved = new Map<number, string>();
  for (const [name, ip] of aux) {
    const address = formatIpv4(ip);
    if (!name) throw invalid(`invalid --aux-address "=${address}": expected NAME=IP`);
    if (!cidrContains(subnet, ip)) throw invalid(`no matching subnet for aux-address ${name}=${address}: it must be inside ${subnet.text}`);
    if (ip === subnet.network || ip === broadcastOf(subnet)) throw invalid(`aux-address ${name}=${address} is the network or broadcast address of ${subnet.text}`);
    if (ip === gateway) throw invalid(`aux-address ${name}=${address} is the network's gateway: pick another address`);
    const other = reserved.get(ip);
    if (other !== undefined) throw invalid(`aux-addresses ${other} and ${name} are both ${address}: each needs its own address`);
    reserved.set(ip, name);
  }
  return reserved;
}

function checkGateway(subnet: Cidr, gateway: number): void {
  const address = formatIpv4(gateway);
  if (!cidrContains(subnet, gateway)) {
    throw invalid(`no matching subnet for gateway ${address}: the gateway must be inside ${subnet.text}`);
  }
  const suggestion = `use a host address such as ${formatIpv4(firstHost(subnet))}`;
  if (gateway === subnet.network) {
    throw invalid(`invalid gateway ${address}: it is the network address of ${subnet.text}; ${suggestion}`);
  }
  if (gateway === broadcastOf(subnet)) {
    throw invalid(`invalid gateway ${address}: it is the broadcast address of ${subnet.text}; ${suggestion}`);
  }
}

function checkIpRange(pool: PoolSpec, ipRange: Cidr): void {
  if (!cidrContainsCidr(pool.subnet, ipRange)) {
    throw invalid(`no matching subnet for range ${ipRange.text}: --ip-range must be inside ${pool.subnet.text}`);
  }
  // Docker accepts such a range and fails every later `run`; refusing it up front is kinder.
  const { first, last } = dynamicBounds(pool);
  const gatewayInside = pool.gateway >= first && pool.gateway <= last;
  if (last - first + 1 - (gatewayInside ? 1 : 0) <= 0) {
    throw invalid(
      `--ip-range ${ipRange.text} leaves no address for containers in ${pool.subnet.text} once the ` +
        'network, broadcast and gateway addresses are set aside; use a larger range',
    );
  }
}

/**
 * The inclusive span dynamic allocation draws from. The range's own first and last addresses are
 * usable unless they are the subnet's network or broadcast address: Docker treats an --ip-range as
 * a plain block of addresses, not as a network of its own.
 */
function dynamicBounds(pool: PoolSpec): { first: number; last: number } {
  const range = pool.ipRange ?? pool.subnet;
  return {
    first: Math.max(range.network, firstHost(pool.subnet)),
    last: Math.min(broadcastOf(range), lastHost(pool.subnet)),
  };
}
