/**
 * Docker's plugin protocol (libnetwork's remote network driver and IPAM driver, docs/remote.md and
 * docs/ipam.md): POST /<Interface>.<Method> with a JSON body, answered with JSON. The requests are
 * validated here at the boundary and the handlers' types derived from these schemas; fields
 * dockerd sends that berth does not use are accepted and ignored.
 */
import { z } from 'zod';

export const PLUGIN_CONTENT_TYPE = 'application/vnd.docker.plugins.v1+json';

/** Docker's keys in a network's Options. */
export const OPT_GENERIC = 'com.docker.network.generic';
export const OPT_INTERNAL = 'com.docker.network.internal';
export const OPT_ENABLE_IPV6 = 'com.docker.network.enable_ipv6';
/** Docker's key in ProgramExternalConnectivity's Options: the container's `-p` mappings. */
export const OPT_PORTMAP = 'com.docker.network.portmap';

const id = z.string().min(1, 'an id is required');
const options = z
  .record(z.unknown())
  .nullish()
  .transform((v) => v ?? {});
const text = z
  .string()
  .nullish()
  .transform((v) => v ?? '');

const IpamData = z.object({
  AddressSpace: text,
  Pool: text,
  Gateway: text,
  AuxAddresses: z
    .record(z.string())
    .nullish()
    .transform((v) => v ?? {}),
});

export const CreateNetwork = z.object({
  NetworkID: id,
  Options: options,
  IPv4Data: z
    .array(IpamData)
    .nullish()
    .transform((v) => v ?? []),
  IPv6Data: z
    .array(IpamData)
    .nullish()
    .transform((v) => v ?? []),
});
export const NetworkRef = z.object({ NetworkID: id });
export const EndpointRef = z.object({ NetworkID: id, EndpointID: id });
export const CreateEndpoint = EndpointRef.extend({
  Interface: z
    .object({ Address: text, AddressIPv6: text, MacAddress: text })
    .nullish()
    .transform((v) => v ?? { Address: '', AddressIPv6: '', MacAddress: '' }),
  Options: options,
});
export const Join = EndpointRef.extend({ SandboxKey: text, Options: options });
export const ExternalConnectivity = EndpointRef.extend({ Options: options });

/** One of `com.docker.network.portmap` (libnetwork's types.PortBinding): Proto 6 is TCP, 17 UDP. */
export const PortBinding = z.object({
  Proto: z.union([z.literal(6), z.literal(17)], { errorMap: () => ({ message: 'berth publishes TCP (6) and UDP (17) ports only' }) }),
  IP: text,
  Port: z.number().int().min(1).max(65535),
  HostIP: text,
  HostPort: z.number().int().min(0).max(65535),
  HostPortEnd: z.number().int().min(0).max(65535).nullish(),
});
export const PortMap = z
  .array(PortBinding)
  .nullish()
  .transform((v) => v ?? []);

export const RequestPool = z.object({ AddressSpace: text, Pool: text, SubPool: text, Options: options, V6: z.boolean().nullish() });
export const PoolRef = z.object({ PoolID: id });
export const RequestAddress = z.object({ PoolID: id, Address: text, Options: options });
export const ReleaseAddress = z.object({ PoolID: id, Address: z.string().min(1) });

/** Docker's option maps hold strings, booleans and nested maps; berth's options are strings. */
export function stringOptions(value: unknown): Record<string, string> {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
}

export const isTrue = (v: unknown) => v === true || v === 'true';
