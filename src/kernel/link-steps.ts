/**
 * Small netlink steps the kernel operations share (ops.ts, ops-lan.ts, ops-ptp.ts): the host
 * namespace's socket, a link lookup by name, an idempotent address add, and IPv6 off on a link.
 * Not kernel operations themselves: ops.ts does not re-export this module.
 */
import * as fs from 'node:fs';
import * as nl from './netlink/codec.js';
import { NetlinkSocket, EEXIST, ENODEV } from './netlink/socket.js';
import { writeNetSysctl } from './net-sysctl.js';

let hostSocket: NetlinkSocket | undefined;
/** The kernel thread's socket in the host namespace, made once. */
export const host = () => (hostSocket ??= new NetlinkSocket());

export function linkByName(sock: NetlinkSocket, name: string): nl.LinkInfo | undefined {
  try {
    const [reply] = sock.transact([nl.getLink(name)], [`look up link ${name}`]);
    return reply?.[0] ? nl.parseLink(reply[0].body) : undefined;
  } catch (err) {
    if ((err as { errno?: number }).errno === ENODEV) return undefined;
    throw err;
  }
}

/** Adds an address; one already there is fine (the reconciler calls this to restore). */
export function addAddress(sock: NetlinkSocket, index: number, ip: string, prefix: number, what: string, broadcast?: string): void {
  try {
    sock.transact([nl.newAddress(index, ip, prefix, broadcast)], [`add ${ip}/${prefix} to ${what}`]);
  } catch (err) {
    if ((err as { errno?: number }).errno !== EEXIST) throw err;
  }
}

/**
 * IPv6 on for a link of a dual-stack network: the interface takes addresses of both families, and
 * never autoconfigures from router advertisements (berth assigns every address; a rogue RA from a
 * container must not add routes). Written before the link goes up, so no RA is ever accepted.
 */
export function enableIpv6(conf: string): void {
  // No duplicate address detection for the link-local address either: it would sit `tentative`
  // for a second after start (berth's global addresses are added with NODAD).
  writeNetSysctl('ipv6', `conf/${conf}/accept_dad`, '0');
  writeNetSysctl('ipv6', `conf/${conf}/disable_ipv6`, '0');
  writeNetSysctl('ipv6', `conf/${conf}/accept_ra`, '0');
  writeNetSysctl('ipv6', `conf/${conf}/autoconf`, '0');
}

/**
 * berth's IPv4-only networks stay IPv4-only: an interface with IPv6 gets an fe80:: address, and containers
 * could talk over it past icc=false and the isolation rules (as Docker ≥ 27, IPv6 is off on the
 * interfaces of IPv4-only networks). Called with an interface of berth's own, or with `default`
 * only inside a namespace berth created, never for the host's `default`/`all`. A kernel without
 * IPv6 has nothing to disable.
 */
export function disableIpv6(conf: string): void {
  try {
    writeNetSysctl('ipv6', `conf/${conf}/disable_ipv6`, '1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || fs.existsSync('/proc/sys/net/ipv6/conf/lo')) throw err;
  }
}
