/** Finding networks and containers the way Docker does: by full id, exact name, or unique id prefix (in that order). */
import { notFound, invalid } from '../errors.js';
import type { ContainerRecord, NetworkRecord, Store } from '../store/store.js';

/** A full id: 64 hex digits (engine/ids.ts). */
const ID_LENGTH = 64;

export function findNetwork(store: Store, ref: string): NetworkRecord | undefined {
  const byId = ref.length === ID_LENGTH ? store.network(ref) : undefined;
  if (byId) return byId;
  const byName = store.networkByName(ref);
  if (byName) return byName;
  if (!/^[0-9a-f]+$/.test(ref)) return undefined;
  const byPrefix = store.networksByIdPrefix(ref);
  if (byPrefix.length > 1) throw invalid(`network id prefix ${ref} is ambiguous: it matches ${byPrefix.map((n) => n.name).join(', ')}`);
  return byPrefix[0];
}

export function getNetwork(store: Store, ref: string): NetworkRecord {
  const net = findNetwork(store, ref);
  if (!net) throw notFound(`network ${ref} not found: \`berth network ls\` lists the networks`);
  return net;
}

export function findContainer(store: Store, ref: string): ContainerRecord | undefined {
  const byId = ref.length === ID_LENGTH ? store.container(ref) : undefined;
  if (byId) return byId;
  const byName = store.containerByName(ref.replace(/^\//, ''));
  if (byName) return byName;
  if (!/^[0-9a-f]+$/.test(ref)) return undefined;
  const byPrefix = store.containersByIdPrefix(ref);
  if (byPrefix.length > 1) throw invalid(`container id prefix ${ref} is ambiguous`);
  return byPrefix[0];
}

export function getContainer(store: Store, ref: string): ContainerRecord {
  const c = findContainer(store, ref);
  if (!c) throw notFound(`No such container: ${ref}`);
  return c;
}
