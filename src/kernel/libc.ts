/**
 * The few libc calls berth needs that Node does not offer (netlink sockets, setns, unshare,
 * mount), bound through koffi. setns, unshare and mount run only on the kernel worker thread:
 * they change the calling thread's namespace, so they must never run on the main thread or on a
 * thread pool. Plain socket calls (held ports, the nftables monitor) also run on the main thread,
 * which stays in the host namespace.
 */
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0x80000;
export const NETLINK_ROUTE = 0;
export const SOL_NETLINK = 270;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const CLONE_NEWNET = 0x40000000;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_SHARED = 1 << 20;
export const MNT_DETACH = 2;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const EWOULDBLOCK = 11;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const MSG_DONTWAIT = 0x40;
export const SOL_SOCKET = 1;

const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const closeFn = libc.func('int close(int fd)');
const setsockoptFn = libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)');
const sendFn = libc.func('intptr_t send(int fd, const void *buf, uintptr_t len, int flags)');
const recvFn = libc.func('intptr_t recv(int fd, _Out_ void *buf, uintptr_t len, int flags)');
const bindFn = libc.func('int bind(int fd, const void *addr, uint32_t len)');
const setnsFn = libc.func('int setns(int fd, int nstype)');
const unshareFn = libc.func('int unshare(int flags)');
const mountFn = libc.func('int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const void *data)');
const umount2Fn = libc.func('int umount2(const char *target, int flags)');
const strerrorFn = libc.func('const char *strerror(int errnum)');
const flockFn = libc.func('int flock(int fd, int operation)');
const openatFn = libc.func('int openat(int dirfd, const char *path, int flags, ...)');
const mallocTrimFn = libc.func('int malloc_trim(uintptr_t pad)');
const malloptFn = libc.func('int mallopt(int param, int value)');
// syscall(2) is variadic; its integer arguments travel as a fixed-arity call's would (x86-64, arm64).
const syscall3Fn = libc.func('long syscall(long number, long a, void *b, unsigned long c)');

/** A failed system call, with the errno name-independent number and the kernel's message. */
export class SyscallError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    detail?: string,
  ) {
    super(`${call}: ${detail ?? strerrorFn(errno)}`);
    this.name = 'SyscallError';
  }
}

function check(call: string, result: number | bigint): number {
  const n = Number(result);
  if (n < 0) throw new SyscallError(call, koffi.errno());
  return n;
}

export function strerror(errno: number): string {
  return strerrorFn(errno) as string;
}

export function socket(domain: number, type: number, protocol: number): number {
  return check('socket', socketFn(domain, type, protocol));
}

export function close(fd: number): void {
  closeFn(fd);
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const buf = Buffer.alloc(4);
  buf.writeInt32LE(value);
  check('setsockopt', setsockoptFn(fd, level, name, buf, 4));
}

export function send(fd: number, buf: Buffer): number {
  return check('send', sendFn(fd, buf, buf.length, 0));
}

export function recv(fd: number, buf: Buffer, flags = 0): number {
  return check('recv', recvFn(fd, buf, buf.length, flags));
}

export function bind(fd: number, addr: Buffer, what = 'bind'): void {
  check(what, bindFn(fd, addr, addr.length));
}

export function setns(fd: number, nstype: number): void {
  check('setns', setnsFn(fd, nstype));
}

export function unshare(flags: number): void {
  check('unshare', unshareFn(flags));
}

export function mount(src: string, target: string, fstype: string | null, flags: number, data: string | null = null): void {
  check(`mount ${target}`, mountFn(src, target, fstype, flags, data));
}

export function umount2(target: string, flags: number): void {
  check(`umount ${target}`, umount2Fn(target, flags));
}

/** A raw system call with (integer, pointer, integer) arguments, for calls libc has no wrapper for (bpf). */
export function syscall3(what: string, number: number, a: number, b: Buffer, c: number): number {
  return check(what, syscall3Fn(number, a, b, c));
}

// New system calls have one number on every architecture; pidfd_open came with Linux 5.3.
const SYS_PIDFD_OPEN = 434;

/**
 * A descriptor for process `pid` (close-on-exec, as every pidfd): it becomes readable once the
 * process exits, and the PID is not given to another process while it is open.
 */
export function pidfdOpen(pid: number): number {
  return check(`pidfd_open ${pid}`, syscall3Fn(SYS_PIDFD_OPEN, pid, null, 0));
}

/** openat(2) without O_CREAT: a path relative to directory descriptor `dirfd`. */
export function openat(dirfd: number, path: string, flags: number, what = path): number {
  return check(`open ${what}`, openatFn(dirfd, path, flags));
}

export function flock(fd: number, operation: number): void {
  check('flock', flockFn(fd, operation));
}

/** Returns the C heap's free pages to the kernel (glibc); true if any were released. */
export function mallocTrim(): boolean {
  return mallocTrimFn(0) === 1;
}

const M_ARENA_MAX = -8;

/** Caps how many heaps glibc's malloc keeps (one per thread by default, up to 8 per core). */
export function setMallocArenaMax(arenas: number): void {
  if (malloptFn(M_ARENA_MAX, arenas) !== 1) throw new Error(`mallopt(M_ARENA_MAX, ${arenas}) was refused`);
}
