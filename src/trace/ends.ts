/**
 * The two ends of a trace, found in the store: a container (with its endpoints and their
 * networks), the host (the daemon's namespace), or an address berth does not own (a LAN peer, a
 * host beyond). An IP address that belongs to a container or to the host becomes that end.
 */
import { notFound } from '../errors.js';
import { findContainer } from '../engine/lookup.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord, Store } from '../store/store.js';
import type { TargetRef } from './target.js';

export interface Attachment {
  endpoint: EndpointRecord;
  network: NetworkRecord;
}

export type End =
  | { kind: 'container'; container: ContainerRecord; attachments: Attachment[]; /** The address it was named by, if any. */ ip?: string }
  | { kind: 'host'; ip?: string }
  | { kind: 'address'; ip: string };

export function attachmentsOf(store: Store, container: ContainerRecord): Attachment[] {
  // A container:NAME sharer has its network through the container it shares with.
  const owner = container.sharesWith ? (store.container(container.sharesWith) ?? container) : container;
  return store.endpointsOfContainer(owner.id).flatMap((endpoint) => {
    const network = store.network(endpoint.networkId);
    return network ? [{ endpoint, network }] : [];
  });
}

export function resolveEnd(store: Store, ref: TargetRef, hostAddresses: readonly string[], which: 'source' | 'destination'): End {
  if (ref.kind === 'host') return { kind: 'host' };
  if (ref.kind === 'container') {
    const container = findContainer(store, ref.ref);
    if (!container) throw notFound(`${which} ${ref.ref}: no such container (\`berth ps -a\` lists them; give a name, an id, an IP address or host)`);
    return { kind: 'container', container, attachments: attachmentsOf(store, container) };
  }
  const ip = ref.ip;
  const owner = store.endpoints().find((e) => e.ip === ip || e.ip6 === ip);
  const container = owner && store.container(owner.containerId);
  if (container) return { kind: 'container', container, attachments: attachmentsOf(store, container), ip };
  if (hostAddresses.includes(ip) || ip.startsWith('127.') || ip === '::1') return { kind: 'host', ip };
  return { kind: 'address', ip };
}

export function describeEnd(end: End): string {
  if (end.kind === 'container') return `container ${end.container.name}`;
  if (end.kind === 'host') return end.ip ? `the host (${end.ip})` : 'the host';
  return end.ip;
}

/** The bridge (or other host-side link) of a network, if it has one. */
export function bridgeOf(network: NetworkRecord): string | undefined {
  return network.links.find((l) => l.role === 'bridge')?.name;
}
