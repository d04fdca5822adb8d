/** A small client for the daemon's API over its unix socket, used by the CLI. */
import * as http from 'node:http';
import { DEFAULT_HOST } from '../constants.js';
import { BerthError, daemonError } from '../errors.js';

export function socketPathOf(host: string): string {
  if (!host.startsWith('unix://')) throw new BerthError('invalid', `unsupported host ${host}: use unix:///path/to/berth.sock`);
  return host.slice('unix://'.length);
}

export class ApiClient {
  readonly socketPath: string;
  /** One connection reused across requests: a new connection per request costs about 2 ms. */
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(host = process.env.BERTH_HOST || DEFAULT_HOST) {
    this.socketPath = socketPathOf(host);
  }

  /** Lets the process exit: idle kept-alive connections would otherwise hold it open. */
  close(): void {
    this.agent.destroy();
  }

  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          agent: this.agent,
          method,
          path,
          headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 500;
            let parsed: unknown = undefined;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = text;
            }
            if (status >= 400) {
              const message = (parsed as { message?: string } | undefined)?.message ?? text ?? `HTTP ${status}`;
              reject(daemonError(status, message));
            } else resolve(parsed as T);
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          reject(
            new BerthError(
              'unavailable',
              `cannot reach the berth daemon at unix://${this.socketPath}: is it running? Start it with \`berth daemon\`, or point BERTH_HOST / --host at its socket`,
            ),
          );
        } else reject(err);
      });
      if (payload) req.write(payload);
      req.end();
    });
  }
}
