/**
 * §3 The published-port path: TCP connections per second through a published port (a LAN-peer
 * namespace connecting to the host's address and port, DNAT to a server in a container) and,
 * for comparison, straight from another container on the same network. Each run is one bounded
 * client loop (sequential connect + 1-byte echo + close for a fixed time) started with nsenter.
 */
import { inNsOk } from '../lib/exec.js';
import { runTool } from '../lib/procs.js';

export interface ConnRate {
  count: number;
  errors: number;
  lastError?: string;
  seconds: number;
  perSecond: number;
  p50us: number;
  p95us: number;
}

/** Lets a client namespace reuse TIME_WAIT ports: thousands of short connections to one address. */
export async function tuneClientNs(nsPath: string): Promise<void> {
  await inNsOk(nsPath, 'sysctl', ['-q', '-w', 'net.ipv4.tcp_tw_reuse=1']);
  await inNsOk(nsPath, 'sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=10000 65000']);
}

export function connRate(clientNs: string, host: string, port: number, durationMs: number): Promise<ConnRate> {
  return runTool<ConnRate>(clientNs, 'tcp-connect-loop', ['--host', host, '--port', String(port), '--duration', String(durationMs), '--max', '200000'], durationMs + 30_000);
}
