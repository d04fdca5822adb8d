/**
 * The network as the topology page draws it (issue 15): this host (and the cluster's other hosts),
 * its networks with their devices, the containers with their namespaces, each endpoint's interface
 * and its host-side link, VXLAN peers and published ports. The store says what should be; one
 * kernel look (ops-topology.ts) says what is, so a missing or down link shows as such.
 */
import * as os from 'node:os';
import { OPT_VXLAN_ID } from '../cluster/cluster-networks.js';
import type { SeenLink, SeenNamespace } from '../kernel/ops-topology.js';
import type { ContainerRecord, ContainerState, EndpointRecord, NetworkRecord } from '../store/store.js';
import { hostnameOf } from './containers.js';
import type { EngineContext } from './context.js';

/** What the kernel says of a link the store names: absent, or present with its state. */
export interface LinkState {
  name: string;
  present: boolean;
  up?: boolean;
  kind?: string;
  mac?: string;
  /** Its master (a bridge) as the kernel has it. */
  master?: string;
  addresses?: string[];
}

export interface TopologyHost {
  id: string;
  hostname: string;
  /** The underlay address (a cluster host's VTEP); absent on a single host. */
  address?: string;
  local: boolean;
}

export interface TopologyNetwork {
  id: string;
  name: string;
  driver: string;
  subnets: string[];
  gateways: string[];
  internal: boolean;
  /** The network's own devices (bridge, VXLAN device, parent, anchor) by role, with their kernel state. */
  devices: (LinkState & { role: string; owned: boolean })[];
  /** An overlay's VXLAN network identifier. */
  vni?: number;
  /** An overlay's other hosts with endpoints on it, and where its VXLAN frames go. */
  vxlanPeers?: { hostId: string; vtep: string }[];
}

export interface TopologyEndpoint {
  id: string;
  networkId: string;
  network: string;
  ifname: string;
  mac: string;
  /** `ADDRESS/PREFIX` as the store has it. */
  ipv4?: string;
  ipv6?: string;
  aliases: string[];
  /** The interface inside the container's namespace, as the kernel has it. */
  interface: LinkState;
  /** The host side of the endpoint (a veth's host end); null for drivers with none (macvlan). */
  hostLink: LinkState | null;
}

export interface TopologyContainer {
  id: string;
  name: string;
  state: ContainerState;
  pid: number | null;
  hostname: string;
  networkMode: string;
  netnsPath: string | null;
  /** For container:NAME mode: the name of the container whose namespace this one shares. */
  sharesWith?: string;
  /** The namespace could not be read (gone); the interfaces' states are then unknown. */
  namespaceError?: string;
  endpoints: TopologyEndpoint[];
  ports: { protocol: string; hostIp: string; hostPort: number; containerPort: number; containerIp: string }[];
}

/** An endpoint of a cluster network on another host (from the cluster store). */
export interface TopologyRemoteEndpoint {
  id: string;
  networkId: string;
  hostId: string;
  name: string;
  ip: string;
  ip6?: string;
  mac: string;
  vtep: string;
}

export interface Topology {
  generated: string;
  hostId: string;
  hosts: TopologyHost[];
  networks: TopologyNetwork[];
  containers: TopologyContainer[];
  remoteEndpoints: TopologyRemoteEndpoint[];
}

function stateOf(name: string, seen: Map<string, SeenLink> | undefined): LinkState {
  const link = seen?.get(name);
  if (!link) return { name, present: false };
  return { name, present: true, up: link.up, kind: link.kind, mac: link.mac, master: link.master, addresses: link.addresses };
}

const byName = (links: SeenLink[]) => new Map(links.map((l) => [l.name, l]));

const withPrefix = (ip: string | null | undefined, subnet: string | null | undefined) => (ip ? `${ip}/${subnet?.split('/')[1] ?? (ip.includes(':') ? 128 : 32)}` : undefined);

/** The namespace a container's processes run in, when berth can look into it. */
const namespaceOf = (c: ContainerRecord) => (c.state === 'running' && c.netnsPath ? c.netnsPath : undefined);

export async function buildTopology(ctx: EngineContext): Promise<Topology> {
  const { store, cluster } = ctx;
  const containers = store.containers();
  const networks = store.networks();
  const look = await ctx.kernel.call('topologyLook', { netnsPaths: containers.flatMap((c) => namespaceOf(c) ?? []) });
  const hostLinks = byName(look.host);
  const networkById = new Map(networks.map((n) => [n.id, n]));
  const containerById = new Map(containers.map((c) => [c.id, c]));
  const endpointsOf = groupBy(store.endpoints(), (e) => e.containerId);
  const portsOf = groupBy(store.ports(), (p) => p.containerId);

  const hostId = cluster?.hostId ?? 'local';
  const hosts: TopologyHost[] = cluster
    ? cluster.hostList().map((h) => ({ id: h.id, hostname: h.hostname, address: h.address, local: h.id === cluster.hostId }))
    : [{ id: hostId, hostname: os.hostname(), local: true }];
  if (!hosts.some((h) => h.local)) hosts.unshift({ id: hostId, hostname: os.hostname(), address: cluster?.underlay.address, local: true });

  const remoteEndpoints: TopologyRemoteEndpoint[] = [];
  const topoNetworks = networks.map((n) => {
    const remotes = cluster && n.driver === 'overlay' ? cluster.remoteEndpointsOf(n.id) : [];
    for (const r of remotes) remoteEndpoints.push({ id: r.id, networkId: n.id, hostId: r.hostId, name: r.name, ip: r.ip, ...(r.ip6 && { ip6: r.ip6 }), mac: r.mac, vtep: r.vtep });
    return networkOf(n, hostLinks, remotes);
  });

  const topoContainers = containers.map((c): TopologyContainer => {
    const ns = namespaceOf(c);
    const seen: SeenNamespace | undefined = ns ? look.namespaces[ns] : undefined;
    const inside = seen && 'links' in seen ? byName(seen.links) : undefined;
    const sharesWith = c.sharesWith ? containerById.get(c.sharesWith)?.name : undefined;
    return {
      id: c.id,
      name: c.name,
      state: c.state,
      pid: c.pid,
      hostname: hostnameOf(ctx, c),
      networkMode: c.config.networkMode,
      netnsPath: c.netnsPath,
      ...(sharesWith && { sharesWith }),
      ...(seen && 'error' in seen && { namespaceError: seen.error }),
      endpoints: (endpointsOf.get(c.id) ?? []).map((e) => endpointOf(e, networkById.get(e.networkId), inside, hostLinks)),
      ports: (portsOf.get(c.id) ?? []).map((p) => ({ protocol: p.protocol, hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, containerIp: p.containerIp })),
    };
  });

  return { generated: new Date().toISOString(), hostId, hosts, networks: topoNetworks, containers: topoContainers, remoteEndpoints };
}

function networkOf(n: NetworkRecord, hostLinks: Map<string, SeenLink>, remotes: { hostId: string; vtep: string }[]): TopologyNetwork {
  const vni = n.driver === 'overlay' ? Number(n.options[OPT_VXLAN_ID]) : undefined;
  const peers = new Map(remotes.map((r) => [r.hostId, r.vtep]));
  return {
    id: n.id,
    name: n.name,
    driver: n.driver,
    subnets: [n.subnet, n.subnet6].filter((s): s is string => Boolean(s)),
    gateways: [n.gateway, n.gateway6].filter((g): g is string => Boolean(g)),
    internal: n.internal,
    devices: n.links.map((l) => ({ role: l.role, owned: l.owned, ...stateOf(l.name, hostLinks) })),
    ...(vni !== undefined && Number.isFinite(vni) && { vni }),
    ...(n.driver === 'overlay' && { vxlanPeers: [...peers].map(([hostId, vtep]) => ({ hostId, vtep })) }),
  };
}

function endpointOf(e: EndpointRecord, net: NetworkRecord | undefined, inside: Map<string, SeenLink> | undefined, hostLinks: Map<string, SeenLink>): TopologyEndpoint {
  const ipv4 = withPrefix(e.ip, net?.subnet);
  const ipv6 = withPrefix(e.ip6, net?.subnet6);
  return {
    id: e.id,
    networkId: e.networkId,
    network: net?.name ?? e.networkId,
    ifname: e.ifname,
    mac: e.mac,
    ...(ipv4 && { ipv4 }),
    ...(ipv6 && { ipv6 }),
    aliases: e.aliases,
    interface: stateOf(e.ifname, inside),
    hostLink: e.hostLink ? stateOf(e.hostLink, hostLinks) : null,
  };
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}
