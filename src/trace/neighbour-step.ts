/**
 * The next hop's neighbour entry (ARP or NDP) after the probe: the gateway or on-link destination
 * a namespace sent to, and whether it answered. An unanswered neighbour is why a probe dies
 * silently when every rule and route is right (a LAN peer or router down, an address nobody holds);
 * when another hop already explains the failure, the entry is shown as a symptom, not the cause.
 */
import type { EngineContext } from '../engine/context.js';
import type { TraceRoute } from '../kernel/ops-trace.js';
import type { ReportBuilder } from './report.js';

const ANSWERED = /REACHABLE|STALE|DELAY|PROBE|PERMANENT|NOARP/;
const UNANSWERED = /FAILED|INCOMPLETE/;

export async function checkNeighbour(
  ctx: EngineContext,
  r: ReportBuilder,
  spec: { netnsPath?: string; whose: string; route: Extract<TraceRoute, { ok: true }>; dst: string; after: string; probeOk: boolean },
): Promise<void> {
  const { route } = spec;
  // Local and broadcast routes have no neighbour to ask.
  if (route.type !== 'unicast' || !route.oifName || route.oifName === 'lo') return;
  const next = route.gateway ?? spec.dst;
  const entries = await ctx.kernel.call('traceNeighbours', { ...(spec.netnsPath && { netnsPath: spec.netnsPath }), ip: next });
  const entry = entries.find((e) => e.state !== 'NONE') ?? entries[0];
  const step = 'neighbour';
  const detail = `${spec.whose} → next hop ${next} on ${route.oifName}`;
  if (!entry) {
    // Nothing was sent to it: the packet stopped before (the firewall, a route) or never needed it.
    if (!spec.probeOk) r.ok(step, `${detail}: no entry, nothing was sent to it`, undefined, spec.after);
    return;
  }
  const evidence = `neigh ${next}${entry.mac ? ` lladdr ${entry.mac}` : ''} ${entry.state}`;
  if (ANSWERED.test(entry.state) || spec.probeOk || !UNANSWERED.test(entry.state)) {
    r.ok(step, `${detail}${entry.mac ? ` is at ${entry.mac}` : ''}`, evidence, spec.after);
  } else if (r.failed) {
    r.symptom(step, `${detail} did not answer (a consequence of the failure below)`, evidence, spec.after);
  } else {
    r.fail(step, `${detail} did not answer`, {
      reason: `${next} does not answer ${next.includes(':') ? 'neighbour solicitations' : 'ARP'} on ${route.oifName} (${entry.state}): nothing on that link holds ${next}, or it is down`,
      fix: route.gateway ? `check that the router ${next} is up and on the link of ${route.oifName}` : `check that ${next} is up, holds that address and is on the link of ${route.oifName}`,
    }, evidence, spec.after);
  }
}
