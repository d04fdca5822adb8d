/**
 * Parses the port options of `berth run` in Docker's syntax: `-p [IP:][HOSTPORT:]CPORT[/PROTO]`
 * with ports or ranges on either side, and `--expose CPORT[/PROTO]`. Only text handling lives
 * here; choosing ephemeral ports and spotting clashes between containers is the engine's job.
 */
import { invalid } from '../errors.js';
import { formatIpv4, parseIpv4 } from './ipv4.js';
import { formatIpv6, parseIpv6 } from './ipv6.js';

export type Protocol = 'tcp' | 'udp';

export interface PortBinding {
  protocol: Protocol;
  /** '0.0.0.0' when the spec names no address: every host address. */
  hostIp: string;
  /** 0 asks the engine for an ephemeral port (within hostPortRange when that is set). */
  hostPort: number;
  containerPort: number;
  /** Set for `8000-8009:80`: publish on any one free host port of the range, both ends included. */
  hostPortRange?: [number, number];
  /**
   * Set when the spec names 0.0.0.0 itself: every IPv4 address only. With no address, a port of a
   * dual-stack container is published on [::] too (Docker ≥ 27 tells the two apart the same way).
   */
  ipv4Only?: true;
}

export interface ExposedPort {
  protocol: Protocol;
  containerPort: number;
}

interface PortRange {
  start: number;
  end: number;
}

const ANY_IPV4 = '0.0.0.0';
const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp'];
const EXPECTED_FORMS =
  'expected [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp], e.g. 8080:80, 127.0.0.1:8080:80/udp, [::1]:8080:80 or 8000-8009:80-89';

/** One `-p` value, expanded to one binding per container port. */
export function parsePortSpec(spec: string): PortBinding[] {
  const shown = `-p ${spec}`;
  let rest = spec;
  let ip6: string | undefined;
  if (spec.startsWith('[')) {
    // An IPv6 host address is bracketed, as in a URL: [::1]:8080:80, [fd00::1]::80.
    const close = spec.indexOf(']');
    if (close < 0 || spec[close + 1] !== ':') throw invalid(`invalid port spec "${shown}": an IPv6 host address goes in brackets followed by a colon, e.g. [::1]:8080:80`);
    ip6 = parseHostIp6(spec.slice(1, close), shown);
    rest = spec.slice(close + 2);
  }
  const { ports, protocol } = splitProtocol(rest, shown);
  const parts = ports.split(':');
  if (ports === '' || parts.length > (ip6 ? 2 : 3)) {
    throw invalid(`invalid port spec "${shown}": ${EXPECTED_FORMS}`);
  }
  const [ipText, hostText, containerText] = ['', '', ...(ip6 ? ['', ...parts].slice(-2) : parts)].slice(-3);
  const hostIp = ip6 ?? (ipText === '' ? ANY_IPV4 : parseHostIp(ipText, shown));
  const container = parseRange(containerText, 'container', shown);
  const host = hostText === '' ? undefined : parseRange(hostText, 'host', shown);
  return pairRanges(host, container, shown).map(({ hostPort, containerPort, hostPortRange }) => ({
    protocol,
    hostIp,
    hostPort,
    containerPort,
    ...(hostPortRange && { hostPortRange }),
    ...(ipText === ANY_IPV4 && { ipv4Only: true as const }),
  }));
}

/** One `--expose` value: a container port or range, with an optional protocol. */
export function parseExposeSpec(spec: string): ExposedPort[] {
  const shown = `--expose ${spec}`;
  const { ports, protocol } = splitProtocol(spec, shown);
  const range = parseRange(ports, 'container', shown);
  return portsOf(range).map((containerPort) => ({ protocol, containerPort }));
}

/**
 * `docker port` style: `80/tcp -> 0.0.0.0:8080`. Meant for bindings the engine has resolved; an
 * unresolved one shows its host range, or port 0.
 */
export function formatBinding(b: PortBinding): string {
  const host = b.hostPort === 0 && b.hostPortRange ? `${b.hostPortRange[0]}-${b.hostPortRange[1]}` : `${b.hostPort}`;
  return `${b.containerPort}/${b.protocol} -> ${b.hostIp.includes(':') ? `[${b.hostIp}]` : b.hostIp}:${host}`;
}

function splitProtocol(spec: string, shown: string): { ports: string; protocol: Protocol } {
  const slash = spec.indexOf('/');
  if (slash < 0) return { ports: spec, protocol: 'tcp' };
  const text = spec.slice(slash + 1);
  const protocol = PROTOCOLS.find((p) => p === text.toLowerCase());
  if (protocol) return { ports: spec.slice(0, slash), protocol };
  if (text.toLowerCase() === 'sctp') throw invalid(`protocol "sctp" in "${shown}" is not supported yet: use tcp or udp`);
  throw invalid(`unknown protocol "${text}" in "${shown}": use tcp or udp`);
}

function parseHostIp(text: string, shown: string): string {
  try {
    return formatIpv4(parseIpv4(text));
  } catch (err) {
    throw invalid(`invalid host IP "${text}" in "${shown}": expected an IPv4 address like 127.0.0.1`, err);
  }
}

function parseHostIp6(text: string, shown: string): string {
  try {
    return formatIpv6(parseIpv6(text));
  } catch (err) {
    throw invalid(`invalid host IP "[${text}]" in "${shown}": expected an IPv6 address like [::1] or [fd00::1]`, err);
  }
}

function parseRange(text: string, side: 'host' | 'container', shown: string): PortRange {
  const dash = text.indexOf('-');
  if (dash < 0) {
    const port = parsePort(text, side, shown);
    return { start: port, end: port };
  }
  const [startText, endText] = [text.slice(0, dash), text.slice(dash + 1)];
  if (startText === '' || endText === '' || endText.includes('-')) {
    throw invalid(`invalid ${side} port range "${text}" in "${shown}": expected START-END like 8000-8009`);
  }
  const range = { start: parsePort(startText, side, shown), end: parsePort(endText, side, shown) };
  if (range.start > range.end) {
    throw invalid(`invalid ${side} port range "${text}" in "${shown}": the start is greater than the end`);
  }
  return range;
}

function parsePort(text: string, side: 'host' | 'container', shown: string): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw invalid(`invalid ${side} port "${text}" in "${shown}": expected a number 1-65535`);
  }
  return port;
}

type PortPair = Pick<PortBinding, 'hostPort' | 'containerPort' | 'hostPortRange'>;

/** Docker's pairing rules for the host and container sides of one spec. */
function pairRanges(host: PortRange | undefined, container: PortRange, shown: string): PortPair[] {
  const containerPorts = portsOf(container);
  if (!host) return containerPorts.map((containerPort) => ({ hostPort: 0, containerPort }));
  const hostCount = host.end - host.start + 1;
  if (hostCount === containerPorts.length) {
    return containerPorts.map((containerPort, i) => ({ hostPort: host.start + i, containerPort }));
  }
  if (containerPorts.length === 1) {
    return [{ hostPort: 0, containerPort: container.start, hostPortRange: [host.start, host.end] }];
  }
  throw invalid(
    `invalid port spec "${shown}": host ${describe(host)} has ${hostCount} port${hostCount === 1 ? '' : 's'} ` +
      `but container ${describe(container)} has ${containerPorts.length}`,
  );
}

function portsOf(range: PortRange): number[] {
  return Array.from({ length: range.end - range.start + 1 }, (_, i) => range.start + i);
}

function describe(range: PortRange): string {
  return range.start === range.end ? `port ${range.start}` : `range ${range.start}-${range.end}`;
}
