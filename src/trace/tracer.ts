/**
 * The path tracer: answers "why can't A reach B?". It walks the path berth built — the source's
 * link and route, a published port's DNAT, the host's route, the destination's link and the
 * bridge's forwarding entry, across hosts of an overlay the peer's liveness and this host's VXLAN
 * entries for it (overlay-peer.ts), the MTU along the way — from the store and read-only kernel looks,
 * then sends a real probe from inside the source's namespace with the firewall tracing it, and
 * names the first hop that fails with its evidence and what to do.
 */
import * as fs from 'node:fs';
import type { EngineContext } from '../engine/context.js';
import type { TraceLink, TraceRoute } from '../kernel/ops-trace.js';
import { IP_CHAINS } from '../firewall/names.js';
import { adviseDrop } from './drop-advice.js';
import { checkName } from './dns-step.js';
import { checkNeighbour } from './neighbour-step.js';
import { attachmentsOf, bridgeOf, describeEnd, resolveEnd, type Attachment, type End } from './ends.js';
import { checkLinkSide, type LinkSide } from './links.js';
import { checkOverlayEntries, checkPeer, checkUnderlayRoute, findRemote, type PeerState, type RemoteDestination } from './overlay-peer.js';
import { explainSilentPeer } from './peer-liveness.js';
import { chainsSeen, firstDrop, withTrace, type TraceEvent } from './nft-trace.js';
import { probe, type ProbeResult } from './probe.js';
import { ReportBuilder, type TraceReport } from './report.js';
import { ruleMatching, ruleReason } from './rule-why.js';
import type { TraceRequest } from './target.js';

const PROBE_TIMEOUT_MS = 2000;
const ANY = new Set(['0.0.0.0', '::']);

/** One trace at a time: the temporary nftables table has one name. */
let queue: Promise<unknown> = Promise.resolve();

export function trace(ctx: EngineContext, req: TraceRequest): Promise<TraceReport> {
  const run = queue.then(() => walk(ctx, req));
  queue = run.catch(() => undefined);
  return run;
}

const isLoopback = (ip: string) => ip.startsWith('127.') || ip === '::1';
const addressOf = (a: Attachment | undefined) => a?.endpoint.ip ?? a?.endpoint.ip6 ?? undefined;
const routeText = (r: Extract<TraceRoute, { ok: true }>) =>
  `${r.type === 'unicast' ? '' : `${r.type} `}${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.oifName ? ` dev ${r.oifName}` : ''}${r.prefsrc ? ` src ${r.prefsrc}` : ''}`;

async function walk(ctx: EngineContext, req: TraceRequest): Promise<TraceReport> {
  const { store, kernel } = ctx;
  const view = await kernel.call('inspect', { ipv6: true });
  const hostAddresses = [...view.addresses, ...(view.addresses6 ?? [])].map((a) => a.address);
  const src = resolveEnd(store, req.from, hostAddresses, 'source');
  const { dst, remote } = await resolveDestination(ctx, req, src, hostAddresses);
  const r = new ReportBuilder();
  const hostLinks = await kernel.call('traceLinks', {});

  // The source: where the probe leaves from (a namespace), or a peer berth cannot send from.
  let srcNs: string | undefined;
  let srcAtt: Attachment | undefined;
  const local = src.kind !== 'address';
  if (src.kind === 'container') {
    const c = src.container;
    if (c.state !== 'running' || !c.netnsPath || !fs.existsSync(c.netnsPath)) {
      r.fail('source', `container ${c.name} (${c.id.slice(0, 12)})`, { reason: `container ${c.name} is ${c.state === 'running' ? 'running but its network namespace is gone' : c.state}`, fix: `start it (\`berth run …\`) and trace again` });
      return r.build();
    }
    if (src.attachments.length === 0 && c.config.networkMode !== 'host') {
      r.fail('source', `container ${c.name}`, { reason: `container ${c.name} has no network (network mode ${c.config.networkMode})`, fix: `connect it: \`berth network connect NET ${c.name}\`` });
      return r.build();
    }
    srcNs = c.config.networkMode === 'host' ? undefined : c.netnsPath;
    r.ok('source', `container ${c.name} (${c.id.slice(0, 12)}), running`, srcNs ? `namespace ${srcNs}` : 'network mode host: the host namespace');
  } else if (src.kind === 'host') {
    r.ok('source', describeEnd(src), "the daemon's namespace");
  } else {
    const via = await kernel.call('traceRoute', { dst: src.ip });
    r.ok('source', `${src.ip}, not on this host: berth cannot send from it, so this verdict comes from the store, the routes and the ruleset (no probe)`, via.ok ? `reached through ${routeText(via)}` : undefined);
  }

  // The destination address, and the two attachments the path runs between.
  let dstAtt: Attachment | undefined;
  let dstIp: string;
  if (dst.kind === 'container') {
    const mine = src.kind === 'container' ? src.attachments : [];
    const named = dst.ip ? dst.attachments.find((a) => a.endpoint.ip === dst.ip || a.endpoint.ip6 === dst.ip) : undefined;
    const shared = mine.find((a) => dst.attachments.some((b) => b.network.id === a.network.id) && (!named || named.network.id === a.network.id));
    dstAtt = named ?? (shared ? dst.attachments.find((b) => b.network.id === shared.network.id) : dst.attachments[0]);
    srcAtt = shared ?? mine[0];
    const ip = dst.ip ?? addressOf(dstAtt);
    const lost = lostNetworks(dst.container.config.networks, dst.attachments);
    if (!ip && dst.container.state === 'running' && lost.length > 0) {
      // The reconciler releases an endpoint whose veth was deleted: what is left is its absence.
      r.fail('destination-interface', `${dst.container.name} on network ${lost[0]}`, { reason: `${dst.container.name} lost its interface on network ${lost[0]}: its veth was deleted outside berth, and berth released the endpoint`, fix: `reconnect it: \`berth network connect ${lost[0]} ${dst.container.name}\`` }, `no endpoint of ${dst.container.name} in the store, though it joined ${lost.join(', ')}`);
      return r.build();
    }
    if (!ip || dst.container.state !== 'running') {
      r.fail('destination', `container ${dst.container.name}`, { reason: `container ${dst.container.name} ${dst.container.state !== 'running' ? `is ${dst.container.state}` : 'has no address of its own'}`, fix: dst.container.state !== 'running' ? 'start it and trace again' : 'connect it to a network, or trace to the container it shares its network with' });
      return r.build();
    }
    dstIp = ip;
  } else if (dst.kind === 'host') {
    srcAtt = src.kind === 'container' ? src.attachments[0] : undefined;
    dstIp = dst.ip ?? srcAtt?.network.gateway ?? '127.0.0.1';
  } else {
    srcAtt = remote?.via ?? (src.kind === 'container' ? src.attachments[0] : undefined);
    dstIp = dst.ip;
  }

  // A destination given by name: does the name resolve from the source, as its processes ask it?
  if (req.to.kind === 'container' && src.kind === 'container' && srcNs) {
    const name = req.to.ref.replace(/^\//, '');
    const named = dst.kind === 'container' ? !(dst.container.name !== name && dst.container.id.startsWith(name)) : Boolean(remote && !remote.departed);
    if (named) {
      const target = dst.kind === 'container'
        ? { label: dst.container.name, networks: dst.attachments.map((a) => a.network.name), expected: dst.attachments.flatMap((a) => [a.endpoint.ip, a.endpoint.ip6].filter((ip): ip is string => Boolean(ip))) }
        : { label: name, networks: remote ? [remote.via.network.name] : [], expected: [dstIp] };
      await checkName(ctx, r, { container: src.container, attachments: src.attachments, netnsPath: srcNs }, { name, ...target });
    }
  }

  // A published port: which container is behind it, after DNAT.
  let finalIp = dstIp;
  let finalPort = req.port;
  let finalEnd: End = dst;
  if (dst.kind === 'host' && req.port !== undefined && req.protocol !== 'icmp') {
    const published = store.ports().filter((p) => p.protocol === req.protocol && p.hostPort === req.port);
    const match = published.find((p) => (ANY.has(p.hostIp) || p.hostIp === dstIp) && !(src.kind === 'address' && isLoopback(p.hostIp)));
    const where = `${dstIp}:${req.port}/${req.protocol}`;
    if (src.kind === 'address' && isLoopback(dstIp)) {
      const rule = ruleMatching('ip', IP_CHAINS.rawPrerouting, /^Loopback addresses are host-only/);
      r.fail('published-port', where, { reason: `${src.ip} is not on this host, and packets to 127.0.0.0/8 arriving on any interface but lo are dropped (rule ${rule?.position ?? '?'} of chain raw-prerouting of table ip berth${rule ? `: ${rule.why}` : ''})`, fix: `publish the port on the host's LAN address or on all addresses (\`-p ${req.port}:PORT\`) and use that address` });
    } else if (match) {
      const c = store.container(match.containerId);
      finalIp = match.containerIp;
      finalPort = match.containerPort;
      if (c) finalEnd = { kind: 'container', container: c, attachments: attachmentsOf(store, c) };
      if (finalEnd.kind === 'container') dstAtt = finalEnd.attachments.find((a) => a.endpoint.ip === finalIp || a.endpoint.ip6 === finalIp);
      r.ok('published-port', `${where} → container ${c?.name ?? match.containerId.slice(0, 12)} ${finalIp}:${finalPort}`, `DNAT element ${match.hostIp}:${match.hostPort}/${match.protocol} in map ${ANY.has(match.hostIp) ? 'dnat_any' : 'dnat_ip'} of table ip berth`);
    } else if (published.length > 0) {
      const on = published.map((p) => p.hostIp).join(', ');
      const hostOnly = published.every((p) => isLoopback(p.hostIp));
      r.fail('published-port', where, {
        reason: `${req.port}/${req.protocol} is published on ${on} only, not on ${dstIp}${hostOnly ? `: a port published on 127.0.0.1 is reachable from the host alone${src.kind === 'address' ? `, never from a LAN peer such as ${src.ip}` : ''}` : ''}`,
        fix: `publish it on all addresses (\`-p ${req.port}:${published[0]!.containerPort}\`) or on ${isLoopback(dstIp) ? "the host's LAN address" : dstIp} (\`-p ${isLoopback(dstIp) ? 'ADDRESS' : dstIp}:${req.port}:${published[0]!.containerPort}\`): remove the container and run it again with that -p`,
      });
    } else {
      const listeners = local ? await kernel.call('traceListeners', { protocol: req.protocol, port: req.port }) : [];
      if (listeners.length === 0) r.fail('published-port', where, { reason: `no container publishes ${req.port}/${req.protocol} on this host, and no host service listens on it`, fix: `publish it: \`berth run -p ${req.port}:PORT …\` (\`berth ps\` shows what is published)` });
      else r.ok('published-port', `${where}: not published by berth; a host service listens on it`, `listening on ${listeners.join(', ')}`);
    }
  }

  // The source's link and route.
  let srcSide: LinkSide | undefined;
  let route: TraceRoute | undefined;
  let hostRoute: TraceRoute | undefined;
  if (src.kind === 'container' && srcNs && srcAtt) {
    srcSide = await checkLinkSide(kernel, src.container.name, srcNs, srcAtt, hostLinks);
    if (srcSide.problem) r.fail('source-interface', `${srcAtt.endpoint.ifname} on network ${srcAtt.network.name}`, srcSide.problem, srcSide.evidence);
    else r.ok('source-interface', `${srcAtt.endpoint.ifname} on network ${srcAtt.network.name}`, srcSide.evidence);
  }
  if (local) {
    route = await kernel.call('traceRoute', { ...(srcNs && { netnsPath: srcNs }), dst: finalIp });
    const internal = srcAtt?.network.internal;
    if (!route.ok || ['unreachable', 'prohibit', 'blackhole'].includes(route.type)) {
      const why = route.ok ? `the route is ${route.type}` : route.error;
      r.fail('route', `${describeEnd(src)} → ${finalIp}`, {
        reason: `no route from ${describeEnd(src)} to ${finalIp}: ${why}${internal ? ` (network ${srcAtt!.network.name} is --internal: its containers have no way out)` : ''}`,
        fix: internal ? `connect ${describeEnd(src).replace('container ', '')} to a non-internal network (\`berth network connect NET …\`), or reach ${finalIp} through a container of the internal network` : `connect the source to a network that reaches ${finalIp}`,
      }, route.ok ? routeText(route) : `ip route get ${finalIp}: ${route.error}`);
    } else {
      r.ok('route', `${describeEnd(src)} → ${finalIp}`, routeText(route));
    }
    // Through the host: the host's own route to the (post-DNAT) destination.
    if (src.kind === 'container' && route.ok && route.gateway) {
      hostRoute = await kernel.call('traceRoute', { dst: finalIp });
      if (!hostRoute.ok) r.fail('host-route', `host → ${finalIp}`, { reason: `the host has no route to ${finalIp}: ${hostRoute.error}`, fix: `add a route to ${finalIp} on the host, or check the uplink` });
      else r.ok('host-route', `host → ${finalIp}`, routeText(hostRoute));
    }
  }

  // Across hosts: the peer endpoint and its host, this host's entries for it, the underlay.
  let peer: PeerState | undefined;
  let vxlanLink: TraceLink | undefined;
  if (remote) {
    peer = await checkPeer(ctx, r, remote);
    vxlanLink = await checkOverlayEntries(ctx, r, remote, hostLinks);
    await checkUnderlayRoute(ctx, r, remote, routeText);
  }

  // The destination's link, and the bridge's forwarding entry for its MAC.
  let dstSide: LinkSide | undefined;
  const dstContainer = finalEnd.kind === 'container' ? finalEnd.container : undefined;
  if (dstContainer && dstAtt && dstContainer.netnsPath) {
    dstSide = await checkLinkSide(kernel, dstContainer.name, dstContainer.netnsPath, dstAtt, hostLinks);
    if (dstSide.problem) r.fail('destination-interface', `${dstAtt.endpoint.ifname} of ${dstContainer.name} on network ${dstAtt.network.name}`, dstSide.problem, dstSide.evidence);
    else r.ok('destination-interface', `${dstAtt.endpoint.ifname} of ${dstContainer.name} on network ${dstAtt.network.name}`, dstSide.evidence);
    const bridge = bridgeOf(dstAtt.network);
    if (bridge && dstSide.hostEnd && dstSide.bridge) {
      const fdb = await kernel.call('traceFdb', { mac: dstAtt.endpoint.mac });
      const entry = fdb.find((e) => e.index === dstSide!.hostEnd!.index);
      if (entry) r.ok('bridge-fdb', `${bridge} forwards ${dstAtt.endpoint.mac} to ${dstSide.hostEnd.name}`, `fdb ${dstAtt.endpoint.mac} dev ${dstSide.hostEnd.name} master ${bridge} ${entry.state.toLowerCase()}`);
      else r.fail('bridge-fdb', `${bridge} has no entry for ${dstAtt.endpoint.mac}`, { reason: `bridge ${bridge} has no forwarding entry for ${dstContainer.name}'s MAC ${dstAtt.endpoint.mac} on ${dstSide.hostEnd.name}: frames to it are flooded or lost`, fix: 'run `berth system reconcile`, which puts the entry back' }, fdb.length ? fdb.map((e) => `on ifindex ${e.index}`).join(', ') : 'no fdb entry for that MAC');
    }
  }

  // MTU along the path: every link a frame crosses between the two namespaces.
  const pathLinks = [srcSide?.inside, srcSide?.hostEnd, srcSide?.bridge, vxlanLink, dstSide?.bridge, dstSide?.hostEnd, dstSide?.inside].filter((l): l is TraceLink => l?.mtu !== undefined);
  const mtus = pathLinks.map((l) => l.mtu!);
  const minMtu = Math.min(...mtus);
  const maxMtu = Math.max(...mtus);
  const names = (pred: (l: TraceLink) => boolean) => [...new Set(pathLinks.filter(pred).map((l) => l.name))].join(', ');

  // The probe, with the firewall tracing it.
  let probed: ProbeResult | undefined;
  let events: TraceEvent[] = [];
  let traceError: string | undefined;
  let large: ProbeResult | undefined;
  const canProbe = local && !(src.kind === 'container' && srcSide?.problem && !srcSide.inside) && !(route && !route.ok);
  if (canProbe) {
    const flowSrc = src.kind === 'container' ? (addressOf(srcAtt) ?? (route?.ok ? route.prefsrc : undefined)) : route?.ok ? (route.prefsrc ?? (isLoopback(dstIp) ? '127.0.0.1' : undefined)) : undefined;
    const spec = { ...(srcNs && { netnsPath: srcNs }), dst: dstIp, protocol: req.protocol, ...(req.port !== undefined && { port: req.port }), timeoutMs: PROBE_TIMEOUT_MS };
    if (flowSrc) {
      ({ result: probed, events, traceError } = await withTrace(kernel, { src: flowSrc, dst: dstIp, protocol: req.protocol, ...(req.port !== undefined && { port: req.port }) }, () => probe(spec)));
    } else {
      probed = await probe(spec);
      traceError = 'the source address is unknown, so the flow was not traced';
    }
    if (pathLinks.length > 1 && minMtu !== maxMtu) {
      large = await probe({ ...(srcNs && { netnsPath: srcNs }), dst: finalIp, protocol: 'icmp', size: maxMtu - 28, timeoutMs: PROBE_TIMEOUT_MS });
    }
  }

  if (pathLinks.length > 1) {
    const evidence = pathLinks.map((l) => `${l.name} ${l.mtu}`).join(', ');
    if (minMtu !== maxMtu && large && !large.ok) {
      const low = names((l) => l.mtu === minMtu);
      r.fail('mtu', `MTU ${minMtu} to ${maxMtu} along the path`, {
        reason: `frames over ${minMtu} bytes are dropped: ${low} has MTU ${minMtu} while ${names((l) => l.mtu === maxMtu)} has ${maxMtu} (a ${maxMtu}-byte echo with DF set got no reply: ${large.detail})`,
        fix: `give every link of the path one MTU: set ${low} back to ${maxMtu} (\`ip link set dev ${low} mtu ${maxMtu}\` in its namespace), or create the network with \`-o com.docker.network.driver.mtu=N\` so all of its links agree`,
      }, evidence);
    } else {
      r.ok('mtu', minMtu === maxMtu ? `${minMtu} on every link` : `MTU ${minMtu} to ${maxMtu} along the path, and a ${maxMtu}-byte echo got through`, evidence);
    }
  }

  // The firewall's verdict on the probe (or, for a peer berth cannot send from, on its ruleset).
  if (src.kind === 'address' && dstContainer && finalEnd === dst) {
    const rule = ruleMatching('ip', IP_CHAINS.forward, /^Nothing else enters a berth bridge/);
    const advice = adviseDrop({ family: 'ip', table: 'berth', chain: IP_CHAINS.forward, rule: 'oifname . oifname @bridges counter drop', ...(rule && { position: rule.position, why: rule.why }), source: src.ip, destination: `${dstContainer.name} (${dstIp})` });
    r.fail('firewall', `${src.ip} → ${dstIp}`, advice, 'berth\'s ruleset: nothing from outside enters a bridge but published ports and replies');
  } else if (probed) {
    const drop = firstDrop(events);
    if (drop) {
      const { position, counter } = await ruleInKernel(ctx, drop);
      const why = drop.table === 'berth' && position !== undefined ? ruleReason(drop.family, drop.chain, position - 1) : undefined;
      const advice = adviseDrop({
        family: drop.family, table: drop.table, chain: drop.chain, rule: drop.rule ?? '', ...(drop.handle !== undefined && { handle: drop.handle }), ...(position !== undefined && { position }), ...(why && { why }),
        source: describeEnd(src), destination: `${finalEnd.kind === 'address' ? dstIp : `${describeEnd(finalEnd)} (${dstIp})`}${req.port ? ` port ${req.port}/${req.protocol}` : ''}`,
        ...(src.kind === 'container' && { sourceContainer: src.container.name }), ...(srcAtt && { sourceNetwork: srcAtt.network.name }), ...(dstAtt && { destinationNetwork: dstAtt.network.name }),
      });
      r.fail('firewall', `${drop.family} ${drop.table} ${drop.chain}: ${drop.verdict}`, advice, `nft monitor trace: ${drop.family} ${drop.table} ${drop.chain} rule ${drop.rule ?? '(policy)'}${drop.handle !== undefined ? ` # handle ${drop.handle}` : ''} (verdict ${drop.verdict})${counter ? `; its counter: ${counter.packets} packets, ${counter.bytes} bytes dropped since the ruleset was loaded` : ''}`);
    } else {
      const seen = chainsSeen(events);
      r.ok('firewall', traceError ? `not traced: ${traceError}` : seen.length ? 'no rule dropped the probe' : 'no traced packet met a firewall chain', seen.length ? `passed ${seen.join(', ')}` : undefined);
    }
  }

  // What answers at the end: a listening socket for TCP and UDP.
  const listeners = dstContainer?.netnsPath && finalPort !== undefined && req.protocol !== 'icmp' && fs.existsSync(dstContainer.netnsPath)
    ? await kernel.call('traceListeners', { netnsPath: dstContainer.netnsPath, protocol: req.protocol, port: finalPort })
    : undefined;
  if (listeners && dstContainer && finalPort !== undefined) {
    const where = `${finalPort}/${req.protocol} in ${dstContainer.name}`;
    const onlyLoopback = listeners.length > 0 && listeners.every(isLoopback);
    if (listeners.length === 0) r.fail('service', where, { reason: `nothing listens on ${where}${probed?.outcome === 'refused' ? ' (connection refused)' : ''}`, fix: `start the service in ${dstContainer.name} on port ${finalPort}/${req.protocol}, listening on 0.0.0.0 or ${finalIp}` }, `no ${req.protocol === 'tcp' ? 'listening ' : ''}socket on port ${finalPort} in ${dstContainer.name}'s namespace`);
    else if (onlyLoopback) r.fail('service', where, { reason: `the service in ${dstContainer.name} listens on ${listeners.join(', ')} only, which traffic from outside the container never reaches`, fix: `make it listen on 0.0.0.0 or ${finalIp}` }, `listening on ${listeners.join(', ')}`);
    else r.ok('service', where, `listening on ${listeners.join(', ')}`);
  }

  // The next hops' neighbour entries, as the probe left them: the source's, and the host's when the path runs through it.
  if (probed && route?.ok) {
    await checkNeighbour(ctx, r, { netnsPath: srcNs, whose: describeEnd(src), route, dst: finalIp, after: 'route', probeOk: probed.ok });
    if (hostRoute?.ok) await checkNeighbour(ctx, r, { whose: 'the host', route: hostRoute, dst: finalIp, after: 'host-route', probeOk: probed.ok });
  }

  if (probed) {
    const what = `${req.protocol === 'icmp' ? 'ICMP echo' : `${req.protocol.toUpperCase()} ${req.protocol === 'tcp' ? 'connect' : 'datagram'}`} ${describeEnd(src)} → ${dstIp}${req.port ? `:${req.port}` : ''}`;
    // UDP has no handshake: silence with a listener and no drop is as good an answer as UDP gives.
    const udpSilentOk = probed.outcome === 'silent' && (listeners?.length ?? 0) > 0 && !firstDrop(events);
    if (probed.ok || udpSilentOk) r.ok('probe', what, probed.detail);
    else if (remote && peer?.alive) {
      // The cluster still lists the peer's host: does the host itself answer on the underlay?
      const underlay = peer.host.address ? await probe({ dst: peer.host.address, protocol: 'icmp', timeoutMs: 1000 }) : undefined;
      r.fail('probe', what, explainSilentPeer(remote.endpoint.name, peer.host, peer.lease, underlay?.ok, probed.detail), `${probed.detail}${underlay ? `; host ping ${peer.host.address}: ${underlay.detail}` : ''}`);
    } else r.fail('probe', what, { reason: probed.detail, fix: `nothing on the path berth built explains it: check that ${describeEnd(finalEnd)} is up and answers (\`berth exec\` into it), and any firewall outside berth` }, probed.detail);
  }
  return r.build();
}

/**
 * The destination as the store knows it or, for a local container as the source, a container on
 * another host of an overlay they share (by a name the local resolver answers, or by address).
 */
async function resolveDestination(ctx: EngineContext, req: TraceRequest, src: End, hostAddresses: string[]): Promise<{ dst: End; remote?: RemoteDestination }> {
  const overlay = ctx.cluster && src.kind === 'container' ? { cluster: ctx.cluster, attachments: src.attachments } : undefined;
  let dst: End;
  try {
    dst = resolveEnd(ctx.store, req.to, hostAddresses, 'destination');
  } catch (err) {
    const remote = overlay && req.to.kind === 'container' ? await findRemote(overlay.cluster, overlay.attachments, req.to) : undefined;
    if (!remote) throw err;
    return { dst: { kind: 'address', ip: remote.endpoint.ip }, remote };
  }
  const remote = overlay && dst.kind === 'address' ? await findRemote(overlay.cluster, overlay.attachments, req.to) : undefined;
  return { dst, ...(remote && { remote }) };
}

/** Networks a container joined at start whose endpoint is gone from the store. */
function lostNetworks(joined: { network: string }[], attachments: Attachment[]): string[] {
  return joined.map((j) => j.network).filter((n) => !attachments.some((a) => a.network.name === n || a.network.id === n) && !['host', 'none'].includes(n) && !n.startsWith('container:'));
}

type ListedRule = { handle: number; expr?: { counter?: { packets: number; bytes: number } }[] };

/**
 * A traced rule's 1-based position in its chain and its counter (what it has dropped since the
 * ruleset was loaded, the probe included), from the kernel's listing, found by its handle.
 */
async function ruleInKernel(ctx: EngineContext, e: TraceEvent): Promise<{ position?: number; counter?: { packets: number; bytes: number } }> {
  if (e.handle === undefined || !/^[\w-]+$/.test(e.table) || !/^[\w-]+$/.test(e.chain)) return {};
  try {
    const listing = (await ctx.kernel.call('traceNftList', { command: `list chain ${e.family} ${e.table} ${e.chain}` })) as { nftables?: { rule?: ListedRule }[] };
    const rules = (listing.nftables ?? []).flatMap((o) => (o.rule ? [o.rule] : []));
    const i = rules.findIndex((r) => r.handle === e.handle);
    if (i < 0) return {};
    const counter = rules[i]!.expr?.find((x) => x.counter)?.counter;
    return { position: i + 1, ...(counter && { counter }) };
  } catch {
    return {};
  }
}
