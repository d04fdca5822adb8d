/** `--metrics-addr IP:PORT` (Docker's flag), checked before the daemon starts anything (pure). */
import { isIP } from 'node:net';
import { invalid } from '../errors.js';

export interface MetricsAddr {
  host: string;
  port: number;
}

/** `127.0.0.1:9323` or `[::1]:9323`; anything else is refused, saying what is expected. */
export function parseMetricsAddr(text: string): MetricsAddr {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  const family = host === undefined ? 0 : isIP(host);
  const bracketsRight = m !== null && (family === 6) === (m[1] !== undefined);
  if (!m || family === 0 || !bracketsRight || !(port >= 1 && port <= 65535)) {
    throw invalid(`--metrics-addr "${text}" is not IP:PORT: give an address of this host and a port from 1 to 65535, for example 127.0.0.1:9323 or [::1]:9323`);
  }
  return { host: host!, port };
}
