/**
 * Wire formats of the HTTP API, validated at the boundary; the handlers' types are derived from
 * these schemas. The network shapes are the Docker Engine API's (what the `docker` CLI sends):
 * unknown fields and Docker's output-only fields are accepted and ignored, as Docker does, but a
 * field that asks for something berth cannot do is refused with a message saying so, rather than
 * silently dropped.
 */
import { z } from 'zod';
import { invalid } from '../errors.js';

const stringMap = z
  .record(z.string())
  .nullish()
  .transform((v) => v ?? {});

/** A field berth accepts only at its zero value (Docker's CLI always sends these). */
const unsupported = <T extends z.ZodTypeAny>(schema: T, isZero: (v: z.infer<T>) => boolean, message: string) =>
  schema.nullish().refine((v) => v === null || v === undefined || isZero(v), { message });

const emptyMap = (v: Record<string, unknown>) => Object.keys(v).length === 0;

const IpamConfig = z
  .object({
    Subnet: z.string().nullish(),
    Gateway: z.string().nullish(),
    IPRange: z.string().nullish(),
    AuxiliaryAddresses: z.record(z.string()).nullish(),
  })
  .passthrough();

export const NetworkCreate = z
  .object({
    Name: z.string({ required_error: 'Name is required' }).min(1, 'a network name is required'),
    Driver: z.string().nullish(),
    Scope: unsupported(z.string(), (v) => ['', 'local', 'global'].includes(v), 'berth networks have scope "local" (or "global" for overlay networks): drop --scope'),
    Internal: z.boolean().nullish(),
    // Overlay networks are always attachable (berth has no swarm services); others cannot be.
    Attachable: z.boolean().nullish(),
    Ingress: unsupported(z.boolean(), (v) => !v, 'ingress networks are a swarm feature: drop --ingress'),
    ConfigOnly: unsupported(z.boolean(), (v) => !v, 'config-only networks are not supported: drop --config-only'),
    ConfigFrom: unsupported(z.object({ Network: z.string().nullish() }).passthrough(), (v) => !v.Network, 'networks made from a config-only network are not supported: drop --config-from'),
    EnableIPv6: z.boolean().nullish(),
    EnableIPv4: z.boolean().nullish(),
    IPAM: z
      .object({
        Driver: unsupported(z.string(), (v) => v === '' || v === 'default', 'berth has only the default IPAM driver: drop --ipam-driver'),
        Options: unsupported(z.record(z.string()), emptyMap, 'the default IPAM driver takes no options: drop --ipam-opt'),
        Config: z
          .array(IpamConfig)
          .max(2, 'berth supports one IPv4 and one IPv6 subnet per network')
          .nullish()
          .refine((c) => (c ?? []).filter((x) => x.Subnet?.includes(':')).length <= 1 && (c ?? []).filter((x) => !x.Subnet?.includes(':')).length <= 1, {
            message: 'berth supports one IPv4 and one IPv6 subnet per network',
          }),
      })
      .passthrough()
      .nullish(),
    Options: stringMap,
    Labels: stringMap,
    CheckDuplicate: z.boolean().nullish(),
  })
  .passthrough()
  .superRefine((b, ctx) => {
    const overlay = b.Driver === 'overlay';
    if (b.Attachable && !overlay) ctx.addIssue({ code: 'custom', path: ['Attachable'], message: 'only overlay networks are attachable (the others are this host\'s alone): drop --attachable' });
    if (b.Scope === 'global' && !overlay) ctx.addIssue({ code: 'custom', path: ['Scope'], message: 'only overlay networks have scope "global": drop --scope or use -d overlay' });
  });
export type NetworkCreateBody = z.infer<typeof NetworkCreate>;

export const NetworkConnect = z
  .object({
    Container: z.string({ required_error: 'Container is required' }).min(1, 'a container name or id is required'),
    EndpointConfig: z
      .object({
        IPAMConfig: z
          .object({
            IPv4Address: z.string().nullish(),
            IPv6Address: z.string().nullish(),
            LinkLocalIPs: unsupported(z.array(z.string()), (v) => v.length === 0, 'link-local addresses are not supported: drop --link-local-ip'),
          })
          .passthrough()
          .nullish(),
        Aliases: z.array(z.string()).nullish(),
        Links: unsupported(z.array(z.string()), (v) => v.length === 0, 'legacy links are not supported: use a user-defined network and its DNS (names and --alias) instead'),
        MacAddress: unsupported(z.string(), (v) => v === '', 'a MAC address per endpoint is not supported: berth derives it from the IP address'),
        DriverOpts: unsupported(z.record(z.string()), emptyMap, 'the bridge driver takes no endpoint options: drop --driver-opt'),
        GwPriority: unsupported(z.number(), (v) => v === 0, 'gateway priorities are not supported: drop --gw-priority'),
      })
      .passthrough()
      .nullish(),
  })
  .passthrough();
export type NetworkConnectBody = z.infer<typeof NetworkConnect>;

export const NetworkDisconnect = z
  .object({
    Container: z.string({ required_error: 'Container is required' }).min(1, 'a container name or id is required'),
    Force: z.boolean().nullish(),
  })
  .passthrough();
export type NetworkDisconnectBody = z.infer<typeof NetworkDisconnect>;

const PortRequest = z.object({
  protocol: z.enum(['tcp', 'udp']),
  hostIp: z.string(),
  hostPort: z.number().int().min(0).max(65535),
  containerPort: z.number().int().min(1).max(65535),
  hostPortRange: z.tuple([z.number().int(), z.number().int()]).optional(),
  ipv4Only: z.literal(true).optional(),
});

/** berth's own container endpoint (Docker's container API is not emulated). */
export const ContainerCreate = z.object({
  name: z.string().optional(),
  cmd: z.array(z.string()).min(1, 'a command is required'),
  hostname: z.string().optional(),
  networkMode: z.string().optional(),
  ip: z.string().optional(),
  ip6: z.string().optional(),
  mac: z.string().optional(),
  aliases: z.array(z.string()).optional(),
  dns: z.array(z.string()).optional(),
  dnsSearch: z.array(z.string()).optional(),
  dnsOptions: z.array(z.string()).optional(),
  addHosts: z.array(z.string()).optional(),
  ports: z.array(PortRequest).optional(),
  autoRemove: z.boolean().optional(),
});

export const ContainerPid = z.object({ pid: z.number().int().positive() });
export const ContainerExited = z.object({ exitCode: z.number().int() });

/**
 * Docker's `filters` query parameter: URL-encoded JSON of `{key: {value: true}}`, or
 * `{key: [values]}` from clients older than API 1.22.
 */
const FiltersJson = z.record(z.union([z.array(z.string()), z.record(z.boolean())]));
export type Filters = Record<string, string[]>;

/** Keys `GET /networks` accepts (Docker's `acceptedNetworkFilters`). */
export const NETWORK_LIST_FILTERS = ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type'] as const;
/** Keys `POST /networks/prune` accepts (Docker's `networksAcceptedFilters`). */
export const NETWORK_PRUNE_FILTERS = ['label', 'label!', 'until'] as const;

/** Parses and checks a `filters` parameter; unknown keys are refused with Docker's message. */
export function parseFilters(raw: string | null, accepted: readonly string[]): Filters {
  if (!raw) return {};
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw invalid(`invalid filters: ${raw} is not JSON (expected e.g. {"name":{"web":true}})`);
  }
  const result = FiltersJson.safeParse(json);
  if (!result.success) throw invalid(`invalid filters: ${raw} (expected e.g. {"name":{"web":true}})`);
  const out: Filters = {};
  for (const [key, value] of Object.entries(result.data)) {
    if (!accepted.includes(key)) throw invalid(`invalid filter '${key}'`);
    out[key] = Array.isArray(value) ? value : Object.keys(value);
  }
  return out;
}
