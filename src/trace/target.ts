/**
 * What `berth trace SRC DST[:PORT[/PROTO]]` names, parsed and checked before anything is looked up
 * (pure). An end is `host`, an IP address (a container's, the host's, a LAN peer's), or a
 * container name or id, which only the store can confirm.
 */
import { isIP } from 'node:net';
import { invalid } from '../errors.js';

export type Protocol = 'tcp' | 'udp' | 'icmp';

export type TargetRef = { kind: 'host' } | { kind: 'ip'; ip: string } | { kind: 'container'; ref: string };

export interface TraceRequest {
  from: TargetRef;
  to: TargetRef;
  /** Absent for an ICMP echo. */
  port?: number;
  protocol: Protocol;
}

/** Docker's container names: a letter or digit first, then letters, digits, `_`, `.`, `-`. */
const CONTAINER_NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** One end: `host`, an IPv4 or IPv6 address (brackets allowed), or a container name or id. */
export function parseEnd(text: string, which: 'source' | 'destination'): TargetRef {
  const t = text.trim();
  if (!t) throw invalid(`the ${which} is empty: give a container name or id, an IP address, or host`);
  if (t === 'host') return { kind: 'host' };
  const bare = t.startsWith('[') && t.endsWith(']') ? t.slice(1, -1) : t;
  if (isIP(bare)) return { kind: 'ip', ip: bare.toLowerCase() };
  // Something address-like that is not an address is a typo, not a container name.
  if (/^[0-9]*\.[0-9.]*$/.test(t) || bare.includes(':')) throw invalid(`${which} ${text} is not a valid IP address: write it like 172.18.0.2 or fd00::2`);
  if (!CONTAINER_NAME.test(t)) throw invalid(`${which} ${text} is neither host, an IP address, nor a valid container name or id`);
  return { kind: 'container', ref: t };
}

export function parsePort(text: string): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw invalid(`port ${text} is not a port number: give one from 1 to 65535`);
  return port;
}

export function parseProtocol(text: string): Protocol {
  const p = text.toLowerCase();
  if (p !== 'tcp' && p !== 'udp' && p !== 'icmp') throw invalid(`protocol ${text} is not supported: use tcp, udp or icmp`);
  return p;
}

/**
 * `DST[:PORT[/tcp|udp]]` as the CLI takes it. An IPv6 destination with a port is written in
 * brackets (`[fd00::2]:80`); a bare IPv6 address has no port.
 */
export function parseDestinationSpec(text: string): { to: string; port?: number; protocol?: Protocol } {
  const t = text.trim();
  let host = t;
  let rest: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(t);
  if (bracketed) {
    host = bracketed[1]!;
    rest = bracketed[2];
  } else if ((t.match(/:/g) ?? []).length === 1) {
    [host, rest] = t.split(':') as [string, string];
  }
  if (rest === undefined) return { to: host };
  if (rest === '') throw invalid(`destination ${text} ends with ':' but gives no port: write DST:PORT[/tcp|udp]`);
  const [port, protocol] = rest.split('/') as [string, string | undefined];
  const parsedProtocol = protocol === undefined ? 'tcp' : parseProtocol(protocol);
  if (parsedProtocol === 'icmp') throw invalid(`destination ${text}: icmp has no ports; leave out :PORT for an echo`);
  return { to: host, port: parsePort(port), protocol: parsedProtocol };
}

/** The API body, checked: a port needs tcp or udp, and tcp or udp needs a port. */
export function parseTraceRequest(body: { from: string; to: string; port?: number; protocol?: Protocol }): TraceRequest {
  const from = parseEnd(body.from, 'source');
  const to = parseEnd(body.to, 'destination');
  const protocol = body.protocol ?? (body.port === undefined ? 'icmp' : 'tcp');
  if (body.port !== undefined && (!Number.isInteger(body.port) || body.port < 1 || body.port > 65535)) {
    throw invalid(`port ${body.port} is not a port number: give one from 1 to 65535`);
  }
  if (protocol === 'icmp' && body.port !== undefined) throw invalid('icmp has no ports: leave out the port, or choose tcp or udp');
  if (protocol !== 'icmp' && body.port === undefined) throw invalid(`${protocol} needs a port: give DST:PORT/${protocol}`);
  return { from, to, protocol, ...(body.port !== undefined && { port: body.port }) };
}
