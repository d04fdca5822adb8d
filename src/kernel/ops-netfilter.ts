/**
 * Kernel operations on the netfilter side that run on the kernel worker thread: conntrack
 * clean-up. Re-exported by ops.ts so the worker's table sees them. (Held host ports are bound on
 * the daemon's own thread: see engine/port-holds.ts.)
 */
import { forgetConnections as forgetConntrack, type NewBinding } from './conntrack.js';

/** Deletes the host's conntrack entries of released addresses and of newly published ports; returns how many. */
export function forgetConnections(spec: { ips: string[]; bindings?: NewBinding[] }): number {
  return forgetConntrack(spec.ips, spec.bindings);
}
