/**
 * The firewall's verdict on the probe, from nftables' own tracing: a temporary table of the
 * tracer's (`berth-trace`, in families ip/ip6 and bridge) marks exactly the probe's flow with
 * `meta nftrace set 1` in chains that run before berth's (priority -400, before raw), and
 * `nft monitor trace` in the host namespace reports every rule those packets meet. The table is
 * removed when the probe is done, even when it failed. The pure parts (script, parsing) are here
 * with the session that runs them.
 */
import { spawn } from 'node:child_process';
import type { Kernel } from '../kernel/kernel.js';

export const TRACE_TABLE = 'berth-trace';

export interface TracedFlow {
  /** Source and destination as the packets carry them when they reach the host. */
  src: string;
  dst: string;
  protocol: 'tcp' | 'udp' | 'icmp';
  port?: number;
}

const isV6 = (ip: string) => ip.includes(':');

/** Removes the tracer's tables whether or not they exist (`add` then `delete`: nft 1.0.6 has no `destroy`). */
export function removeTablesScript(): string {
  return ['ip', 'ip6', 'bridge'].flatMap((f) => [`add table ${f} ${TRACE_TABLE}`, `delete table ${f} ${TRACE_TABLE}`]).join('\n');
}

/** The temporary tables: one transaction that first clears a table a crashed trace may have left. */
export function traceTablesScript(flow: TracedFlow): string {
  const v6 = isV6(flow.dst);
  const family = v6 ? 'ip6' : 'ip';
  const l3 = v6 ? 'ip6' : 'ip';
  const l4 =
    flow.protocol === 'icmp' ? `meta l4proto ${v6 ? 'ipv6-icmp' : 'icmp'}` : `${flow.protocol} dport ${flow.port}`;
  const forward = `${l3} saddr ${flow.src} ${l3} daddr ${flow.dst} ${l4} meta nftrace set 1`;
  const reply = `${l3} saddr ${flow.dst} ${l3} daddr ${flow.src} meta nftrace set 1`;
  const lines = [removeTablesScript()];
  for (const [fam, hooks] of [[family, ['prerouting', 'output']], ['bridge', ['prerouting']]] as const) {
    lines.push(`add table ${fam} ${TRACE_TABLE}`);
    for (const hook of hooks) {
      lines.push(`add chain ${fam} ${TRACE_TABLE} ${hook} { type filter hook ${hook} priority -400; policy accept; }`);
      lines.push(`add rule ${fam} ${TRACE_TABLE} ${hook} ${forward}`, `add rule ${fam} ${TRACE_TABLE} ${hook} ${reply}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** One line of `nft -a monitor trace`. */
export interface TraceEvent {
  id: string;
  family: string;
  table: string;
  chain: string;
  kind: 'packet' | 'rule' | 'policy' | 'other';
  rule?: string;
  handle?: number;
  verdict?: string;
}

const LINE = /^trace id (\S+) (\S+) (\S+) (\S+) (.*)$/;

export function parseTraceLine(line: string): TraceEvent | undefined {
  const m = LINE.exec(line.trim());
  if (!m) return undefined;
  const [, id, family, table, chain, rest] = m as unknown as [string, string, string, string, string, string];
  const base = { id, family, table, chain };
  if (rest.startsWith('packet:')) return { ...base, kind: 'packet' };
  const policy = /^policy (\S+)/.exec(rest);
  if (policy) return { ...base, kind: 'policy', verdict: policy[1] };
  const rule = /^rule (.*?)(?: # handle (\d+))? \(verdict ([^)]+)\)\s*$/.exec(rest);
  if (rule) return { ...base, kind: 'rule', rule: rule[1]!.replace(/ counter packets \d+ bytes \d+/, ' counter'), handle: rule[2] ? Number(rule[2]) : undefined, verdict: rule[3] };
  return { ...base, kind: 'other' };
}

/** The first event that dropped a traced packet (a rule's drop or reject, or a chain's drop policy). */
export function firstDrop(events: TraceEvent[]): TraceEvent | undefined {
  return events.find((e) => (e.kind === 'rule' || e.kind === 'policy') && (e.verdict === 'drop' || e.verdict?.startsWith('reject')) && e.table !== TRACE_TABLE);
}

/** The tables and chains the traced packets went through, for the evidence. */
export function chainsSeen(events: TraceEvent[]): string[] {
  return [...new Set(events.filter((e) => e.table !== TRACE_TABLE && e.kind !== 'other').map((e) => `${e.family} ${e.table} ${e.chain}`))];
}

/** How long `nft monitor` takes to subscribe before the probe may go. */
const MONITOR_READY_MS = 300;
/** How long to keep reading after the probe, for events still in the socket. */
const MONITOR_DRAIN_MS = 150;

/**
 * Runs `probe` with the flow traced. The tables go away in `finally`, and the monitor is killed
 * by its PID; a failure to trace (no `nft` binary) leaves the probe's own answer standing.
 */
export async function withTrace<T>(kernel: Kernel, flow: TracedFlow, probe: () => Promise<T>): Promise<{ result: T; events: TraceEvent[]; traceError?: string }> {
  const events: TraceEvent[] = [];
  let traceError: string | undefined;
  let buffered = '';
  const monitor = spawn('nft', ['-a', 'monitor', 'trace'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => monitor.once('close', () => resolve()));
  monitor.on('error', (err) => (traceError = `nft monitor could not run: ${err.message} (install the nftables package)`));
  monitor.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      const e = parseTraceLine(line);
      if (e) events.push(e);
    }
  });
  try {
    await new Promise((r) => setTimeout(r, MONITOR_READY_MS));
    try {
      await kernel.call('nft', { script: traceTablesScript(flow) });
    } catch (err) {
      traceError = `the trace table could not be made: ${(err as Error).message}`;
    }
    const result = await probe();
    await new Promise((r) => setTimeout(r, MONITOR_DRAIN_MS));
    return { result, events, ...(traceError !== undefined && { traceError }) };
  } finally {
    try {
      await kernel.call('nft', { script: removeTablesScript() });
    } finally {
      if (monitor.pid !== undefined && monitor.exitCode === null) monitor.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
    }
  }
}
