/**
 * The daemon's HTTP API on a unix socket. Network endpoints speak the Docker Engine API (v1.41),
 * so the stock `docker` CLI can drive berth's networks; container endpoints are berth's own.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { z } from 'zod';
import { API_VERSION, BERTH_VERSION } from '../constants.js';
import { BerthError, invalid, isBerthError, messageOf, notFound } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { NetworkView } from '../engine/views.js';
import type { Logger } from '../log.js';
import {
  ContainerCreate,
  ContainerExited,
  ContainerPid,
  NetworkConnect,
  NetworkCreate,
  NetworkDisconnect,
  parseFilters,
} from './schemas.js';

interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}

interface Reply {
  status: number;
  body?: unknown;
}

type Handler = (req: Request, params: string[]) => Promise<Reply> | Reply;

const ok = (body?: unknown, status = 200): Reply => ({ status, body });

function parseBody<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw invalid(`invalid request: ${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return result.data;
}

function matchesFilters(n: NetworkView, filters: Record<string, string[]>): boolean {
  const test = (key: string, pred: (v: string) => boolean) => !filters[key] || filters[key]!.some(pred);
  return (
    test('name', (v) => n.Name.includes(v)) &&
    test('id', (v) => n.Id.startsWith(v)) &&
    test('driver', (v) => n.Driver === v) &&
    test('scope', (v) => v === 'local') &&
    test('type', (v) => (v === 'builtin') === ['bridge', 'host', 'none'].includes(n.Name)) &&
    test('label', (v) => {
      const [k, val] = v.split('=', 2) as [string, string | undefined];
      return k in n.Labels && (val === undefined || n.Labels[k] === val);
    }) &&
    test('dangling', (v) => (v === 'true' || v === '1') === (Object.keys(n.Containers).length === 0 && !['bridge', 'host', 'none'].includes(n.Name)))
  );
}

export function routes(engine: Engine): [string, RegExp, Handler][] {
  return [
    ['GET', /^\/_ping$/, () => ok('OK')],
    ['HEAD', /^\/_ping$/, () => ok()],
    [
      'GET',
      /^\/version$/,
      () => ok({ Version: BERTH_VERSION, ApiVersion: API_VERSION, MinAPIVersion: '1.12', Os: 'linux', Arch: process.arch, Components: [{ Name: 'berth', Version: BERTH_VERSION }] }),
    ],
    [
      'GET',
      /^\/networks$/,
      (req) => {
        const filters = parseFilters(req.query.get('filters'));
        const list = engine.listNetworks().map((n) => engine.inspectNetwork(n.Id));
        return ok(list.filter((n) => matchesFilters(n, filters)));
      },
    ],
    [
      'POST',
      /^\/networks\/create$/,
      async (req) => {
        const b = parseBody(NetworkCreate, req.body);
        const config = b.IPAM?.Config?.[0];
        if ((b.IPAM?.Config?.length ?? 0) > 1) throw invalid('berth supports one IPv4 subnet per network');
        if (b.EnableIPv6) throw invalid('IPv6 networks are not supported yet');
        const net = await engine.createNetwork({
          name: b.Name,
          driver: b.Driver ?? undefined,
          subnet: config?.Subnet ?? undefined,
          gateway: config?.Gateway ?? undefined,
          ipRange: config?.IPRange ?? undefined,
          internal: b.Internal ?? false,
          labels: b.Labels,
          options: b.Options,
        });
        return ok({ Id: net.Id, Warning: '' }, 201);
      },
    ],
    [
      'POST',
      /^\/networks\/prune$/,
      async (req) => {
        const filters = parseFilters(req.query.get('filters'));
        const labels = filters.label ?? [];
        const keep = (n: { labels: Record<string, string> }) =>
          labels.some((l) => {
            const [k, v] = l.split('=', 2) as [string, string | undefined];
            return !(k in n.labels && (v === undefined || n.labels[k] === v));
          });
        return ok({ NetworksDeleted: await engine.pruneNetworks(keep) });
      },
    ],
    ['GET', /^\/networks\/([^/]+)$/, (_req, [ref]) => ok(engine.inspectNetwork(ref!))],
    [
      'DELETE',
      /^\/networks\/([^/]+)$/,
      async (_req, [ref]) => {
        await engine.removeNetwork(ref!);
        return ok(undefined, 204);
      },
    ],
    [
      'POST',
      /^\/networks\/([^/]+)\/connect$/,
      async (req, [ref]) => {
        const b = parseBody(NetworkConnect, req.body);
        await engine.connect(ref!, b.Container, {
          ip: b.EndpointConfig?.IPAMConfig?.IPv4Address || undefined,
          aliases: b.EndpointConfig?.Aliases ?? [],
        });
        return ok(undefined, 200);
      },
    ],
    [
      'POST',
      /^\/networks\/([^/]+)\/disconnect$/,
      async (req, [ref]) => {
        const b = parseBody(NetworkDisconnect, req.body);
        await engine.disconnect(ref!, b.Container, b.Force ?? false);
        return ok(undefined, 200);
      },
    ],
    ['GET', /^\/containers\/json$/, (req) => ok(engine.listContainers(['1', 'true'].includes(req.query.get('all') ?? '')))],
    [
      'POST',
      /^\/containers\/create$/,
      async (req) => {
        const c = await engine.createContainer(parseBody(ContainerCreate, req.body));
        return ok({ Id: c.id, Warnings: [] }, 201);
      },
    ],
    ['GET', /^\/containers\/([^/]+)\/json$/, (_req, [ref]) => ok(engine.inspectContainer(ref!))],
    [
      'POST',
      /^\/containers\/([^/]+)\/start$/,
      async (req, [ref]) => ok(await engine.startContainer(ref!, req.query.get('detach') !== '0')),
    ],
    [
      'POST',
      /^\/containers\/([^/]+)\/pid$/,
      async (req, [ref]) => {
        await engine.recordPid(ref!, parseBody(ContainerPid, req.body).pid);
        return ok(undefined, 204);
      },
    ],
    [
      'POST',
      /^\/containers\/([^/]+)\/exited$/,
      async (req, [ref]) => {
        await engine.containerExited(ref!, parseBody(ContainerExited, req.body).exitCode);
        return ok(undefined, 204);
      },
    ],
    [
      'POST',
      /^\/containers\/([^/]+)\/stop$/,
      async (req, [ref]) => {
        const t = Number(req.query.get('t') ?? 10);
        await engine.stopContainer(ref!, (Number.isFinite(t) ? t : 10) * 1000);
        return ok(undefined, 204);
      },
    ],
    [
      'DELETE',
      /^\/containers\/([^/]+)$/,
      async (req, [ref]) => {
        await engine.removeContainer(ref!, ['1', 'true'].includes(req.query.get('force') ?? ''));
        return ok(undefined, 204);
      },
    ],
    ['POST', /^\/system\/reconcile$/, async () => ok(await engine.reconcile())],
  ];
}

const VERSION_PREFIX = /^\/v\d+\.\d+(?=\/)/;

function readBody(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) {
        reject(invalid('request body larger than 1 MiB'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (!text) return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(invalid('request body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

export interface ServerOptions {
  socketPath: string;
  /** Group that may use the socket (mode 0660); root's group when unset. */
  group?: number;
  log: Logger;
}

export async function startServer(engine: Engine, opts: ServerOptions): Promise<http.Server> {
  const table = routes(engine);
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://berth');
    const route = url.pathname.replace(VERSION_PREFIX, '');
    let reply: Reply;
    try {
      const method = req.method ?? 'GET';
      const candidates = table.filter(([, re]) => re.test(route));
      const hit = candidates.find(([m]) => m === method);
      if (!hit) throw candidates.length ? new BerthError('invalid', `method ${method} not allowed on ${route}`) : notFound(`page not found`);
      const params = (hit[1].exec(route) ?? []).slice(1).map(decodeURIComponent);
      const body = method === 'POST' ? await readBody(req) : undefined;
      reply = await hit[2]({ method, path: route, query: url.searchParams, body }, params);
    } catch (err) {
      const status = isBerthError(err) ? err.httpStatus : 500;
      if (status === 500) opts.log.error('request failed', { path: route, error: messageOf(err) });
      reply = { status, body: { message: messageOf(err) } };
    }
    const headers: Record<string, string> = { 'Api-Version': API_VERSION, Server: `berth/${BERTH_VERSION}` };
    // HEAD /_ping must carry no body: the docker CLI reuses the connection.
    if (reply.body === undefined || req.method === 'HEAD') {
      res.writeHead(reply.status, headers).end();
      return;
    }
    const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    headers['Content-Type'] = typeof reply.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
    res.writeHead(reply.status, headers).end(text);
  });
  fs.mkdirSync(path.dirname(opts.socketPath), { recursive: true });
  fs.rmSync(opts.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => resolve());
  });
  fs.chmodSync(opts.socketPath, 0o660);
  if (opts.group !== undefined) fs.chownSync(opts.socketPath, 0, opts.group);
  return server;
}
