/**
 * Holding a published host port: a socket bound to the host address and port, never listening
 * (TCP) and never read (UDP), kept open for as long as the port is published. Nothing ever
 * reaches it (nftables DNATs the port's traffic before socket lookup), but while it is bound no
 * other process can bind the port, so a host service started later fails loudly instead of
 * silently shadowing the published port for local clients (Docker ≥ 25 does the same). No
 * SO_REUSEADDR: a bind by anyone else, with or without it, is refused.
 */
import koffi from 'koffi';
import { SyscallError } from './libc.js';

const libc = koffi.load('libc.so.6');
const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const bindFn = libc.func('int bind(int fd, const void *addr, uint32_t len)');
const closeFn = libc.func('int close(int fd)');

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0x80000;
export const EADDRINUSE = 98;

function sockaddrIn(ip: string, port: number): Buffer {
  const buf = Buffer.alloc(16);
  buf.writeUInt16LE(AF_INET, 0);
  buf.writeUInt16BE(port, 2);
  Buffer.from(ip.split('.').map(Number)).copy(buf, 4);
  return buf;
}

/** Binds the port in the calling thread's namespace; returns the socket's fd. */
export function holdPort(protocol: 'tcp' | 'udp', ip: string, port: number): number {
  const fd = Number(socketFn(AF_INET, (protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
  if (fd < 0) throw new SyscallError('socket', koffi.errno());
  const addr = sockaddrIn(ip, port);
  if (Number(bindFn(fd, addr, addr.length)) < 0) {
    const errno = koffi.errno();
    closeFn(fd);
    throw Object.assign(new SyscallError(`bind ${ip}:${port}/${protocol}`, errno), { errno });
  }
  return fd;
}

export function releasePort(fd: number): void {
  closeFn(fd);
}
