/**
 * The CNI protocol (spec 1.1.0, also 1.0.0 and 0.4.0): the plugin's configuration and
 * environment, validated at the boundary, and the result and error shapes it answers with.
 * Pure code; the daemon does the work (see engine/cni.ts) and the shim forwards to it: dist/bin/berth-cni,
 * compiled from cni/shim/berth-cni.c at build (bin/berth-cni is the Perl fallback without a compiler).
 */
import { z } from 'zod';
import { MAX_IFNAME } from '../constants.js';

export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** The spec's well-known error codes. */
export const CniCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  limitedAvailability: 51,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details = '',
  ) {
    super(message);
    this.name = 'CniError';
  }

  toJson(cniVersion: string) {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

const PortMapping = z.object({
  hostPort: z.number().int().min(0).max(65535),
  containerPort: z.number().int().min(1).max(65535),
  protocol: z.string().optional(),
  hostIP: z.string().optional(),
});

export const PluginConfig = z
  .object({
    cniVersion: z.string(),
    name: z.string(),
    type: z.string(),
    /** The berth network to attach to (default: the config's `name`). */
    network: z.string().optional(),
    /** Where the daemon listens (`unix://PATH`); the shim reads it, the daemon ignores it. */
    host: z.string().optional(),
    runtimeConfig: z
      .object({
        portMappings: z.array(PortMapping).optional(),
        ips: z.array(z.string()).optional(),
        mac: z.string().optional(),
        aliases: z.record(z.array(z.string())).optional(),
        dns: z.object({ servers: z.array(z.string()).optional(), searches: z.array(z.string()).optional(), options: z.array(z.string()).optional() }).optional(),
      })
      .passthrough()
      .optional(),
    prevResult: z.record(z.unknown()).optional(),
    'cni.dev/valid-attachments': z.array(z.object({ containerID: z.string(), ifname: z.string() })).optional(),
  })
  .passthrough();
export type PluginConfig = z.infer<typeof PluginConfig>;

export type Command = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';
const COMMANDS: readonly string[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];

export interface CniEnv {
  command: Command;
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
}

/** Parses the config text; decode errors and schema errors get the spec's codes. */
export function parseConfig(text: string): PluginConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CniError(CniCode.decodeFailure, `network configuration is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = PluginConfig.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CniError(CniCode.invalidConfig, `invalid network configuration: ${issue.path.join('.') || 'config'}: ${issue.message}`);
  }
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(parsed.data.cniVersion)) {
    throw new CniError(
      CniCode.incompatibleVersion,
      `unsupported cniVersion ${parsed.data.cniVersion}: berth supports ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  return parsed.data;
}

/** Checks the CNI_* variables a command needs (GC and STATUS need none of the container ones). */
export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!COMMANDS.includes(command)) throw new CniError(CniCode.invalidEnvironment, `CNI_COMMAND "${command}" is not one of ${COMMANDS.join(', ')}`);
  const out: CniEnv = {
    command: command as Command,
    containerId: env.CNI_CONTAINERID ?? '',
    netns: env.CNI_NETNS ?? '',
    ifname: env.CNI_IFNAME ?? '',
    args: env.CNI_ARGS ?? '',
  };
  if (['ADD', 'DEL', 'CHECK'].includes(command)) {
    if (!out.containerId) throw new CniError(CniCode.invalidEnvironment, 'CNI_CONTAINERID is required');
    if (!out.ifname) throw new CniError(CniCode.invalidEnvironment, 'CNI_IFNAME is required');
    if (out.ifname.length > MAX_IFNAME || !/^[a-zA-Z0-9_.-]+$/.test(out.ifname)) {
      throw new CniError(CniCode.invalidEnvironment, `CNI_IFNAME "${out.ifname}" is not a valid interface name: at most ${MAX_IFNAME} characters of letters, digits, '_', '.' and '-'`);
    }
    if (command !== 'DEL' && !out.netns) throw new CniError(CniCode.invalidEnvironment, 'CNI_NETNS is required');
  }
  return out;
}

export interface Attachment {
  /** The host-side link, for drivers that have one (a bridge's veth end; a macvlan child has none). */
  hostLink: string | null;
  hostMac?: string;
  ifname: string;
  mac: string;
  netns: string;
  /** The IPv4 side; absent on an IPv6-only network. */
  ip4?: { address: string; prefix: number; gateway: string };
  /** The IPv6 side, on a dual-stack or IPv6-only network. */
  ip6?: { address: string; prefix: number; gateway: string };
  dns: { nameservers: string[]; search?: string[]; options?: string[] };
}

interface ResultInterface {
  name: string;
  mac?: string;
  sandbox?: string;
}

interface ResultIp {
  address: string;
  gateway?: string;
  interface?: number;
  version?: '4' | '6';
}

/**
 * The ADD result. A prevResult from earlier plugins in the chain is kept and ours appended, so
 * interface indexes in `ips` point into the merged `interfaces` list. A dual-stack attachment has
 * one `ips` entry and one default route per family, both on the sandbox interface.
 */
export function buildResult(version: string, a: Attachment, prev?: Record<string, unknown>) {
  const interfaces = [...((prev?.interfaces as ResultInterface[] | undefined) ?? [])];
  const ips = [...((prev?.ips as ResultIp[] | undefined) ?? [])];
  const routes = [...((prev?.routes as unknown[] | undefined) ?? [])];
  if (a.hostLink) interfaces.push({ name: a.hostLink, ...(a.hostMac ? { mac: a.hostMac } : {}) });
  interfaces.push({ name: a.ifname, mac: a.mac, sandbox: a.netns });
  const sides = [
    ...(a.ip4 ? [{ family: '4' as const, address: `${a.ip4.address}/${a.ip4.prefix}`, gateway: a.ip4.gateway, dst: '0.0.0.0/0' }] : []),
    ...(a.ip6 ? [{ family: '6' as const, address: `${a.ip6.address}/${a.ip6.prefix}`, gateway: a.ip6.gateway, dst: '::/0' }] : []),
  ];
  for (const side of sides) {
    // 0.4.0 results name each address's family; 1.0.0 dropped the field.
    ips.push({ address: side.address, gateway: side.gateway, interface: interfaces.length - 1, ...(version === '0.4.0' && { version: side.family }) });
    routes.push({ dst: side.dst, gw: side.gateway });
  }
  const prevDns = (prev?.dns as Record<string, unknown> | undefined) ?? {};
  return { cniVersion: version, interfaces, ips, routes, dns: { ...prevDns, ...a.dns } };
}

export function versionResult(version: string) {
  return { cniVersion: version, supportedVersions: [...SUPPORTED_VERSIONS] };
}

/** runtimeConfig.portMappings as berth port requests. */
export function portRequests(config: PluginConfig) {
  return (config.runtimeConfig?.portMappings ?? []).map((m) => {
    const protocol = (m.protocol ?? 'tcp').toLowerCase();
    if (protocol !== 'tcp' && protocol !== 'udp') {
      throw new CniError(CniCode.invalidConfig, `port mapping ${m.hostPort}:${m.containerPort}: protocol "${m.protocol}" is not supported (use tcp or udp)`);
    }
    return { protocol: protocol as 'tcp' | 'udp', hostIp: m.hostIP || '0.0.0.0', hostPort: m.hostPort, containerPort: m.containerPort };
  });
}
