/**
 * The NetworkDriver methods: each parses its request and runs as one engine operation (see
 * engine/docker-plugin.ts). Leave has nothing to do: dockerd moves the interface back out of the
 * container itself, and DeleteEndpoint removes it.
 */
import type { Engine } from '../engine/engine.js';
import * as docker from '../engine/docker-plugin.js';
import { invalid } from '../errors.js';
import { CreateEndpoint, CreateNetwork, EndpointRef, ExternalConnectivity, Join, NetworkRef, OPT_ENABLE_IPV6, OPT_GENERIC, OPT_INTERNAL, OPT_PORTMAP, PortMap, isTrue, stringOptions } from './protocol.js';
import type { DockerNames } from './docker-names.js';
import type { Handlers } from './server.js';

export function networkDriverHandlers(engine: Engine, names?: DockerNames): Handlers {
  const short = (id: string) => id.slice(0, 12);
  return {
    'NetworkDriver.GetCapabilities': async () => ({
      // dockerd keeps these networks in its local store (20.10 has no cluster store without
      // Swarm); with a cluster store berth connects them across hosts itself.
      Scope: 'local',
      ConnectivityScope: engine.ctx.cluster ? 'global' : 'local',
    }),
    'NetworkDriver.CreateNetwork': async (body) => {
      const req = CreateNetwork.parse(body);
      if (isTrue(req.Options[OPT_ENABLE_IPV6]) || req.IPv6Data.length > 0) {
        throw invalid('berth networks made through dockerd are IPv4-only for now: drop --ipv6 (or create a dual-stack network with `berth network create --ipv6` and share it with -o berth.name)');
      }
      const v4 = req.IPv4Data[0];
      if (req.IPv4Data.length > 1) throw invalid('a berth network has one IPv4 subnet: pass one --subnet');
      await engine.dockerPlugin('create network', { network: short(req.NetworkID) }, (ctx) =>
        docker.dockerCreateNetwork(ctx, {
          dockerId: req.NetworkID,
          options: stringOptions(req.Options[OPT_GENERIC]),
          internal: isTrue(req.Options[OPT_INTERNAL]),
          ...(v4 && { pool: v4.Pool, gateway: v4.Gateway }),
          auxAddresses: stripPrefixes(v4?.AuxAddresses ?? {}),
        }),
      );
      return {};
    },
    'NetworkDriver.DeleteNetwork': async (body) => {
      const req = NetworkRef.parse(body);
      await engine.dockerPlugin('delete network', { network: short(req.NetworkID) }, (ctx) => docker.dockerDeleteNetwork(ctx, req.NetworkID));
      return {};
    },
    'NetworkDriver.CreateEndpoint': async (body) => {
      const req = CreateEndpoint.parse(body);
      if (req.Interface.AddressIPv6) throw invalid('berth networks made through dockerd are IPv4-only for now: drop --ip6');
      const endpoint = await engine.dockerPlugin('create endpoint', { network: short(req.NetworkID), endpoint: short(req.EndpointID) }, (ctx) =>
        docker.dockerCreateEndpoint(ctx, { dockerNetworkId: req.NetworkID, endpointId: req.EndpointID, address: req.Interface.Address, mac: req.Interface.MacAddress }),
      );
      // dockerd refuses an Interface in the reply when it supplied the address itself.
      if (req.Interface.Address || !endpoint.ip) return {};
      const net = engine.ctx.store.network(endpoint.networkId);
      return { Interface: { Address: `${endpoint.ip}/${net?.subnet?.split('/')[1] ?? 32}`, MacAddress: endpoint.mac } };
    },
    'NetworkDriver.EndpointOperInfo': async (body) => {
      const req = EndpointRef.parse(body);
      const c = engine.ctx.store.containerByName(docker.recordName(req.EndpointID));
      const e = c && engine.ctx.store.endpointsOfContainer(c.id)[0];
      return { Value: e ? { 'berth.endpoint': e.id, 'berth.container': c.name, ...(e.hostLink && { 'berth.host_link': e.hostLink }) } : {} };
    },
    'NetworkDriver.DeleteEndpoint': async (body) => {
      const req = EndpointRef.parse(body);
      await engine.dockerPlugin('delete endpoint', { network: short(req.NetworkID), endpoint: short(req.EndpointID) }, (ctx) => docker.dockerDeleteEndpoint(ctx, req.NetworkID, req.EndpointID));
      return {};
    },
    'NetworkDriver.Join': async (body) => {
      const req = Join.parse(body);
      const info = docker.dockerJoinInfo(engine.ctx, req.NetworkID, req.EndpointID);
      // dockerd sends no name: berth asks dockerd for it once the container is up.
      names?.learn(req.NetworkID, req.EndpointID);
      return {
        InterfaceName: { SrcName: info.srcName, DstPrefix: 'eth' },
        ...(info.gateway && { Gateway: info.gateway }),
        ...(info.gateway6 && { GatewayIPv6: info.gateway6 }),
        // berth's networks bring their own way out (or, internal ones, none): no docker_gwbridge.
        DisableGatewayService: true,
      };
    },
    'NetworkDriver.Leave': async (body) => {
      EndpointRef.parse(body);
      return {};
    },
    'NetworkDriver.ProgramExternalConnectivity': async (body) => {
      const req = ExternalConnectivity.parse(body);
      const mappings = PortMap.parse(req.Options[OPT_PORTMAP]).map((b) => ({
        protocol: b.Proto === 17 ? ('udp' as const) : ('tcp' as const),
        hostIp: b.HostIP,
        hostPort: b.HostPort,
        hostPortEnd: b.HostPortEnd ?? b.HostPort,
        containerPort: b.Port,
      }));
      await engine.dockerPlugin('publish', { endpoint: short(req.EndpointID), ports: mappings.length }, (ctx) => docker.dockerPublish(ctx, req.EndpointID, mappings));
      return {};
    },
    'NetworkDriver.RevokeExternalConnectivity': async (body) => {
      const req = EndpointRef.parse(body);
      await engine.dockerPlugin('unpublish', { endpoint: short(req.EndpointID) }, (ctx) => docker.dockerUnpublish(ctx, req.EndpointID));
      return {};
    },
    // Node discovery is Swarm's; berth's cluster store finds the hosts.
    'NetworkDriver.DiscoverNew': async () => ({}),
    'NetworkDriver.DiscoverDelete': async () => ({}),
  };
}

/** Docker's auxiliary addresses may carry a prefix; berth's are plain addresses. */
function stripPrefixes(aux: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(aux).map(([k, v]) => [k, v.split('/')[0]!]));
}
