/**
 * Sockets for a resolver that answers inside a container's own namespace (networks whose
 * containers cannot reach the host: macvlan, ipvlan). They are bound here, on the kernel thread
 * while it is in that namespace, and handed to the event loop as file descriptors (one process,
 * one fd table); a socket stays in the namespace it was made in.
 */
import * as libc from './libc.js';
import { holdPort } from './port-hold.js';
import { withNetns } from './netns.js';

export function openSandboxDns(spec: { netnsPath: string; address: string; port: number }): { udp: number; tcp: number } {
  return withNetns(spec.netnsPath, () => {
    // A runtime's namespace (CNI) may not have brought `lo` up yet.
    const udp = holdPort('udp', spec.address, spec.port, { freebind: true });
    try {
      return { udp, tcp: holdPort('tcp', spec.address, spec.port, { freebind: true }) };
    } catch (err) {
      libc.close(udp);
      throw err;
    }
  });
}

/** Closes descriptors the event loop could not take over. */
export function closeFds(spec: { fds: number[] }): void {
  for (const fd of spec.fds) libc.close(fd);
}
