/** The engine's records shaped as Docker's API shapes them, for `inspect`, `ls` and the HTTP API. */
import { parseCidr } from '../ipam/ipv4.js';
import { parseCidr6 } from '../ipam/ipv6.js';
import { isClusterScoped } from '../drivers/registry.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord, PortRecord, Store } from '../store/store.js';

export interface NetworkView {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'local' | 'global';
  Driver: string;
  /** Docker 28's (API 1.48) field, shown only when false: every other network keeps API 1.41's shape. */
  EnableIPv4?: false;
  EnableIPv6: boolean;
  IPAM: { Driver: 'default'; Options: Record<string, string>; Config: { Subnet: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: false;
  ConfigFrom: { Network: string };
  ConfigOnly: false;
  Containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

export function networkView(store: Store, net: NetworkRecord, withContainers = true): NetworkView {
  const containers: NetworkView['Containers'] = {};
  if (withContainers) {
    const prefix = net.subnet ? parseCidr(net.subnet).prefix : 0;
    const prefix6 = net.subnet6 ? parseCidr6(net.subnet6).prefix : 0;
    for (const e of store.endpointsOfNetwork(net.id)) {
      const c = store.container(e.containerId);
      containers[e.containerId] = {
        Name: c?.name ?? '',
        EndpointID: e.id,
        MacAddress: e.mac,
        IPv4Address: e.ip ? `${e.ip}/${prefix}` : '',
        IPv6Address: e.ip6 ? `${e.ip6}/${prefix6}` : '',
      };
    }
  }
  // Each family's reserved addresses go with its own IPAM config, as Docker shows them.
  const auxOf = (v6: boolean) => Object.fromEntries(Object.entries(net.auxAddresses).filter(([, ip]) => ip.includes(':') === v6));
  const withAux = (aux: Record<string, string>) => (Object.keys(aux).length > 0 ? { AuxiliaryAddresses: aux } : {});
  const config = net.subnet
    ? [
        {
          Subnet: net.subnet,
          Gateway: net.gateway ?? undefined,
          ...(net.ipRange ? { IPRange: net.ipRange } : {}),
          ...withAux(auxOf(false)),
        },
      ]
    : [];
  if (net.subnet6) config.push({ Subnet: net.subnet6, Gateway: net.gateway6 ?? undefined, ...(net.ipRange6 ? { IPRange: net.ipRange6 } : {}), ...withAux(auxOf(true)) });
  return {
    Name: net.name,
    Id: net.id,
    Created: net.created,
    Scope: isClusterScoped(net) ? 'global' : 'local',
    Driver: net.driver,
    ...(!net.subnet && net.subnet6 && { EnableIPv4: false as const }),
    EnableIPv6: Boolean(net.subnet6),
    IPAM: { Driver: 'default', Options: {}, Config: config },
    Internal: net.internal,
    Attachable: isClusterScoped(net),
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: net.options,
    Labels: net.labels,
  };
}

type PortMap = Record<string, { HostIp: string; HostPort: string }[] | null>;

export function portMap(ports: PortRecord[]): PortMap {
  const map: PortMap = {};
  for (const p of ports) {
    const key = `${p.containerPort}/${p.protocol}`;
    (map[key] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  }
  return map;
}

function endpointView(store: Store, e: EndpointRecord) {
  const net = store.network(e.networkId);
  return {
    IPAMConfig: null,
    Links: null,
    Aliases: e.aliases,
    NetworkID: e.networkId,
    EndpointID: e.id,
    Gateway: net?.gateway ?? '',
    IPAddress: e.ip ?? '',
    IPPrefixLen: net?.subnet ? parseCidr(net.subnet).prefix : 0,
    IPv6Gateway: e.ip6 ? (net?.gateway6 ?? '') : '',
    GlobalIPv6Address: e.ip6 ?? '',
    GlobalIPv6PrefixLen: e.ip6 && net?.subnet6 ? parseCidr6(net.subnet6).prefix : 0,
    MacAddress: e.mac,
  };
}

export function containerView(store: Store, c: ContainerRecord) {
  const endpoints = store.endpointsOfContainer(c.id);
  const networks: Record<string, ReturnType<typeof endpointView>> = {};
  for (const e of endpoints) networks[store.network(e.networkId)?.name ?? e.networkId] = endpointView(store, e);
  const first = endpoints[0];
  return {
    Id: c.id,
    Name: `/${c.name}`,
    Created: c.created,
    Path: c.config.cmd[0],
    Args: c.config.cmd.slice(1),
    State: {
      Status: c.state,
      Running: c.state === 'running',
      Pid: c.pid ?? 0,
      ExitCode: c.exitCode ?? 0,
    },
    Config: { Hostname: c.config.hostname, Cmd: c.config.cmd },
    HostConfig: {
      NetworkMode: c.config.networkMode,
      Dns: c.config.dns,
      ExtraHosts: c.config.addHosts,
      AutoRemove: c.config.autoRemove,
      PortBindings: requestedPortMap(c),
    },
    NetworkSettings: {
      SandboxKey: c.netnsPath ?? '',
      Ports: portMap(store.portsOfContainer(c.id)),
      IPAddress: first?.ip ?? '',
      GlobalIPv6Address: first?.ip6 ?? '',
      MacAddress: first?.mac ?? '',
      Networks: networks,
    },
  };
}

function requestedPortMap(c: ContainerRecord): PortMap {
  const map: PortMap = {};
  for (const p of c.config.ports) {
    (map[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: p.hostPort ? String(p.hostPort) : '' });
  }
  return map;
}

export function containerSummary(store: Store, c: ContainerRecord) {
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Command: c.config.cmd.join(' '),
    Created: Math.floor(Date.parse(c.created) / 1000),
    State: c.state,
    Status: c.state === 'exited' ? `Exited (${c.exitCode ?? 0})` : c.state,
    Ports: store.portsOfContainer(c.id).map((p) => ({ IP: p.hostIp, PrivatePort: p.containerPort, PublicPort: p.hostPort, Type: p.protocol })),
    HostConfig: { NetworkMode: c.config.networkMode },
    NetworkSettings: {
      Networks: Object.fromEntries(
        store.endpointsOfContainer(c.id).map((e) => [store.network(e.networkId)?.name ?? e.networkId, { IPAddress: e.ip ?? '', GlobalIPv6Address: e.ip6 ?? '', MacAddress: e.mac }]),
      ),
    },
  };
}

