/**
 * The topology page's small HTTP server: the page's files, and the few daemon calls the page
 * makes, forwarded to the daemon's unix socket (daemon-proxy.ts):
 *
 *   GET  /api/topology              → GET  /berth/topology
 *   GET  /api/topology/stream       → GET  /berth/topology/stream   (server-sent events)
 *   GET  /api/containers/NAME/json  → GET  /containers/NAME/json    (inspect)
 *   POST /api/trace                 → POST /berth/trace
 *
 * The daemon runs as root and the page can ask it things: on loopback the server answers only
 * requests whose Host is its own address (a DNS-rebinding page gets nothing), and a POST only from
 * its own origin.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readText } from '../api/body.js';
import { loadAssets, type Asset } from './assets.js';
import { forwardToDaemon, type Forward } from './daemon-proxy.js';
import { urlHost, type ListenAddress } from './listen-address.js';

/** A trace request is two names: anything bigger is not one. */
const MAX_BODY = 64 * 1024;
/** Docker's container names (and ids, and their prefixes). */
const CONTAINER_REF = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface UiServer {
  server: http.Server;
  /** The address it listens on, the port filled in (for --listen HOST:0). */
  url: string;
  close(): Promise<void>;
}

export async function startUiServer(listen: ListenAddress, socketPath: string): Promise<UiServer> {
  const assets = loadAssets();
  const server = http.createServer((req, res) => {
    answer(req, res, assets, socketPath, server, listen).catch((err: Error) => {
      if (!res.headersSent) sendJson(res, 500, { message: err.message });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    url: `http://${urlHost(listen.host)}:${port}/`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}

/** The Host headers a browser sends for this server: its listen address, and localhost's names for loopback. */
function ownHosts(server: http.Server, listen: ListenAddress): Set<string> {
  const port = (server.address() as AddressInfo).port;
  const names = [urlHost(listen.host)];
  if (listen.loopback) names.push('localhost', '127.0.0.1', '[::1]');
  return new Set(names.map((n) => `${n}:${port}`));
}

async function answer(req: http.IncomingMessage, res: http.ServerResponse, assets: Map<string, Asset>, socketPath: string, server: http.Server, listen: ListenAddress): Promise<void> {
  const hosts = ownHosts(server, listen);
  if (listen.loopback && !hosts.has(req.headers.host ?? '')) {
    sendJson(res, 421, { message: `this server answers only to ${[...hosts].join(', ')}` });
    return;
  }
  const url = new URL(req.url ?? '/', 'http://ui');
  const method = req.method ?? 'GET';
  const asset = assets.get(url.pathname);
  if (asset && (method === 'GET' || method === 'HEAD')) {
    res.writeHead(200, { 'Content-Type': asset.type, 'Content-Length': asset.body.length, 'Cache-Control': 'no-cache' }).end(method === 'HEAD' ? undefined : asset.body);
    return;
  }
  const call = await daemonCall(req, method, url.pathname);
  if ('status' in call) {
    sendJson(res, call.status, { message: call.message });
    return;
  }
  forwardToDaemon(socketPath, call, res);
}

/** The daemon call a page request stands for, or why it is refused. */
async function daemonCall(req: http.IncomingMessage, method: string, pathname: string): Promise<Forward | { status: number; message: string }> {
  if (method === 'GET' && pathname === '/api/topology') return { method, path: '/berth/topology' };
  if (method === 'GET' && pathname === '/api/topology/stream') return { method, path: '/berth/topology/stream' };
  const inspect = /^\/api\/containers\/([^/]+)\/json$/.exec(pathname);
  if (method === 'GET' && inspect) {
    const ref = decodeURIComponent(inspect[1]!);
    if (!CONTAINER_REF.test(ref)) return { status: 400, message: `invalid container name "${ref}": names are letters, digits, and _ . - (not first)` };
    return { method, path: `/containers/${encodeURIComponent(ref)}/json` };
  }
  if (method === 'POST' && pathname === '/api/trace') {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host}`) return { status: 403, message: `a trace may only be asked for from this page (origin ${origin} refused)` };
    if ((req.headers['content-type'] ?? '').split(';')[0]!.trim() !== 'application/json') return { status: 415, message: 'send the trace request as application/json' };
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) return { status: 413, message: `a trace request is at most ${MAX_BODY} bytes` };
    return { method, path: '/berth/trace', body: Buffer.from(await readText(req)) };
  }
  return { status: 404, message: `no such page: ${method} ${pathname}` };
}
