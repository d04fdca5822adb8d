/**
 * The subnets a user-defined network gets when `network create` has no --subnet: Docker's default
 * address pools, in Docker's order, so scripts and firewall rules written for Docker keep working.
 */
import { conflict } from '../errors.js';
import { cidrsOverlap, parseCidr, type Cidr } from './ipv4.js';

/** Held back for the predefined `bridge` network (docker0's 172.17.0.1/16). */
export const DEFAULT_BRIDGE_SUBNET: Cidr = parseCidr('172.17.0.0/16');

/** 172.18.0.0/16 … 172.31.0.0/16, then 192.168.0.0/16 cut into /20s: 30 pools in all. */
export const DEFAULT_ADDRESS_POOLS: readonly Cidr[] = Object.freeze([
  ...Array.from({ length: 14 }, (_, i) => parseCidr(`172.${18 + i}.0.0/16`)),
  ...Array.from({ length: 16 }, (_, i) => parseCidr(`192.168.${16 * i}.0/20`)),
]);

/**
 * The first default pool clear of `taken`. Callers pass other networks' subnets and also the
 * host's own addresses and routes: a bridge subnet that shadows a route the host already uses
 * (a LAN, a VPN) would cut the host off from it. A default route (0.0.0.0/0) is ignored, as
 * Docker does: it overlaps every pool, and a bridge route more specific than it is harmless.
 */
export function pickDefaultSubnet(taken: readonly Cidr[]): Cidr {
  const relevant = taken.filter((t) => t.prefix > 0);
  const free = DEFAULT_ADDRESS_POOLS.find((pool) => !relevant.some((t) => cidrsOverlap(pool, t)));
  if (!free) throw conflict('all default address pools are in use or overlap host routes: pass --subnet');
  return free;
}
