/**
 * The endpoint's interface deleted from its sandbox, started last and not awaited (see
 * leaveNetwork): every driver whose endpoint is one interface inside the sandbox leaves this way.
 */
import type { EngineContext } from '../engine/context.js';
import type { EndpointRecord } from '../store/store.js';
import type { LeaveSpec } from './driver.js';

export function detachLater(ctx: EngineContext, endpoint: EndpointRecord, spec: LeaveSpec, bridge?: string): () => void {
  return () => {
    ctx.kernel
      .call('detach', { netnsPath: spec.netnsPath, ifname: endpoint.ifname, hostVeth: endpoint.hostLink ?? undefined, bridge, ip: bridge ? (endpoint.ip ?? undefined) : undefined, ip6: bridge ? (endpoint.ip6 ?? undefined) : undefined, nextDefaultRoute: spec.nextDefaultRoute })
      .catch((err) => ctx.log.warn('could not delete an interface', { ifname: endpoint.ifname, error: String(err) }));
  };
}
