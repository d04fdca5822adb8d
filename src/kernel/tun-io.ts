/**
 * Batched UDP I/O bound through koffi, for the threads that move datagrams outside Node's dgram:
 * the udp backend's packet pump (tun-worker.ts) and the DNS resolver's batch thread
 * (dns/udp-batch-worker.ts). The batch structures are fixed packet slots with the `struct mmsghdr`
 * array that points into them, built once, so moving a batch of packets allocates nothing and costs
 * one sendmmsg or recvmmsg. Layouts are those of 64-bit Linux (LP64); their users refuse anything else.
 *
 * None of these changes a thread's namespace.
 */
import koffi from 'koffi';
import { SyscallError } from './libc.js';

const libc = koffi.load('libc.so.6');

export const POLLIN = 0x1;
export const EAGAIN = 11;
export const EINTR = 4;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
const EFD_NONBLOCK = 0x800;
const EFD_CLOEXEC = 0x80000;

const pollFn = libc.func('int poll(void *fds, uint64_t nfds, int timeout)');
const readFn = libc.func('intptr_t read(int fd, void *buf, uintptr_t n)');
const writeFn = libc.func('intptr_t write(int fd, const void *buf, uintptr_t n)');
const sendmmsgFn = libc.func('int sendmmsg(int fd, void *msgs, uint32_t vlen, int flags)');
const sendtoFn = libc.func('intptr_t sendto(int fd, const void *buf, uintptr_t n, int flags, const void *addr, uint32_t alen)');
const getsocknameFn = libc.func('int getsockname(int fd, void *addr, void *alen)');
const recvmmsgFn = libc.func('int recvmmsg(int fd, void *msgs, uint32_t vlen, int flags, void *timeout)');
const eventfdFn = libc.func('int eventfd(uint32_t initval, int flags)');
const ioctlFn = libc.func('int ioctl(int fd, unsigned long request, ...)');
// memset with a length of 0 returns its first argument: the address of a Buffer's memory, which
// never moves (Node buffers of this size live outside the garbage-collected heap).
const addressFn = libc.func('uintptr_t memset(void *s, int c, uintptr_t n)');

/** The last call's errno (koffi keeps it per thread). */
export const errno = (): number => koffi.errno();

export const poll = (fds: Buffer, n: number, timeoutMs: number): number => Number(pollFn(fds, n, timeoutMs));
/** read(2): the byte count, or −1 with errno set. */
export const read = (fd: number, buf: Buffer, n: number): number => Number(readFn(fd, buf, n));
export const write = (fd: number, buf: Buffer, n: number): number => Number(writeFn(fd, buf, n));
export const sendmmsg = (fd: number, msgs: Buffer, n: number, flags = 0): number => Number(sendmmsgFn(fd, msgs, n, flags));
/** One datagram to `sockaddr`, never blocking: the byte count, or −1 with errno set. */
export const sendto = (fd: number, buf: Buffer, sockaddr: Buffer): number => Number(sendtoFn(fd, buf, buf.length, MSG_DONTWAIT, sockaddr, sockaddr.length));

/** Where a socket is bound: IPv4 address (host order) and port, or undefined for another family. */
export function socketName(fd: number): { ip: number; port: number } | undefined {
  const sa = Buffer.alloc(SOCKADDR_IN6);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(SOCKADDR_IN6);
  if (Number(getsocknameFn(fd, sa, len)) < 0) throw new SyscallError('getsockname', errno());
  if (sa.readUInt16LE(0) !== AF_INET) return undefined;
  return { ip: sa.readUInt32BE(4), port: sa.readUInt16BE(2) };
}
export const recvmmsg = (fd: number, msgs: Buffer, n: number): number => Number(recvmmsgFn(fd, msgs, n, MSG_DONTWAIT, null));

export function eventfd(): number {
  const fd = Number(eventfdFn(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (fd < 0) throw new SyscallError('eventfd', errno());
  return fd;
}

/** ioctl(2) with a pointer argument (a Buffer) or an integer one (TUNSETPERSIST reads its flag so). */
export function ioctl(fd: number, request: number, arg: Buffer | number, what: string): void {
  const result = typeof arg === 'number' ? ioctlFn(fd, request, 'long', arg) : ioctlFn(fd, request, 'void *', arg);
  if (Number(result) < 0) throw new SyscallError(what, errno());
}

export const addressOf = (buf: Buffer): number => Number(addressFn(buf, 0, 0));

const MMSGHDR = 64;
const IOVEC = 16;
const SOCKADDR_IN = 16;
const SOCKADDR_IN6 = 28;
const AF_INET = 2;

/**
 * Sends the first `n` messages of `batch` on `fd`, never blocking: one sendmmsg, more only if it
 * sent part. A message the kernel refuses (a full buffer, an unreachable client) is dropped, as UDP
 * may drop it; returns how many were.
 */
export function sendBatch(fd: number, batch: Batch, n: number): number {
  let sent = 0;
  let dropped = 0;
  while (sent < n) {
    const r = sendmmsg(fd, batch.from(sent), n - sent, MSG_DONTWAIT);
    if (r > 0) sent += r;
    else if (errno() !== EINTR) {
      sent++;
      dropped++;
    }
  }
  return dropped;
}

/** A `struct sockaddr_in` for `ip:port` (family in host order, the rest in network order). */
export function sockaddrIn(ip: number, port: number): Buffer {
  const sa = Buffer.alloc(SOCKADDR_IN);
  sa.writeUInt16LE(AF_INET, 0);
  sa.writeUInt16BE(port, 2);
  sa.writeUInt32BE(ip, 4);
  return sa;
}

function writePointer(buf: Buffer, offset: number, address: number): void {
  buf.writeBigUInt64LE(BigInt(address), offset);
}

/**
 * `count` packet slots of `slotSize` bytes, each with its iovec, its sockaddr_in (the destination
 * of a send, the source of a receive) and its mmsghdr.
 */
export class Batch {
  readonly slots: Buffer[] = [];
  readonly msgs: Buffer;
  private readonly iov: Buffer;
  private readonly names: Buffer;

  constructor(
    readonly count: number,
    readonly slotSize: number,
  ) {
    const data = Buffer.alloc(count * slotSize);
    this.iov = Buffer.alloc(count * IOVEC);
    this.names = Buffer.alloc(count * SOCKADDR_IN);
    this.msgs = Buffer.alloc(count * MMSGHDR);
    const [dataAt, iovAt, namesAt] = [addressOf(data), addressOf(this.iov), addressOf(this.names)];
    for (let i = 0; i < count; i++) {
      this.slots.push(data.subarray(i * slotSize, (i + 1) * slotSize));
      writePointer(this.iov, i * IOVEC, dataAt + i * slotSize);
      this.setLength(i, slotSize);
      const m = i * MMSGHDR;
      writePointer(this.msgs, m, namesAt + i * SOCKADDR_IN); // msg_name
      this.msgs.writeUInt32LE(SOCKADDR_IN, m + 8); // msg_namelen
      writePointer(this.msgs, m + 16, iovAt + i * IOVEC); // msg_iov
      writePointer(this.msgs, m + 24, 1); // msg_iovlen
    }
  }

  /** The bytes slot i sends (its iovec's length). */
  setLength(i: number, n: number): void {
    this.iov.writeBigUInt64LE(BigInt(n), i * IOVEC + 8);
  }

  setDestination(i: number, sockaddr: Buffer): void {
    sockaddr.copy(this.names, i * SOCKADDR_IN);
  }

  /** After recvmmsg: the datagram's length, its flags (MSG_TRUNC) and its sender's address and port. */
  received(i: number): { len: number; flags: number; sender: number; port: number } {
    const m = i * MMSGHDR;
    const name = i * SOCKADDR_IN;
    return { len: this.msgs.readUInt32LE(m + 56), flags: this.msgs.readInt32LE(m + 48), sender: this.names.readUInt32BE(name + 4), port: this.names.readUInt16BE(name + 2) };
  }

  /** Slot i's sockaddr_in (a received datagram's sender), to reply to it. */
  name(i: number): Buffer {
    return this.names.subarray(i * SOCKADDR_IN, (i + 1) * SOCKADDR_IN);
  }

  /** Before the next recvmmsg: the kernel wrote each used slot's name length; give it room again. */
  resetNames(n: number): void {
    for (let i = 0; i < n; i++) this.msgs.writeUInt32LE(SOCKADDR_IN, i * MMSGHDR + 8);
  }

  /** The mmsghdr array from message `from` on (to resend the rest of a partly sent batch). */
  from(i: number): Buffer {
    return this.msgs.subarray(i * MMSGHDR);
  }
}
