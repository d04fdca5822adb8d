/**
 * `berth ui --listen HOST:PORT`: where the page is served. Loopback by default; anything else is
 * reachable by whoever reaches that address, and the page drives a root daemon, so it is allowed
 * only when asked for explicitly, with a warning (cli/commands/ui.ts prints it).
 */
import * as net from 'node:net';
import { invalid } from '../errors.js';

export const DEFAULT_LISTEN = '127.0.0.1:8088';

export interface ListenAddress {
  host: string;
  port: number;
  loopback: boolean;
}

const HOW = 'use HOST:PORT, e.g. 127.0.0.1:8088 or [::1]:8088';

export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) throw invalid(`invalid --listen "${text}": ${HOW}`);
  const host = (m[1] ?? m[2])!;
  const port = Number(m[3]);
  if (port > 65535) throw invalid(`invalid --listen "${text}": port ${port} is out of range (0-65535)`);
  if (host !== 'localhost' && net.isIP(host) === 0) throw invalid(`invalid --listen "${text}": "${host}" is not an IP address (or localhost): ${HOW}`);
  if (m[1] !== undefined && net.isIPv6(host) === false) throw invalid(`invalid --listen "${text}": only IPv6 addresses go in brackets`);
  return { host, port, loopback: isLoopback(host) };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}

/** How the page's own address is written in a URL (and in the Host header browsers send). */
export const urlHost = (host: string) => (net.isIPv6(host) ? `[${host}]` : host);
