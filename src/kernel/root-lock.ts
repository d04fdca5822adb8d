/**
 * One daemon per root: two daemons on the same store would each reconcile away the other's
 * links and namespaces. The daemon holds an exclusive flock on ROOT/daemon.lock for its whole
 * life (the kernel drops it when the process dies, however it dies) and writes its PID there so
 * a second daemon can say who holds it. Node opens files close-on-exec, so container processes
 * never inherit the lock.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { conflict } from '../errors.js';
import * as libc from './libc.js';

export function lockRoot(root: string): { release(): void } {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const file = path.join(root, 'daemon.lock');
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    libc.flock(fd, libc.LOCK_EX | libc.LOCK_NB);
  } catch (err) {
    fs.closeSync(fd);
    if ((err as libc.SyscallError).errno !== libc.EWOULDBLOCK) throw err;
    const holder = fs.readFileSync(file, 'utf8').trim() || 'unknown';
    throw conflict(`another berth daemon (PID ${holder}) already runs on root ${path.resolve(root)}: stop it first, or give this one its own --root`);
  }
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, `${process.pid}\n`, 0);
  return { release: () => fs.closeSync(fd) };
}
