/**
 * Kernel operations on the netfilter side that run on the kernel worker thread: held host ports,
 * conntrack clean-up. Re-exported by ops.ts so the worker's table sees them.
 */
import { forgetConnections as forgetConntrack, type NewBinding } from './conntrack.js';
import { EADDRINUSE, holdPort as bindHeld, releasePort as closeHeld } from './port-hold.js';

/** Holds a host port (see port-hold.ts); `{ fd }`, or `{ busy: true }` when someone has it bound. */
export function holdPort(spec: { protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number }): { fd: number } | { busy: true } {
  try {
    return { fd: bindHeld(spec.protocol, spec.hostIp, spec.hostPort) };
  } catch (err) {
    if ((err as { errno?: number }).errno === EADDRINUSE) return { busy: true };
    throw err;
  }
}

export function releasePorts(spec: { fds: number[] }): void {
  for (const fd of spec.fds) closeHeld(fd);
}

/** Deletes the host's conntrack entries of released addresses and of newly published ports; returns how many. */
export function forgetConnections(spec: { ips: string[]; bindings?: NewBinding[] }): number {
  return forgetConntrack(spec.ips, spec.bindings);
}
