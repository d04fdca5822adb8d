/**
 * The real probe, sent from inside the source's namespace and bounded in time: an ICMP echo
 * (busybox ping; Linux sets DF on it, so a large echo shows an MTU mismatch) or a TCP connect / a
 * UDP datagram (probe-socket.ts). Each runs as a child process entered into the namespace with
 * nsenter, and is killed by its PID if it overruns.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface ProbeSpec {
  /** The source's namespace; absent for the host (the daemon's own). */
  netnsPath?: string;
  dst: string;
  protocol: 'tcp' | 'udp' | 'icmp';
  port?: number;
  /** ICMP payload bytes (the packet is 28 more). */
  size?: number;
  timeoutMs: number;
}

export interface ProbeResult {
  ok: boolean;
  outcome: 'answered' | 'refused' | 'timeout' | 'unreachable' | 'silent' | 'error';
  detail: string;
}

const PROBE_SOCKET = fileURLToPath(new URL('./probe-socket.js', import.meta.url));
const DNS_PROBE = fileURLToPath(new URL('./dns-probe.js', import.meta.url));

export type DnsAnswer = { rcode: string; addresses: string[] } | { error: string };

/** Asks `server` for `name` from inside a namespace, as a process there would. */
export async function askDns(spec: { netnsPath: string; server: string; name: string; type: 'A' | 'AAAA'; timeoutMs: number }): Promise<DnsAnswer> {
  const r = await runIn(spec.netnsPath, process.execPath, [DNS_PROBE, spec.server, spec.name, spec.type, String(spec.timeoutMs)], spec.timeoutMs + 1500);
  try {
    return JSON.parse(r.out.split('\n').pop() ?? '') as DnsAnswer;
  } catch {
    return { error: `the DNS probe did not report: ${r.out || `exit ${r.code}`}` };
  }
}

function runIn(netnsPath: string | undefined, cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  const [file, argv] = netnsPath ? ['nsenter', [`--net=${netnsPath}`, '--', cmd, ...args]] : [cmd, args];
  return new Promise((resolve) => {
    execFile(file, argv, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

export async function probe(spec: ProbeSpec): Promise<ProbeResult> {
  const grace = 1500;
  if (spec.protocol === 'icmp') {
    const seconds = String(Math.max(1, Math.round(spec.timeoutMs / 1000)));
    const size = spec.size ?? 56;
    const r = await runIn(spec.netnsPath, 'busybox', ['ping', '-c', '1', '-W', seconds, '-s', String(size), spec.dst], spec.timeoutMs + grace);
    if (r.code === 0) return { ok: true, outcome: 'answered', detail: `echo reply from ${spec.dst} (${size + 28}-byte packet)${rtt(r.out)}` };
    const sendError = /sendto: (.*)/.exec(r.out)?.[1];
    if (sendError) return { ok: false, outcome: /unreachable/i.test(sendError) ? 'unreachable' : 'error', detail: `the echo could not be sent: ${sendError}` };
    if (r.code === -1 && !r.out) return { ok: false, outcome: 'error', detail: 'busybox ping could not run (install busybox)' };
    return { ok: false, outcome: 'timeout', detail: `no echo reply from ${spec.dst} within ${seconds} s (${size + 28}-byte packet)` };
  }
  const r = await runIn(spec.netnsPath, process.execPath, [PROBE_SOCKET, spec.protocol, spec.dst, String(spec.port), String(spec.timeoutMs)], spec.timeoutMs + grace);
  try {
    const parsed = JSON.parse(r.out.split('\n').pop() ?? '') as { outcome: ProbeResult['outcome']; detail: string };
    return { ok: parsed.outcome === 'answered', ...parsed };
  } catch {
    return { ok: false, outcome: 'error', detail: `the probe did not report: ${r.out || `exit ${r.code}`}` };
  }
}

function rtt(out: string): string {
  const m = /time=([\d.]+ ms)/.exec(out);
  return m ? ` in ${m[1]}` : '';
}
