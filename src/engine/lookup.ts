/** Finding networks and containers the way Docker does: by exact name, full id, or unique id prefix. */
import { notFound, invalid } from '../errors.js';
import type { ContainerRecord, NetworkRecord, Store } from '../store/store.js';

export function findNetwork(store: Store, ref: string): NetworkRecord | undefined {
  const byName = store.networkByName(ref);
  if (byName) return byName;
  if (!/^[0-9a-f]+$/.test(ref)) return undefined;
  const byId = store.networksByIdPrefix(ref);
  if (byId.length > 1) throw invalid(`network id prefix ${ref} is ambiguous: it matches ${byId.map((n) => n.name).join(', ')}`);
  return byId[0];
}

export function getNetwork(store: Store, ref: string): NetworkRecord {
  const net = findNetwork(store, ref);
  if (!net) throw notFound(`network ${ref} not found: \`berth network ls\` lists the networks`);
  return net;
}

export function findContainer(store: Store, ref: string): ContainerRecord | undefined {
  const byName = store.containerByName(ref.replace(/^\//, ''));
  if (byName) return byName;
  if (!/^[0-9a-f]+$/.test(ref)) return undefined;
  const byId = store.containersByIdPrefix(ref);
  if (byId.length > 1) throw invalid(`container id prefix ${ref} is ambiguous`);
  return byId[0];
}

export function getContainer(store: Store, ref: string): ContainerRecord {
  const c = findContainer(store, ref);
  if (!c) throw notFound(`No such container: ${ref}`);
  return c;
}
