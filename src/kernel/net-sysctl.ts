/**
 * Writes to /proc/sys/net/ipv4 and /proc/sys/net/ipv6 of the namespace the kernel thread is in.
 * The path lookup of `ipv6` (and `ipv4`) under /proc/sys/net compares against one cached dentry
 * per namespace that ever looked there, and berth looks in every container's: at 1,000 containers
 * disabling IPv6 on a host veth took 0.88 ms by path and 0.04 ms relative to a descriptor of
 * /proc/sys/net/ipv6. So the namespaces berth holds (its host, container namespaces it made)
 * keep such descriptors, opened once each, while inside them; any other namespace (a runtime's
 * CNI namespace, a process's) is written by path. Kernel worker thread only.
 */
import * as fs from 'node:fs';
import { close, openat } from './libc.js';

type Family = 'ipv4' | 'ipv6';
const O_CLOEXEC = 0o2000000;

/** The namespace the thread is in: 'host', a netns path, or a pooled namespace's key. */
let current = 'host';
/** Namespaces whose descriptors are kept (registered by hold); a family is opened on first use. */
const held = new Map<string, Partial<Record<Family, number>>>([['host', {}]]);

/** Runs `fn` with `key` as the thread's namespace (the caller has just entered it). */
export function inNamespace<T>(key: string, fn: () => T): T {
  const outer = current;
  current = key;
  try {
    return fn();
  } finally {
    current = outer;
  }
}

/** Keeps descriptors for namespace `key` from now on (berth made it). */
export function holdNamespace(key: string): void {
  if (!held.has(key)) held.set(key, {});
}

/** The namespace `from` is now known as `to` (a pooled namespace bound at its container's path). */
export function renameNamespace(from: string, to: string): void {
  const dirs = held.get(from);
  if (!dirs) return;
  held.delete(from);
  held.set(to, dirs);
}

/** Closes namespace `key`'s descriptors (it is being dropped). */
export function releaseNamespace(key: string): void {
  const dirs = held.get(key);
  if (!dirs || key === 'host') return;
  held.delete(key);
  for (const fd of Object.values(dirs)) close(fd);
}

/** Writes `value` to /proc/sys/net/`family`/`rel` in the thread's namespace. */
export function writeNetSysctl(family: Family, rel: string, value: string): void {
  const byPath = () => fs.writeFileSync(`/proc/sys/net/${family}/${rel}`, value);
  const dirs = held.get(current);
  if (!dirs) return byPath();
  let fd: number;
  try {
    dirs[family] ??= fs.openSync(`/proc/sys/net/${family}`, 'r');
    fd = openat(dirs[family], rel, fs.constants.O_WRONLY | O_CLOEXEC);
  } catch {
    // By path, with the error a caller expects (ENOENT for a missing key or no IPv6, as fs
    // reports it); also where no descriptor could be had (EMFILE).
    return byPath();
  }
  try {
    fs.writeSync(fd, value);
  } finally {
    fs.closeSync(fd);
  }
}
