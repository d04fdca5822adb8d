/**
 * Exec as a container runtime does it. containerd, CRI-O and Podman are Go programs: os/exec
 * starts a plugin with clone(CLONE_VM | CLONE_VFORK), so the parent's memory is never copied.
 * Node's child_process forks first (libuv), copying the page tables of a ~50 MB process, and the
 * exec then tears that copy down: ~7 ms to start and reap /bin/true from a Node parent on this
 * machine against ~2 ms from a vfork-style parent. The bench's agent runs the plugins it times
 * (netavark, the CNI chain, berth's CNI shim) through this, so every exec'd system pays what a
 * runtime pays, not Node's fork.
 *
 * glibc's posix_spawn is that vfork-style start. The child gets the runtime's usual set-up: stdin,
 * stdout and stderr on pipes, default signal dispositions (Node ignores SIGPIPE) and an empty
 * signal mask. The caller waits synchronously, as a runtime's exec does: input is written whole
 * (a plugin's config is far below a pipe's 64 KiB), both outputs are read to their end, then the
 * child is reaped. Time runs from just before the spawn until the reap.
 */
import koffi from 'koffi';
import { close, pidfdOpen } from '../../src/kernel/libc.js';
import { EINTR, POLLIN, errno, poll, read, write } from '../../src/kernel/tun-io.js';
import type { Ran } from './exec.js';

// What berth's own libc and tun-io bindings do not have: pipes, waitpid and posix_spawn.
const libc = koffi.load('libc.so.6');
const pipe2 = libc.func('int pipe2(int *fds, int flags)');
const waitpid = libc.func('int waitpid(int pid, int *status, int options)');
const faInit = libc.func('int posix_spawn_file_actions_init(uint8_t *fa)');
const faDup2 = libc.func('int posix_spawn_file_actions_adddup2(uint8_t *fa, int fd, int newfd)');
const faDestroy = libc.func('int posix_spawn_file_actions_destroy(uint8_t *fa)');
const attrInit = libc.func('int posix_spawnattr_init(uint8_t *attr)');
const attrSetFlags = libc.func('int posix_spawnattr_setflags(uint8_t *attr, short flags)');
const attrSetSigdefault = libc.func('int posix_spawnattr_setsigdefault(uint8_t *attr, const uint8_t *set)');
const attrSetSigmask = libc.func('int posix_spawnattr_setsigmask(uint8_t *attr, const uint8_t *set)');
const attrDestroy = libc.func('int posix_spawnattr_destroy(uint8_t *attr)');
const sigemptyset = libc.func('int sigemptyset(uint8_t *set)');
const sigfillset = libc.func('int sigfillset(uint8_t *set)');
const spawnp = libc.func('int posix_spawnp(int *pid, const char *file, uint8_t *fa, uint8_t *attr, const char **argv, const char **envp)');

const O_CLOEXEC = 0o2000000;
const POLLHUP = 0x10;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSIGDEF = 0x04;
// glibc x86-64 and arm64 sizes, with room to spare: the library only needs the memory.
const FILE_ACTIONS_BYTES = 128;
const ATTR_BYTES = 512;
const SIGSET_BYTES = 128;

function newPipe(): [number, number] {
  const fds = new Int32Array(2);
  if (pipe2(fds, O_CLOEXEC) !== 0) throw new Error(`pipe2 failed: errno ${errno()}`);
  return [fds[0]!, fds[1]!];
}

/** Runs `cmd` (searched in PATH) to its end; never throws for the child's own failure (code 127: could not start). */
export function spawnExec(cmd: string, args: readonly string[], opts: { input?: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Ran {
  const stdin = newPipe();
  const stdout = newPipe();
  const stderr = newPipe();
  const fa = Buffer.alloc(FILE_ACTIONS_BYTES);
  const attr = Buffer.alloc(ATTR_BYTES);
  const allSignals = Buffer.alloc(SIGSET_BYTES);
  const noSignals = Buffer.alloc(SIGSET_BYTES);
  faInit(fa);
  attrInit(attr);
  const pid = new Int32Array(1);
  let spawned: number;
  const envp = Object.entries(opts.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
  const t0 = process.hrtime.bigint();
  try {
    // dup2 onto 0, 1 and 2 clears close-on-exec there; every other descriptor of ours stays shut.
    faDup2(fa, stdin[0], 0);
    faDup2(fa, stdout[1], 1);
    faDup2(fa, stderr[1], 2);
    sigfillset(allSignals);
    sigemptyset(noSignals);
    attrSetSigdefault(attr, allSignals);
    attrSetSigmask(attr, noSignals);
    attrSetFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    spawned = spawnp(pid, cmd, fa, attr, [cmd, ...args, null], [...envp, null]);
  } finally {
    faDestroy(fa);
    attrDestroy(attr);
    close(stdin[0]);
    close(stdout[1]);
    close(stderr[1]);
  }
  if (spawned !== 0) {
    for (const fd of [stdin[1], stdout[0], stderr[0]]) close(fd);
    return { code: 127, stdout: '', stderr: `posix_spawnp ${cmd}: errno ${spawned}`, ms: 0 };
  }
  const input = Buffer.from(opts.input ?? '');
  // A child that exits without reading its input makes this write fail (EPIPE): as with a runtime, that is the child's business.
  if (input.length > 0) write(stdin[1], input, input.length);
  close(stdin[1]);

  const pidfd = pidfdOpen(pid[0]!);
  const { out, err, timedOut } = drain(pid[0]!, pidfd, stdout[0], stderr[0], opts.timeoutMs);
  close(pidfd);
  const status = new Int32Array(1);
  while (waitpid(pid[0]!, status, 0) < 0 && errno() === EINTR);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const raw = status[0]!;
  const signal = raw & 0x7f;
  const code = signal === 0 ? (raw >> 8) & 0xff : 128 + signal;
  return { code, stdout: out, stderr: err + (timedOut ? ` (killed after ${opts.timeoutMs} ms)` : signal ? ` (killed by signal ${signal})` : ''), ms };
}

/**
 * Reads both outputs and waits on the child's pidfd until it has exited. Once it has, what its
 * outputs still hold is read, and an output still open with nothing to read belongs to a process
 * it left behind: not waited for. The child is killed if all this takes longer than `timeoutMs`.
 */
function drain(pid: number, pidfd: number, outFd: number, errFd: number, timeoutMs: number): { out: string; err: string; timedOut: boolean } {
  const chunks: Record<number, Buffer[]> = { [outFd]: [], [errFd]: [] };
  const open = new Set([pidfd, outFd, errFd]);
  const buf = Buffer.alloc(65536);
  const deadline = Date.now() + timeoutMs;
  let timedOut = false;
  while (open.size > 0) {
    const exited = !open.has(pidfd);
    const fds = [...open];
    const pfds = Buffer.alloc(8 * fds.length);
    fds.forEach((fd, i) => {
      pfds.writeInt32LE(fd, 8 * i);
      pfds.writeInt16LE(POLLIN, 8 * i + 4);
    });
    const left = deadline - Date.now();
    if (left <= 0 && !timedOut) {
      timedOut = true;
      process.kill(pid, 'SIGKILL');
    }
    const ready = poll(pfds, fds.length, exited ? 0 : timedOut ? -1 : left);
    if (ready < 0 && errno() === EINTR) continue;
    if (ready < 0) throw new Error(`poll failed: errno ${errno()}`);
    if (ready === 0 && exited) break;
    fds.forEach((fd, i) => {
      if ((pfds.readInt16LE(8 * i + 6) & (POLLIN | POLLHUP)) === 0) return;
      if (fd === pidfd) {
        open.delete(fd);
        return;
      }
      const n = Number(read(fd, buf, buf.length));
      if (n > 0) chunks[fd]!.push(Buffer.from(buf.subarray(0, n)));
      else if (n === 0 || errno() !== EINTR) open.delete(fd);
    });
  }
  close(outFd);
  close(errFd);
  return { out: Buffer.concat(chunks[outFd]!).toString('utf8'), err: Buffer.concat(chunks[errFd]!).toString('utf8'), timedOut };
}
