/**
 * Which containers' processes have exited, for the reaper: one pidfd per process, all polled in
 * one call each tick. Before, each tick sent every process a null signal and read /proc for a
 * tenth of them to catch a reused PID: ~10-30 ms a tick at 1,000 containers on this machine, on
 * the event loop. A pidfd names the process itself: its PID is not reused while the descriptor is
 * open, and it becomes readable when the process exits. Where pidfd_open is refused (a kernel
 * before 5.3, or no descriptors left), that process is probed the old way.
 */
import { SyscallError, close, pidfdOpen } from '../kernel/libc.js';
import { POLLIN, poll } from '../kernel/tun-io.js';
import { isAlive, pidExists } from './process.js';

const ESRCH = 3;
const ENOSYS = 38;
const POLLFD_BYTES = 8;
/**
 * pidfds opened per tick at most: each needs a /proc read to check the start time (~0.1 ms), and
 * after a restart with 1,000 containers opening them all at once would hold the event loop for
 * ~0.1 s. The rest are probed the old way until their turn.
 */
const OPENS_PER_TICK = 100;

export class ProcessWatch {
  /** Container id → its process's pidfd. */
  private readonly held = new Map<string, { pid: number; fd: number }>();
  private pollFds = Buffer.alloc(64 * POLLFD_BYTES);
  private opened = 0;
  /** pidfd_open is not in this kernel: every process is probed. */
  private unsupported = false;

  constructor(private readonly opensPerTick = OPENS_PER_TICK) {}

  /** Call at the start of each reaper tick. */
  beginTick(): void {
    this.opened = 0;
  }

  /**
   * Whether container `id`'s process (`pid`, started at `pidStart`) is still the recorded one and
   * alive as far as can be told now; its exit later shows in exited(). `deep`: for a process
   * without a pidfd, also check its start time and state (/proc), not only that the PID exists.
   */
  track(id: string, pid: number, pidStart: string | null, deep: boolean): boolean {
    const held = this.held.get(id);
    if (held?.pid === pid) return true;
    if (held) this.drop(id);
    const probe = () => pidExists(pid) && (!deep || isAlive(pid, pidStart));
    if (this.unsupported || this.opened >= this.opensPerTick) return probe();
    this.opened++;
    let fd: number;
    try {
      fd = pidfdOpen(pid);
    } catch (err) {
      const errno = err instanceof SyscallError ? err.errno : undefined;
      if (errno === ESRCH) return false;
      if (errno === ENOSYS) this.unsupported = true;
      return probe();
    }
    // The descriptor now holds this PID; the start time says whether it is still the recorded process.
    if (!isAlive(pid, pidStart)) {
      close(fd);
      return false;
    }
    this.held.set(id, { pid, fd });
    return true;
  }

  /** The containers whose tracked process has exited (their descriptors are closed): one poll(2). */
  exited(): string[] {
    const entries = [...this.held];
    if (entries.length === 0) return [];
    if (this.pollFds.length < entries.length * POLLFD_BYTES) this.pollFds = Buffer.alloc(entries.length * 2 * POLLFD_BYTES);
    const fds = this.pollFds;
    entries.forEach(([, h], i) => {
      fds.writeInt32LE(h.fd, i * POLLFD_BYTES);
      fds.writeInt16LE(POLLIN, i * POLLFD_BYTES + 4);
      fds.writeInt16LE(0, i * POLLFD_BYTES + 6);
    });
    if (poll(fds, entries.length, 0) <= 0) return [];
    const gone = entries.filter((_, i) => fds.readInt16LE(i * POLLFD_BYTES + 6) !== 0).map(([id]) => id);
    for (const id of gone) this.drop(id);
    return gone;
  }

  /** Stops watching the containers not in `ids`. */
  retain(ids: Set<string>): void {
    for (const id of this.held.keys()) if (!ids.has(id)) this.drop(id);
  }

  close(): void {
    for (const id of [...this.held.keys()]) this.drop(id);
  }

  private drop(id: string): void {
    const held = this.held.get(id);
    if (!held) return;
    this.held.delete(id);
    close(held.fd);
  }
}
