/**
 * The metrics over TCP (`berth daemon --metrics-addr`), for a Prometheus that cannot reach the
 * API's unix socket. It serves GET /metrics only: the API itself is never exposed on TCP.
 */
import * as http from 'node:http';
import { BerthError, messageOf } from '../errors.js';
import type { EngineMetrics } from './engine-metrics.js';
import type { MetricsAddr } from './metrics-addr.js';

/**
 * Listens on `addr` at once (so a bad address stops the daemon before it touches anything);
 * answers 503 until `metrics()` has something, i.e. until the engine is up.
 */
export async function serveMetrics(addr: MetricsAddr, metrics: () => EngineMetrics | undefined): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('only GET /metrics is served here\n');
      return;
    }
    const m = metrics();
    if (!m) {
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end('the daemon is starting\n');
      return;
    }
    m.text().then(
      (text) => res.writeHead(200, { 'Content-Type': m.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`could not collect the metrics: ${messageOf(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new BerthError('invalid', `cannot serve metrics on --metrics-addr ${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}: ${messageOf(err)} (is the address one of this host's, and the port free?)`, { cause: err })),
    );
    server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => resolve());
  });
  return server;
}
