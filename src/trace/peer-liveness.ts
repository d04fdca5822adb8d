/**
 * Whether the host holding a remote endpoint is alive, and how to say it (pure). A host lives in
 * the cluster by its etcd lease, renewed every TTL/3: a lease with much less than its TTL left has
 * missed renewals (the host or its daemon went silent), and a lease gone took the host's record
 * and endpoints with it, so its peers dropped them.
 */

export interface PeerHost {
  id: string;
  hostname?: string;
  address?: string;
  /** When its daemon last wrote its record (it joined or rejoined). */
  started?: string;
}

/** What etcd says of the host's lease: seconds left (-1 once expired) of the TTL it was granted. */
export interface LeaseReading {
  id: string;
  ttlLeft: number;
  granted: number;
}

export function hostLabel(h: PeerHost): string {
  const name = h.hostname ? `${h.hostname} ` : '';
  return `host ${name}(${[h.address, `id ${h.id}`].filter(Boolean).join(', ')})`;
}

/** How long the lease has gone without a renewal, and whether that is more than missing one. */
export function leaseSilence(l: LeaseReading): { silentFor: number; overdue: boolean } {
  const silentFor = Math.max(0, l.granted - l.ttlLeft);
  const period = Math.max(0.5, l.granted / 3);
  // One renewal period plus a second of slack for a slow round trip to etcd.
  return { silentFor, overdue: l.ttlLeft >= 0 && silentFor > period + 1 };
}

export function describeLease(l: LeaseReading): string {
  if (l.ttlLeft < 0) return `lease ${l.id} has expired`;
  const { silentFor, overdue } = leaseSilence(l);
  const left = `lease ${l.id}: ${l.ttlLeft} s left of ${l.granted}`;
  return overdue ? `${left}, not renewed for about ${silentFor} s (it is renewed every ${Math.round(l.granted / 3)} s): the host or its daemon has gone silent` : left;
}

export interface Departed {
  host: PeerHost;
  /** The store revision its keys went at, and whether its host record went in the same one. */
  goneAt: number;
  hostGone: boolean;
  /** The host is back in the cluster now (a new lease) but no longer announces the endpoint. */
  hostBack: boolean;
}

/** Why a remote endpoint that was on a shared overlay is not there any more, and what to do. */
export function explainDeparture(name: string, network: string, d: Departed): { reason: string; fix: string } {
  const host = hostLabel(d.host);
  const where = d.host.hostname ?? d.host.address ?? d.host.id;
  if (!d.hostBack) {
    const since = d.hostGone ? ` (gone at store revision ${d.goneAt}; etcd keeps no time)` : '';
    const up = d.host.started ? `; it had been up since ${d.host.started}` : '';
    return {
      reason: `${host} holding ${name} is down: its lease expired and it is not in the cluster${since}: its peers dropped its endpoints with it${up}`,
      fix: `start berth on ${where}${d.host.address ? ` (${d.host.address})` : ''}: it announces ${name} again; or, if that host is gone for good, remove the container's endpoint there (\`berth rm -f ${name}\` on it) and run it on a live host`,
    };
  }
  return {
    reason: `${name} is no longer on network ${network}: ${host} is alive but withdrew its endpoint at store revision ${d.goneAt} (the container was stopped, removed or disconnected there)`,
    fix: `start ${name} again on ${where} (\`berth ps -a\` there shows it), or trace to a container that runs`,
  };
}

/** A probe that got no answer from an endpoint whose host the cluster still lists. */
export function explainSilentPeer(name: string, host: PeerHost, lease: LeaseReading | undefined, underlayAnswered: boolean | undefined, probeDetail: string): { reason: string; fix: string } {
  const label = hostLabel(host);
  const leaseText = lease ? ` (${describeLease(lease)})` : '';
  const underlay =
    underlayAnswered === undefined
      ? ''
      : underlayAnswered
        ? `; ${host.address} answers on the underlay, so the host is up but ${name} does not answer there`
        : `; ${host.address} does not answer on the underlay either: the host is down or cut off`;
  const ttl = lease && lease.ttlLeft >= 0 ? `within ${lease.ttlLeft} s, when its lease runs out` : 'when its lease runs out';
  return {
    reason: `the probe got no answer from ${name} on ${label}, a host the cluster still lists${leaseText}: ${probeDetail}${underlay}`,
    fix: `check ${host.hostname ?? host.address ?? host.id}${host.address ? ` (${host.address})` : ''}: that it is up, that berth runs there and that ${name} is up (\`berth ps\` on it); if the host is down, its peers drop it ${ttl}`,
  };
}
