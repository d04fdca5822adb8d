/**
 * Network namespaces as bind-mounted files, the way `ip netns` keeps them, but under berth's own
 * run directory so berth only ever touches its own. Runs on the kernel worker thread only:
 * setns/unshare switch the calling thread, and every switch is undone in `finally`.
 */
import * as fs from 'node:fs';
import * as libc from './libc.js';
import { holdNamespace, inNamespace, releaseNamespace, renameNamespace } from './net-sysctl.js';

const THREAD_NETNS = '/proc/thread-self/ns/net';

/** The namespace this thread started in: the daemon's "host". Opened once, never closed. */
let homeFd = -1;
function home(): number {
  if (homeFd < 0) homeFd = fs.openSync(THREAD_NETNS, 'r');
  return homeFd;
}

/** Creates a new namespace bound at `path`, runs `init` inside it, and returns to the host. */
export function createNetns(path: string, init?: () => void): void {
  const hostFd = home();
  fs.writeFileSync(path, '', { mode: 0o444, flag: 'wx' });
  let mounted = false;
  try {
    libc.unshare(libc.CLONE_NEWNET);
    try {
      libc.mount(THREAD_NETNS, path, null, libc.MS_BIND);
      mounted = true;
      holdNamespace(path);
      if (init) inNamespace(path, init);
    } finally {
      libc.setns(hostFd, libc.CLONE_NEWNET);
    }
  } catch (err) {
    if (mounted) deleteNetns(path);
    else fs.rmSync(path, { force: true });
    throw err;
  }
}

/** Runs `fn` inside the namespace at `path` (a bind mount or /proc/PID/ns/net). */
export function withNetns<T>(path: string, fn: () => T): T {
  // Before entering: taken lazily inside, "home" would be the namespace just entered, and the
  // thread would never come back (seen when a CNI ADD was a new worker's first namespace call).
  const hostFd = home();
  const fd = fs.openSync(path, 'r');
  try {
    libc.setns(fd, libc.CLONE_NEWNET);
    try {
      return inNamespace(path, fn);
    } finally {
      libc.setns(hostFd, libc.CLONE_NEWNET);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Opens a namespace file for passing as IFLA_NET_NS_FD; the caller closes it. */
export function openNetns(path: string): number {
  return fs.openSync(path, 'r');
}

/**
 * Drops a namespace: the kernel frees it, and the veths inside it, once nothing else holds it.
 * Idempotent. Much cheaper for the caller than deleting each veth (16-40 ms each, synchronously).
 */
export function deleteNetns(path: string): void {
  releaseNamespace(path);
  try {
    libc.umount2(path, libc.MNT_DETACH);
  } catch (err) {
    const errno = (err as libc.SyscallError).errno;
    if (errno !== 22 /* EINVAL: not mounted */ && errno !== 2 /* ENOENT */) throw err;
  }
  fs.rmSync(path, { force: true });
}

/**
 * Creates a namespace held only by the open file descriptor returned: no file, no mount, so
 * nothing of it outlives the process, even a killed one. `init` runs inside it, as for createNetns.
 * The descriptor is close-on-exec (as every file Node opens), so spawned processes never hold it.
 */
export function createHeldNetns(init?: () => void): number {
  const hostFd = home();
  libc.unshare(libc.CLONE_NEWNET);
  try {
    const fd = fs.openSync(THREAD_NETNS, 'r');
    const key = heldKey(fd);
    holdNamespace(key);
    try {
      if (init) inNamespace(key, init);
      return fd;
    } catch (err) {
      releaseNamespace(key);
      fs.closeSync(fd);
      throw err;
    }
  } finally {
    // Should init or the open fail, nothing holds the new namespace once this thread leaves it.
    libc.setns(hostFd, libc.CLONE_NEWNET);
  }
}

/** How net-sysctl.ts knows a namespace held by descriptor `fd` until it is bound at a path. */
const heldKey = (fd: number) => `held:${fd}`;

/** Drops a namespace createHeldNetns made and nothing took. */
export function closeHeldNetns(fd: number): void {
  assertHeldNetns(fd);
  releaseNamespace(heldKey(fd));
  fs.closeSync(fd);
}

/**
 * The number came from another thread: it must still be a namespace's before it is mounted or
 * closed (closing a number some other file reused would break that file's owner).
 */
function assertHeldNetns(fd: number): void {
  if (fs.fstatSync(fd).dev !== fs.fstatSync(home()).dev) throw new Error(`descriptor ${fd} is not a namespace (nsfs)`);
}

/**
 * Binds the namespace held by `fd` (createHeldNetns) at `path` and closes `fd`, which leaves the
 * file its only holder. One mount call and no unmount: renaming a pooled namespace from one bind
 * mount to another took up to 3 ms here, nearly all in the unmount (the kernel waits for an RCU
 * grace period before it frees a mount).
 */
export function bindHeldNetns(fd: number, path: string): void {
  assertHeldNetns(fd);
  try {
    fs.writeFileSync(path, '', { mode: 0o444, flag: 'wx' });
    try {
      libc.mount(`/proc/self/fd/${fd}`, path, null, libc.MS_BIND);
    } catch (err) {
      fs.rmSync(path, { force: true });
      throw err;
    }
    renameNamespace(heldKey(fd), path);
  } finally {
    releaseNamespace(heldKey(fd));
    fs.closeSync(fd);
  }
}

export function isMountPoint(path: string): boolean {
  const target = fs.realpathSync(path);
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === target);
}

/**
 * Makes `dir` a shared mount point (a tmpfs of its own), as `ip netns add` does for /run/netns. Containers get their own mount namespace as a slave copy; with a shared source the
 * unmount of a dropped namespace propagates into those copies, so no copy keeps it alive.
 */
export function ensureSharedMountDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (!isMountPoint(dir)) libc.mount('berth', dir, 'tmpfs', 0, 'mode=755');
  libc.mount('none', dir, null, libc.MS_SHARED | libc.MS_REC);
}

export function releaseSharedMountDir(dir: string): void {
  if (fs.existsSync(dir) && isMountPoint(dir)) libc.umount2(dir, libc.MNT_DETACH);
}

/** The inode of a namespace file: two paths name the same namespace when these match. */
export function netnsId(path: string): number {
  return fs.statSync(path).ino;
}
