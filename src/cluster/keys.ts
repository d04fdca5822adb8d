/**
 * berth's key layout in etcd. Everything lives under one prefix, so one watch sees it all:
 *
 *   /berth/v1/hosts/<hostId>                 the host: its VTEP address (on its lease)
 *   /berth/v1/networks/<name>                a cluster network's record (no lease: it outlives hosts)
 *   /berth/v1/guard/networks                 bumped by every network create/remove: serialises the
 *                                            cluster-wide name, subnet and VNI checks (one CAS)
 *   /berth/v1/ipam/<networkId>/<ip>          an address held (on its host's lease)
 *   /berth/v1/endpoints/<networkId>/<epId>   an endpoint, announced to the peers (on its host's lease)
 *   /berth/v1/tunnels/<ip>                   a host's WireGuard tunnel address (on its lease)
 *   /berth/v1/cluster-id                     a random id made once: seeds the cluster's IPv6 ULA /48
 *
 * Addresses and endpoints ride on their host's lease: when a host is gone for longer than the
 * lease's TTL, etcd deletes them and every peer sees the deletes.
 */
export const ROOT = '/berth/v1/';
export const HOSTS = `${ROOT}hosts/`;
export const NETWORKS = `${ROOT}networks/`;
export const NETWORKS_GUARD = `${ROOT}guard/networks`;
export const IPAM = `${ROOT}ipam/`;
export const ENDPOINTS = `${ROOT}endpoints/`;
export const TUNNELS = `${ROOT}tunnels/`;
/** A random id made once per cluster: it seeds the cluster's ULA /48 for IPv6 overlay subnets. */
export const CLUSTER_ID = `${ROOT}cluster-id`;
export const tunnelKey = (ip: string) => `${TUNNELS}${ip}`;

export const hostKey = (hostId: string) => `${HOSTS}${hostId}`;
export const networkKey = (name: string) => `${NETWORKS}${name}`;
export const ipamPrefix = (networkId: string) => `${IPAM}${networkId}/`;
export const ipamKey = (networkId: string, ip: string) => `${IPAM}${networkId}/${ip}`;
export const endpointsPrefix = (networkId: string) => `${ENDPOINTS}${networkId}/`;
export const endpointKey = (networkId: string, endpointId: string) => `${ENDPOINTS}${networkId}/${endpointId}`;

export type ParsedKey =
  | { kind: 'host'; hostId: string }
  | { kind: 'network'; name: string }
  | { kind: 'ipam'; networkId: string; ip: string }
  | { kind: 'endpoint'; networkId: string; endpointId: string }
  | { kind: 'other' };

export function parseKey(key: string): ParsedKey {
  const rest = (p: string) => (key.startsWith(p) ? key.slice(p.length).split('/') : undefined);
  let parts: string[] | undefined;
  if ((parts = rest(HOSTS)) && parts.length === 1) return { kind: 'host', hostId: parts[0]! };
  if ((parts = rest(NETWORKS)) && parts.length === 1) return { kind: 'network', name: parts[0]! };
  if ((parts = rest(IPAM)) && parts.length === 2) return { kind: 'ipam', networkId: parts[0]!, ip: parts[1]! };
  if ((parts = rest(ENDPOINTS)) && parts.length === 2) return { kind: 'endpoint', networkId: parts[0]!, endpointId: parts[1]! };
  return { kind: 'other' };
}

/** What a host announces about one of its endpoints. */
export interface AnnouncedEndpoint {
  id: string;
  networkId: string;
  containerId: string;
  name: string;
  aliases: string[];
  ip: string;
  /** The IPv6 address on a dual-stack network. */
  ip6?: string;
  mac: string;
  hostId: string;
  /** The host's underlay address: where VXLAN frames for this endpoint go. */
  vtep: string;
}

export interface AnnouncedHost {
  id: string;
  hostname: string;
  address: string;
  started: string;
  /** Set while the host runs its WireGuard tunnel (it has encrypted networks). */
  tunnel?: { publicKey: string; address: string; port: number };
}

export interface HeldAddress {
  hostId: string;
  endpointId: string;
}
