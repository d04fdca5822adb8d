/**
 * Holding a published host port: a socket bound to the host address and port, never listening
 * (TCP) and never read (UDP), kept open for as long as the port is published. Nothing ever
 * reaches it (nftables DNATs the port's traffic before socket lookup), but while it is bound no
 * other process can bind the port, so a host service started later fails loudly instead of
 * silently shadowing the published port for local clients (Docker ≥ 25 does the same). No
 * SO_REUSEADDR: a bind by anyone else, with or without it, is refused.
 */
import { ipv6Bytes, parseIpv6 } from '../ipam/ipv6.js';
import * as libc from './libc.js';

export const EADDRINUSE = 98;

function sockaddrIn(ip: string, port: number): Buffer {
  const buf = Buffer.alloc(16);
  buf.writeUInt16LE(libc.AF_INET, 0);
  buf.writeUInt16BE(port, 2);
  Buffer.from(ip.split('.').map(Number)).copy(buf, 4);
  return buf;
}

/** struct sockaddr_in6: family, port, flowinfo, the 16 address bytes, scope id. */
function sockaddrIn6(ip: string, port: number): Buffer {
  const buf = Buffer.alloc(28);
  buf.writeUInt16LE(libc.AF_INET6, 0);
  buf.writeUInt16BE(port, 2);
  ipv6Bytes(parseIpv6(ip)).copy(buf, 8);
  return buf;
}

const IPPROTO_IP = 0;
const IP_FREEBIND = 15;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;

/**
 * Binds the port in the calling thread's namespace; returns the socket's fd. `freebind` binds an
 * address the namespace does not have yet (127.0.0.11 while a runtime's `lo` is still down).
 */
export function holdPort(protocol: 'tcp' | 'udp', ip: string, port: number, opts: { freebind?: boolean } = {}): number {
  const v6 = ip.includes(':');
  const fd = libc.socket(v6 ? libc.AF_INET6 : libc.AF_INET, (protocol === 'tcp' ? libc.SOCK_STREAM : libc.SOCK_DGRAM) | libc.SOCK_CLOEXEC, 0);
  try {
    if (opts.freebind) libc.setsockoptInt(fd, IPPROTO_IP, IP_FREEBIND, 1);
    // `::` holds the IPv6 port only: its IPv4 twin is held (and may be published) on its own.
    if (v6) libc.setsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    libc.bind(fd, v6 ? sockaddrIn6(ip, port) : sockaddrIn(ip, port), `bind ${v6 ? `[${ip}]` : ip}:${port}/${protocol}`);
  } catch (err) {
    libc.close(fd);
    throw err;
  }
  return fd;
}

export function releasePort(fd: number): void {
  libc.close(fd);
}

/** Holds a host port; its fd, or `busy` when another socket has the port bound. */
export function tryHoldPort(protocol: 'tcp' | 'udp', ip: string, port: number): number | 'busy' {
  try {
    return holdPort(protocol, ip, port);
  } catch (err) {
    if ((err as { errno?: number }).errno === EADDRINUSE) return 'busy';
    throw err;
  }
}
