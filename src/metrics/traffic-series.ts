/**
 * Labels for the accounting counters (pure): which network or published port each counted
 * element is, from its set, key and owner comment (see ruleset.ts), with names from the store.
 */
import { IP_SETS } from '../firewall/names.js';
import type { CounterReading } from './nft-counters.js';

export interface TrafficSample {
  /** What the series is: a network's traffic one way, or a published port's. */
  metric: 'network' | 'port';
  labels: Record<string, string>;
  packets: number;
  bytes: number;
}

export interface Names {
  network(id: string): string | undefined;
  container(id: string): string | undefined;
}

const FAMILY_LABEL: Record<string, string> = { ip: 'ipv4', ip6: 'ipv6' };
const ANY_ADDRESS: Record<string, string> = { ip: '0.0.0.0', ip6: '::' };

/** One sample per counted element; readings of sets or owners it does not know are left out. */
export function trafficSamples(readings: readonly CounterReading[], names: Names): TrafficSample[] {
  const out: TrafficSample[] = [];
  for (const r of readings) {
    const family = FAMILY_LABEL[r.family];
    const [kind, id] = r.comment.split(' ');
    if (!family || !id) continue;
    const sample = { packets: r.packets, bytes: r.bytes };
    if ((r.set === IP_SETS.trafficFromNetwork || r.set === IP_SETS.trafficToNetwork) && kind === 'network') {
      const direction = r.set === IP_SETS.trafficFromNetwork ? 'from_containers' : 'to_containers';
      out.push({ metric: 'network', labels: { network: names.network(id) ?? id, family, direction }, ...sample });
    } else if ((r.set === IP_SETS.portTrafficAny || r.set === IP_SETS.portTrafficIp) && kind === 'container') {
      const [hostIp, protocol, port] = r.set === IP_SETS.portTrafficAny ? [ANY_ADDRESS[r.family]!, ...r.parts] : r.parts;
      out.push({
        metric: 'port',
        labels: { container: names.container(id) ?? id, host_ip: String(hostIp), host_port: String(port), protocol: String(protocol), family },
        ...sample,
      });
    }
  }
  return out;
}

/** A stable identity for a sample's series (its metric and labels). */
export function seriesKey(s: { metric: string; labels: Record<string, string> }): string {
  return `${s.metric}|${Object.entries(s.labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}`;
}
