/**
 * A container's /etc/hosts, byte for byte what Docker writes: the fixed localhost and IPv6 lines,
 * then `--add-host` entries in order, then one line per address the container has on its networks.
 * Other containers are never listed: they are found through the embedded resolver.
 */
import { isIP } from 'node:net';
import { invalid } from '../errors.js';

export interface ExtraHost {
  name: string;
  ip: string;
}

export interface HostsFileInput {
  /** The container's hostname: its 12-character id unless `--hostname` was given. */
  hostname: string;
  /** `--domainname`; when set the line reads `<ip>\t<hostname>.<domain> <hostname>`, as in Docker. */
  domainname?: string;
  /** The container's addresses, one per network endpoint; none for `--network none`. */
  addresses: readonly string[];
  extraHosts?: readonly ExtraHost[];
}

const DEFAULT_LINES = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/**
 * Docker's special `--add-host` value for the host as seen from the container. Docker writes the
 * host's address on its default bridge; berth writes the gateway of the container's first network
 * (the host's address on the bridge the container is plugged into), else the default bridge's.
 */
export const HOST_GATEWAY = 'host-gateway';

export function renderHostsFile(input: HostsFileInput): string {
  const names = input.domainname ? `${input.hostname}.${input.domainname} ${input.hostname}` : input.hostname;
  const lines = [
    ...DEFAULT_LINES,
    ...(input.extraHosts ?? []).map((h) => `${h.ip}\t${h.name}`),
    ...input.addresses.map((ip) => `${ip}\t${names}`),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Parses one `--add-host NAME:IP`. The name ends at the first colon, so IPv6 addresses need no
 * brackets (brackets are accepted too). `host-gateway` stands for `hostGateway` when one is given.
 */
export function parseExtraHost(spec: string, hostGateway?: string): ExtraHost {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? '' : spec.slice(0, colon).trim();
  let ip = colon < 0 ? '' : spec.slice(colon + 1).trim();
  if (!name || !ip) throw invalid(`invalid --add-host "${spec}": expected NAME:IP`);
  if (!/^[^\s#]+$/.test(name)) throw invalid(`invalid --add-host "${spec}": host name "${name}" contains whitespace or "#"`);
  if (ip === HOST_GATEWAY) {
    if (!hostGateway) throw invalid(`invalid --add-host "${spec}": no host-gateway address: the container has no network whose gateway it could stand for; give an IP address instead`);
    ip = hostGateway;
  }
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (isIP(ip) === 0) throw invalid(`invalid --add-host "${spec}": "${ip}" is not an IP address`);
  return { name, ip };
}

/** Checks one `--add-host` before the container exists, when host-gateway's address is not known yet. */
export function checkExtraHost(spec: string): void {
  // Any address stands in for host-gateway here: only the spec's shape is checked.
  parseExtraHost(spec, '0.0.0.0');
}
