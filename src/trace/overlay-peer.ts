/**
 * The overlay leg of a trace: a destination that is a container on another host of an overlay
 * network the source is on. It is found in the cluster cache (what this host's resolver answers
 * from) or, once its host's lease took it away, in etcd's history. Then, in path order: the
 * endpoint and its host's liveness (`overlay-peer`), this host's three kernel entries for it
 * (`overlay-fdb`), and the underlay route to its host's VTEP (`underlay-route`).
 */
import { BerthError } from '../errors.js';
import type { EngineContext } from '../engine/context.js';
import type { ClusterAgent } from '../cluster/agent.js';
import { prefixEnd } from '../cluster/etcd.js';
import * as K from '../cluster/keys.js';
import { vtepFor } from '../drivers/overlay/overlay-driver.js';
import { linkOf } from '../drivers/options.js';
import type { TraceLink, TraceRoute } from '../kernel/ops-trace.js';
import { bridgeOf, type Attachment } from './ends.js';
import { findDeparture } from './history-search.js';
import { describeLease, explainDeparture, hostLabel, type LeaseReading, type PeerHost } from './peer-liveness.js';
import type { ReportBuilder } from './report.js';
import type { TargetRef } from './target.js';

export interface RemoteDestination {
  endpoint: K.AnnouncedEndpoint;
  /** The source's attachment to the overlay they share. */
  via: Attachment;
  /** Set when the endpoint is gone from the cluster and was found in etcd's history. */
  departed?: { lastSeen: number; goneAt: number };
}

/** What the overlay-peer step learnt: the host, alive or not, for the probe's verdict. */
export interface PeerState {
  host: PeerHost;
  alive: boolean;
  lease?: LeaseReading;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** Names the local resolver answers for a remote endpoint, as dns-sync.ts loads them. */
function matches(e: K.AnnouncedEndpoint, networkName: string, ref: TargetRef): boolean {
  if (ref.kind === 'ip') return e.ip === ref.ip || e.ip6?.toLowerCase() === ref.ip;
  if (ref.kind !== 'container') return false;
  const r = ref.ref.replace(/^\//, '');
  return e.name === r || `${e.name}.${networkName}` === r || e.aliases.includes(r) || (/^[0-9a-f]{6,}$/.test(r) && e.containerId.startsWith(r));
}

/** The source's overlay attachments: the networks a remote destination can be reached over. */
const overlaysOf = (attachments: Attachment[]) => attachments.filter((a) => a.network.driver === 'overlay');

/** A container on another host of an overlay the source is on, by name, alias, id prefix or address. */
export async function findRemote(cluster: ClusterAgent, attachments: Attachment[], ref: TargetRef): Promise<RemoteDestination | undefined> {
  const overlays = overlaysOf(attachments);
  for (const via of overlays) {
    const endpoint = cluster.remoteEndpointsOf(via.network.id).find((e) => matches(e, via.network.name, ref));
    if (endpoint) return { endpoint, via };
  }
  if (overlays.length === 0) return undefined;
  return departedRemote(cluster, overlays, ref);
}

/** Reads a range of keys as it was at `revision`; 'compacted' when etcd no longer keeps it. */
async function rangeAt(cluster: ClusterAgent, key: string, prefix: boolean, revision: number): Promise<{ key: string; value: string; lease: string }[] | 'compacted'> {
  try {
    const r = await cluster.etcd.call<{ kvs?: { key: string; value?: string; lease?: string }[] }>('/v3/kv/range', { key: b64(key), ...(prefix && { range_end: prefixEnd(key) }), revision: String(revision) });
    return (r.kvs ?? []).map((kv) => ({ key: unb64(kv.key), value: unb64(kv.value), lease: kv.lease ?? '0' }));
  } catch (err) {
    if (err instanceof BerthError && /compacted/.test(err.message)) return 'compacted';
    throw err;
  }
}

function parse<T>(value: string): T | undefined {
  try {
    return JSON.parse(value) as T;
  } catch {
    return undefined;
  }
}

/** The endpoint as it was before it left the cluster (its host's lease expired, or it was withdrawn). */
async function departedRemote(cluster: ClusterAgent, overlays: Attachment[], ref: TargetRef): Promise<RemoteDestination | undefined> {
  try {
    const { revision: now } = await cluster.etcd.list(K.CLUSTER_ID);
    const found = await findDeparture(now, async (rev) => {
      for (const via of overlays) {
        const kvs = await rangeAt(cluster, K.endpointsPrefix(via.network.id), true, rev);
        if (kvs === 'compacted') return 'compacted';
        const endpoint = kvs.map((kv) => parse<K.AnnouncedEndpoint>(kv.value)).find((e) => e && e.hostId !== cluster.hostId && matches(e, via.network.name, ref));
        if (endpoint) return { endpoint, via };
      }
      return undefined;
    });
    return found && { ...found.value, departed: { lastSeen: found.lastSeen, goneAt: found.goneAt } };
  } catch {
    // No history to read (etcd unreachable): the destination is simply unknown here.
    return undefined;
  }
}

async function leaseOf(cluster: ClusterAgent, id: string): Promise<LeaseReading | undefined> {
  if (!id || id === '0') return undefined;
  const r = await cluster.etcd.call<{ TTL?: string; grantedTTL?: string }>('/v3/lease/timetolive', { ID: id });
  return { id, ttlLeft: Number(r.TTL ?? -1), granted: Number(r.grantedTTL ?? 0) };
}

/** Step `overlay-peer`: the endpoint is known here, and its host is in the cluster with a live lease. */
export async function checkPeer(ctx: EngineContext, r: ReportBuilder, remote: RemoteDestination): Promise<PeerState> {
  const cluster = ctx.cluster!;
  const { endpoint: e, via } = remote;
  const what = `${e.name} (${e.ip}) on network ${via.network.name}`;
  if (remote.departed) {
    const before = await rangeAt(cluster, K.hostKey(e.hostId), false, remote.departed.lastSeen).catch(() => []);
    const record = before === 'compacted' ? undefined : parse<K.AnnouncedHost>(before[0]?.value ?? '');
    const atGone = await rangeAt(cluster, K.hostKey(e.hostId), false, remote.departed.goneAt).catch(() => 'compacted' as const);
    const nowRecord = await cluster.etcd.get(K.hostKey(e.hostId)).catch(() => undefined);
    const host: PeerHost = { id: e.hostId, address: record?.address ?? e.vtep, ...(record && { hostname: record.hostname, started: record.started }) };
    const hostGone = atGone !== 'compacted' && atGone.length === 0;
    r.fail(
      'overlay-peer',
      `${what}: not in the cluster any more`,
      explainDeparture(e.name, via.network.name, { host, goneAt: remote.departed.goneAt, hostGone, hostBack: nowRecord !== undefined }),
      `etcd history: endpoint ${e.id.slice(0, 12)} (mac ${e.mac}, VTEP ${e.vtep}) of ${hostLabel(host)} last at revision ${remote.departed.lastSeen}, gone at ${remote.departed.goneAt}${hostGone ? ' with its host record' : ''}; host record ${nowRecord ? 'present again now' : 'absent now'}`,
    );
    return { host, alive: false };
  }
  let kv: Awaited<ReturnType<ClusterAgent['etcd']['get']>>;
  try {
    kv = await cluster.etcd.get(K.hostKey(e.hostId));
  } catch (err) {
    // etcd away: what the cache says is all there is, and traffic on existing overlays carries on.
    const cached = cluster.hostById(e.hostId);
    const host: PeerHost = { id: e.hostId, address: cached?.address ?? e.vtep, ...(cached && { hostname: cached.hostname, started: cached.started }) };
    r.ok('overlay-peer', `${what} is on ${hostLabel(host)}, VTEP ${e.vtep}, as this host's cache says`, `etcd could not be asked whether that host lives: ${(err as Error).message}`);
    return { host, alive: true };
  }
  const record = kv ? parse<K.AnnouncedHost>(kv.value) : cluster.hostById(e.hostId);
  const host: PeerHost = { id: e.hostId, address: record?.address ?? e.vtep, ...(record && { hostname: record.hostname, started: record.started }) };
  const lease = kv ? await leaseOf(cluster, kv.lease).catch(() => undefined) : undefined;
  if (!kv || (lease && lease.ttlLeft < 0)) {
    r.fail('overlay-peer', `${what} is on ${hostLabel(host)}, which is not in the cluster`, {
      reason: `${hostLabel(host)} holding ${e.name} is down: ${kv ? 'its lease expired' : 'its host record is gone from etcd'}, and this host is about to drop its endpoints`,
      fix: `start berth on ${host.hostname ?? host.address} (${host.address}): it announces ${e.name} again; or remove the container's endpoint there`,
    }, `${K.hostKey(e.hostId)}: ${kv ? describeLease(lease!) : 'absent'}`);
    return { host, alive: false, ...(lease && { lease }) };
  }
  r.ok('overlay-peer', `${what} is on ${hostLabel(host)}, VTEP ${e.vtep}, in the cluster`, `host record up since ${host.started ?? '?'}; ${lease ? describeLease(lease) : 'no lease'}`);
  return { host, alive: true, ...(lease && { lease }) };
}

/** Step `overlay-fdb`: the VXLAN FDB entry (MAC → VTEP), the bridge's static entry and the neighbour entry. */
export async function checkOverlayEntries(ctx: EngineContext, r: ReportBuilder, remote: RemoteDestination, hostLinks: TraceLink[]): Promise<TraceLink | undefined> {
  const { endpoint: e, via } = remote;
  const net = via.network;
  const vxlanName = linkOf(net, 'vxlan');
  const bridgeName = bridgeOf(net);
  const vx = hostLinks.find((l) => l.name === vxlanName);
  const br = hostLinks.find((l) => l.name === bridgeName);
  const reconcile = 'run `berth system reconcile`: it programs every remote endpoint the cluster announces';
  if (!vx || !br) {
    r.fail('overlay-fdb', `network ${net.name} on this host`, { reason: `network ${net.name}'s ${!vx ? `VXLAN device ${vxlanName}` : `bridge ${bridgeName}`} is missing on this host`, fix: reconcile });
    return vx;
  }
  const vtep = vtepFor(ctx, net, e);
  const fdb = await ctx.kernel.call('traceFdb', { mac: e.mac });
  const toVtep = fdb.find((f) => f.index === vx.index && f.remote !== undefined);
  const onBridge = fdb.find((f) => f.index === vx.index && f.master === br.index);
  const neigh = (await ctx.kernel.call('traceNeighbours', { ip: e.ip })).find((n) => n.index === vx.index && n.mac === e.mac);
  const missing = [
    ...(!toVtep ? [`the VXLAN FDB entry ${e.mac} → ${vtep ?? e.vtep} on ${vx.name}`] : []),
    ...(!onBridge ? [`the static FDB entry of ${br.name} sending ${e.mac} to ${vx.name}`] : []),
    ...(!neigh ? [`the neighbour entry ${e.ip} → ${e.mac} on ${vx.name}`] : []),
  ];
  const evidence = [
    toVtep ? `fdb ${e.mac} dev ${vx.name} dst ${toVtep.remote} self ${toVtep.state.toLowerCase()}` : `no fdb ${e.mac} dev ${vx.name} dst …`,
    onBridge ? `fdb ${e.mac} dev ${vx.name} master ${br.name} ${onBridge.state.toLowerCase()}` : `no fdb ${e.mac} dev ${vx.name} master ${br.name}`,
    neigh ? `neigh ${e.ip} lladdr ${e.mac} dev ${vx.name} ${neigh.state.toLowerCase()}` : `no neigh ${e.ip} dev ${vx.name}`,
  ].join('; ');
  const where = `${e.mac} → ${vtep ?? e.vtep} on ${vx.name}`;
  if (remote.departed) {
    // Expected: the entries went with the endpoint. Said so, not counted as a second failure.
    r.fail('overlay-fdb', `${where}: ${missing.length ? 'removed with the endpoint' : 'still programmed'}`, { reason: missing.length ? `this host removed its entries for ${e.name} with the endpoint` : `this host still has entries for ${e.name}, which the cluster dropped: they are stale`, fix: reconcile }, evidence);
  } else if (missing.length > 0) {
    r.fail('overlay-fdb', where, { reason: `this host lacks ${missing.join(', ')} for ${e.name} on ${hostLabel({ id: e.hostId, address: e.vtep })}: frames to it ${!toVtep ? 'have no VTEP to go to' : 'never reach the VXLAN device'}`, fix: reconcile }, evidence);
  } else if (vtep && toVtep!.remote !== vtep) {
    r.fail('overlay-fdb', where, { reason: `the VXLAN FDB entry for ${e.name} sends it to ${toVtep!.remote}, but its host's VTEP is ${vtep}: a stale entry`, fix: reconcile }, evidence);
  } else {
    r.ok('overlay-fdb', where, evidence);
  }
  return vx;
}

/** Step `underlay-route`: the host namespace's route to the peer's VTEP. */
export async function checkUnderlayRoute(ctx: EngineContext, r: ReportBuilder, remote: RemoteDestination, routeText: (route: Extract<TraceRoute, { ok: true }>) => string): Promise<void> {
  const vtep = vtepFor(ctx, remote.via.network, remote.endpoint) ?? remote.endpoint.vtep;
  const route = await ctx.kernel.call('traceRoute', { dst: vtep });
  const underlay = ctx.cluster!.underlay;
  if (!route.ok || ['unreachable', 'prohibit', 'blackhole'].includes(route.type)) {
    r.fail('underlay-route', `host → VTEP ${vtep}`, {
      reason: `this host has no route to ${remote.endpoint.name}'s host at ${vtep}: ${route.ok ? `the route is ${route.type}` : route.error}`,
      fix: `give the host a route to ${vtep} over its underlay (${underlay.ifname}, ${underlay.address}), or check that link`,
    }, route.ok ? routeText(route) : `ip route get ${vtep}: ${route.error}`);
  } else {
    r.ok('underlay-route', `host → VTEP ${vtep}`, routeText(route));
  }
}
