/**
 * The plugin socket dockerd finds berth on (`berth daemon --plugin-socket PATH`; dockerd looks in
 * /run/docker/plugins/NAME.sock). One HTTP server answers Plugin.Activate and the NetworkDriver
 * and IpamDriver methods. An unknown method is a 404, which dockerd takes for "not implemented";
 * a refused or failed operation is `{"Err": message}`, which dockerd shows its user.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { ZodError } from 'zod';
import type { Engine } from '../engine/engine.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { readText } from '../api/body.js';
import { claimSocketPath } from '../api/server.js';
import { DockerApi } from './docker-api.js';
import { DockerNames } from './docker-names.js';
import { ipamDriverHandlers } from './ipam-driver.js';
import { networkDriverHandlers } from './network-driver.js';
import { PLUGIN_CONTENT_TYPE } from './protocol.js';

export type Handlers = Record<string, (body: unknown) => Promise<object>>;

function errorText(err: unknown): string {
  if (err instanceof ZodError) return `invalid request: ${err.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`;
  return messageOf(err);
}

/**
 * `dockerHost` is dockerd's API socket, where berth learns its endpoints' container names
 * (docker-names.ts); without it Docker's containers are known to other hosts by address only.
 */
export async function startPluginServer(engine: Engine, opts: { socketPath: string; log: Logger; dockerHost?: string }): Promise<http.Server> {
  const names = opts.dockerHost === undefined ? undefined : new DockerNames(engine, new DockerApi(opts.dockerHost), opts.log);
  const handlers: Handlers = {
    '/Plugin.Activate': async () => ({ Implements: ['NetworkDriver', 'IpamDriver'] }),
    ...Object.fromEntries(Object.entries({ ...networkDriverHandlers(engine, names), ...ipamDriverHandlers(engine) }).map(([k, v]) => [`/${k}`, v])),
  };
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: object) => {
      const text = `${JSON.stringify(body)}\n`;
      res.writeHead(status, { 'Content-Type': PLUGIN_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) }).end(text);
    };
    const handler = req.method === 'POST' ? handlers[req.url ?? ''] : undefined;
    if (!handler) return void reply(404, { Err: `berth does not implement ${req.method} ${req.url}` });
    readText(req)
      .then((raw) => {
        opts.log.debug('plugin call', { method: req.url, body: raw.slice(0, 2000) });
        return handler(raw.trim() ? JSON.parse(raw) : {});
      })
      .then(
        (body) => reply(200, body),
        (err) => {
          opts.log.warn('plugin call refused', { method: req.url, error: errorText(err) });
          reply(err instanceof SyntaxError || err instanceof ZodError ? 400 : 200, { Err: errorText(err) });
        },
      )
      .catch((err) => {
        opts.log.error('plugin request failed', { error: String(err) });
        res.destroy();
      });
  });
  fs.mkdirSync(path.dirname(opts.socketPath), { recursive: true });
  await claimSocketPath(opts.socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => resolve());
  });
  fs.chmodSync(opts.socketPath, 0o600);
  server.once('close', () => names?.close());
  names?.learnMissing();
  return server;
}
