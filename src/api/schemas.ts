/**
 * Request bodies of the HTTP API, validated at the boundary. The network shapes are the Docker
 * Engine API's (what the `docker` CLI sends); unknown fields are accepted and ignored, as Docker does.
 */
import { z } from 'zod';

const stringMap = z.record(z.string()).nullish().transform((v) => v ?? {});

export const NetworkCreate = z.object({
  Name: z.string({ required_error: 'Name is required' }),
  Driver: z.string().nullish(),
  Internal: z.boolean().nullish(),
  IPAM: z
    .object({
      Driver: z.string().nullish(),
      Config: z
        .array(z.object({ Subnet: z.string().nullish(), Gateway: z.string().nullish(), IPRange: z.string().nullish() }).passthrough())
        .nullish(),
    })
    .passthrough()
    .nullish(),
  Options: stringMap,
  Labels: stringMap,
  EnableIPv6: z.boolean().nullish(),
}).passthrough();

export const NetworkConnect = z.object({
  Container: z.string({ required_error: 'Container is required' }),
  EndpointConfig: z
    .object({
      IPAMConfig: z.object({ IPv4Address: z.string().nullish() }).passthrough().nullish(),
      Aliases: z.array(z.string()).nullish(),
    })
    .passthrough()
    .nullish(),
}).passthrough();

export const NetworkDisconnect = z.object({
  Container: z.string({ required_error: 'Container is required' }),
  Force: z.boolean().nullish(),
}).passthrough();

const PortRequest = z.object({
  protocol: z.enum(['tcp', 'udp']),
  hostIp: z.string(),
  hostPort: z.number().int().min(0).max(65535),
  containerPort: z.number().int().min(1).max(65535),
  hostPortRange: z.tuple([z.number().int(), z.number().int()]).optional(),
});

/** berth's own container endpoint (Docker's container API is not emulated). */
export const ContainerCreate = z.object({
  name: z.string().optional(),
  cmd: z.array(z.string()).min(1, 'a command is required'),
  hostname: z.string().optional(),
  networkMode: z.string().optional(),
  ip: z.string().optional(),
  mac: z.string().optional(),
  aliases: z.array(z.string()).optional(),
  dns: z.array(z.string()).optional(),
  addHosts: z.array(z.string()).optional(),
  ports: z.array(PortRequest).optional(),
  autoRemove: z.boolean().optional(),
});

export const ContainerPid = z.object({ pid: z.number().int().positive() });
export const ContainerExited = z.object({ exitCode: z.number().int() });

/** Docker's `filters` query parameter: JSON of {key: {value: true}} (or {key: [values]} from older clients). */
export function parseFilters(raw: string | null): Record<string, string[]> {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error(`invalid filters: ${raw}`);
  }
  const out: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    out[key] = Array.isArray(value) ? value.map(String) : Object.keys(value as object);
  }
  return out;
}
