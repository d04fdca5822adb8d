/**
 * The daemon's HTTP API on a unix socket. Network endpoints speak the Docker Engine API (v1.41),
 * so the stock `docker` CLI can drive berth's networks; container endpoints are berth's own.
 * docs/api.md lists what is covered, with the status codes.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { API_VERSION, BERTH_VERSION, DEFAULT_NETWORK } from '../constants.js';
import { BerthError, conflict, invalid, isBerthError, messageOf, notFound } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { serveCni } from './cni-handler.js';
import { compileLinear } from './linear-regexp.js';
import { readText } from './body.js';
import type { NetworkView } from '../engine/views.js';
import type { Logger } from '../log.js';
import type { NetworkRecord } from '../store/store.js';
import { eventRoutes } from './events-routes.js';
import { metricsRoutes } from './metrics-routes.js';
import { traceRoutes } from './trace-routes.js';
import { topologyRoutes } from './topology-routes.js';
import {
  ContainerCreate,
  ContainerExited,
  ContainerPid,
  NETWORK_LIST_FILTERS,
  NETWORK_PRUNE_FILTERS,
  NetworkConnect,
  NetworkCreate,
  NetworkDisconnect,
  parseFilters,
  type Filters,
} from './schemas.js';

/** The oldest API version accepted in a `/vX.Y/` path prefix (Docker 20.10's minimum). */
export const MIN_API_VERSION = '1.12';

/** Docker's predefined networks, which its filters and prune tell apart by name. */
const PREDEFINED = new Set([DEFAULT_NETWORK, 'host', 'none']);

export interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /**
   * A long-lived answer (an event stream): the headers go out at once, then `stream` owns the
   * response and writes to it until it ends it or the client goes away.
   */
  stream?: (res: http.ServerResponse) => void;
}

type Handler = (req: Request, params: string[]) => Promise<Reply> | Reply;
export type Route = [method: string, pattern: RegExp, handler: Handler];

export const ok = (body?: unknown, status = 200): Reply => ({ status, body });

function parseBody<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw invalid(`invalid request: ${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return result.data;
}

/* filters */

/**
 * Docker's `Args.Match`: an exact value, or an (unanchored) regular expression. Patterns run on
 * berth's linear-time matcher, never on JavaScript's backtracking RegExp: a client's pattern must
 * not be able to stall the event loop, which also serves DNS (see linear-regexp.ts).
 */
function patternMatcher(values: string[]): (source: string) => boolean {
  const patterns = values.flatMap((v) => {
    try {
      return [compileLinear(v)];
    } catch {
      return []; // As in Docker, a pattern that does not compile matches only itself, exactly.
    }
  });
  return (source) => values.includes(source) || patterns.some((p) => p.test(source));
}

/** Docker's `Args.MatchKVList`: every `key` or `key=value` must be among the labels. */
function matchesLabels(values: string[], labels: Record<string, string>): boolean {
  return values.every((v) => {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    return Object.hasOwn(labels, key) && (eq < 0 || labels[key] === v.slice(eq + 1));
  });
}

function booleanFilter(filters: Filters, key: string): boolean | undefined {
  const values = filters[key];
  if (!values?.length) return undefined;
  if (values.length > 1) throw invalid(`got more than one value for filter key "${key}"`);
  if (values[0] === 'true' || values[0] === '1') return true;
  if (values[0] === 'false' || values[0] === '0') return false;
  throw invalid(`invalid value for filter '${key}', must be "true" (or "1"), or "false" (or "0")`);
}

/** `GET /networks?filters=…`, as Docker's daemon/network/filter.go does it. */
export function filterNetworks(list: NetworkView[], filters: Filters): NetworkView[] {
  for (const t of filters.type ?? []) if (t !== 'builtin' && t !== 'custom') throw invalid(`invalid filter 'type=${t}'`);
  const dangling = booleanFilter(filters, 'dangling');
  const nameMatches = filters.name && patternMatcher(filters.name);
  const idMatches = filters.id && patternMatcher(filters.id);
  return list.filter((n) => {
    const predefined = PREDEFINED.has(n.Name);
    if (filters.driver && !filters.driver.includes(n.Driver)) return false;
    if (nameMatches && !nameMatches(n.Name)) return false;
    if (idMatches && !idMatches(n.Id)) return false;
    if (filters.label && !matchesLabels(filters.label, n.Labels)) return false;
    if (filters.scope && !filters.scope.includes(n.Scope)) return false;
    if (dangling !== undefined && dangling !== (!predefined && Object.keys(n.Containers).length === 0)) return false;
    if (filters.type && !filters.type.includes(predefined ? 'builtin' : 'custom')) return false;
    return true;
  });
}

const GO_DURATION_PART = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)/g;
const GO_DURATION = /^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+$/;
const GO_UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Docker's `until`: a Go duration before now ("24h", "1h30m"), a unix timestamp, or an RFC 3339 date. */
export function parseUntil(value: string, now = Date.now()): number {
  if (GO_DURATION.test(value)) {
    let ms = 0;
    for (const [, n, unit] of value.matchAll(GO_DURATION_PART)) ms += Number(n) * GO_UNIT_MS[unit!]!;
    return now - ms;
  }
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const parsed = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(parsed)) throw invalid(`failed to parse value as time or duration: "${value}"`);
  return parsed;
}

/**
 * `POST /networks/prune?filters=…`: which networks to keep. Docker prunes a network only if it
 * has every `label`, none of the `label!` labels, and was created before `until`.
 */
export function pruneKeeps(filters: Filters): (n: NetworkRecord) => boolean {
  const until = filters.until?.length ? Math.min(...filters.until.map((u) => parseUntil(u))) : undefined;
  return (n) => {
    if (until !== undefined && Date.parse(n.created) > until) return true;
    if (filters.label && !matchesLabels(filters.label, n.labels)) return true;
    if (filters['label!']?.length && matchesLabels(filters['label!'], n.labels)) return true;
    return false;
  };
}

/* routes */

const GOARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

function versionReply(): Reply {
  const details = {
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    Os: 'linux',
    Arch: GOARCH[process.arch] ?? process.arch,
    KernelVersion: os.release(),
    GitCommit: '',
    GoVersion: '',
    BuildTime: '',
    Experimental: 'false',
  };
  return ok({
    Platform: { Name: 'berth' },
    Components: [{ Name: 'Engine', Version: BERTH_VERSION, Details: details }],
    Version: BERTH_VERSION,
    ...details,
    Experimental: false,
  });
}

const PING_HEADERS = { 'Cache-Control': 'no-cache, no-store, must-revalidate', Pragma: 'no-cache' };
const truthy = (v: string | null) => v === '1' || v === 'true';

export function routes(engine: Engine): Route[] {
  return [
    // Seeing the network (issue 15): events, metrics, traces and the topology page's data.
    ...eventRoutes(engine),
    ...metricsRoutes(engine),
    ...traceRoutes(engine),
    ...topologyRoutes(engine),
    ['GET', /^\/_ping$/, () => ({ status: 200, body: 'OK', headers: PING_HEADERS })],
    ['HEAD', /^\/_ping$/, () => ({ status: 200, body: '', headers: PING_HEADERS })],
    ['GET', /^\/version$/, versionReply],

    /* networks: the Docker Engine API */
    [
      'GET',
      /^\/networks$/,
      (req) => {
        const filters = parseFilters(req.query.get('filters'), NETWORK_LIST_FILTERS);
        // `dangling` needs the endpoints; the listing itself carries none, as Docker's does.
        const full = engine.listNetworks().map((n) => engine.inspectNetwork(n.Id));
        return ok(filterNetworks(full, filters).map((n) => ({ ...n, Containers: {} })));
      },
    ],
    [
      'POST',
      /^\/networks\/create$/,
      async (req) => {
        const b = parseBody(NetworkCreate, req.body);
        // One config per family (the schema checked it): an IPv6 subnet is the one in colon notation.
        const configs = b.IPAM?.Config ?? [];
        const config = configs.find((c) => !c.Subnet?.includes(':'));
        const config6 = configs.find((c) => c.Subnet?.includes(':'));
        const net = await engine.createNetwork({
          name: b.Name,
          driver: b.Driver || undefined,
          subnet: config?.Subnet || undefined,
          gateway: config?.Gateway || undefined,
          ipRange: config?.IPRange || undefined,
          auxAddresses: config?.AuxiliaryAddresses ?? undefined,
          ipv6: b.EnableIPv6 ?? false,
          ...(b.EnableIPv4 === false && { ipv4: false }),
          subnet6: config6?.Subnet || undefined,
          gateway6: config6?.Gateway || undefined,
          ipRange6: config6?.IPRange || undefined,
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
        const keep = pruneKeeps(parseFilters(req.query.get('filters'), NETWORK_PRUNE_FILTERS));
        return ok({ NetworksDeleted: await engine.pruneNetworks(keep) });
      },
    ],
    [
      'GET',
      /^\/networks\/([^/]+)$/,
      (req, [ref]) => {
        const scope = req.query.get('scope');
        if (scope && scope !== 'local') throw notFound(`network ${ref} not found: berth networks have scope "local"`);
        return ok(engine.inspectNetwork(ref!));
      },
    ],
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
          ip6: b.EndpointConfig?.IPAMConfig?.IPv6Address || undefined,
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

    /* containers: berth's own */
    ['GET', /^\/containers\/json$/, (req) => ok(engine.listContainers(truthy(req.query.get('all'))))],
    [
      'POST',
      /^\/containers\/create$/,
      async (req) => {
        const body = parseBody(ContainerCreate, req.body);
        // berth's ?start=1 creates and starts in one request (detach=0: network only, the client spawns).
        if (truthy(req.query.get('start'))) {
          const started = await engine.runContainer(body, req.query.get('detach') !== '0');
          return ok({ Id: started.id, Warnings: [], argv: started.argv }, 201);
        }
        const c = await engine.createContainer(body);
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
        await engine.removeContainer(ref!, truthy(req.query.get('force')), truthy(req.query.get('settle')));
        return ok(undefined, 204);
      },
    ],
    ['POST', /^\/system\/reconcile$/, async () => ok(await engine.reconcile())],
    ['GET', /^\/system\/bgp$/, async () => {
      if (!engine.ctx.bgp) throw invalid('this daemon runs no BGP speaker: start it with --bgp-asn N (and --cluster-store) to advertise routed networks');
      return ok(await engine.ctx.bgp.status());
    }],
  ];
}

/* request handling */

const VERSION_PREFIX = /^\/v([0-9.]+)(?=\/)/;

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** Strips `/vX.Y` and refuses versions outside what berth speaks, with Docker's messages. */
export function routePath(pathname: string): string {
  const m = VERSION_PREFIX.exec(pathname);
  if (!m) return pathname;
  const version = m[1]!;
  if (compareVersions(version, API_VERSION) > 0) {
    throw invalid(`client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  if (compareVersions(version, MIN_API_VERSION) < 0) {
    throw invalid(`client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
  }
  return pathname.slice(m[0].length);
}

/** Reads a JSON body. Like Docker, a body must come as `application/json`; an empty one is no body. */
async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const text = (await readText(req)).trim();
  if (!text) return undefined;
  const type = req.headers['content-type'] ?? '';
  if (type.split(';')[0]!.trim().toLowerCase() !== 'application/json') {
    throw invalid(`unsupported Content-Type header (${type}): must be 'application/json'`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(`request body is not valid JSON: ${messageOf(err)}`);
  }
}

function decodeParam(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw invalid(`malformed percent-encoding in ${p}`);
  }
}

async function answer(table: Route[], log: Logger, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const started = performance.now();
  const method = req.method ?? 'GET';
  let reply: Reply;
  try {
    let url: URL;
    try {
      url = new URL(`http://berth${req.url ?? '/'}`);
    } catch {
      throw notFound('page not found');
    }
    const route = routePath(url.pathname);
    const hit = table.find(([m, re]) => m === method && re.test(route));
    // Docker answers an unknown path and a known path with the wrong method alike.
    if (!hit) throw notFound('page not found');
    const params = (hit[1].exec(route) ?? []).slice(1).map(decodeParam);
    const body = method === 'POST' ? await readBody(req) : undefined;
    reply = await hit[2]({ method, path: route, query: url.searchParams, body }, params);
  } catch (err) {
    const status = isBerthError(err) ? err.httpStatus : 500;
    if (status === 500) log.error('request failed', { method, path: req.url, error: messageOf(err) });
    reply = { status, body: { message: messageOf(err) } };
  }
  const headers: Record<string, string> = {
    'Api-Version': API_VERSION,
    'Docker-Experimental': 'false',
    Ostype: 'linux',
    Server: `berth/${BERTH_VERSION} (linux)`,
    ...reply.headers,
  };
  if (reply.stream) {
    res.writeHead(reply.status, { 'Content-Type': 'application/json', ...headers });
    res.flushHeaders();
    reply.stream(res);
    log.debug('api', { method, path: req.url, status: reply.status, stream: true });
    return;
  }
  let text = '';
  if (reply.body !== undefined && reply.status !== 204) {
    text = typeof reply.body === 'string' ? reply.body : `${JSON.stringify(reply.body)}\n`;
    headers['Content-Type'] = typeof reply.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
  }
  if (reply.status !== 204) headers['Content-Length'] = String(Buffer.byteLength(text));
  // A HEAD answer never carries a body: the docker CLI reuses the connection after HEAD /_ping.
  res.writeHead(reply.status, headers).end(method === 'HEAD' ? undefined : text);
  log.debug('api', { method, path: req.url, status: reply.status, ms: +(performance.now() - started).toFixed(2) });
}

export function createHandler(table: Route[], log: Logger): http.RequestListener {
  return (req, res) => {
    // Nothing a client sends may take the daemon down with an unhandled rejection.
    answer(table, log, req, res).catch((err) => {
      log.error('could not answer a request', { method: req.method, path: req.url, error: messageOf(err) });
      res.destroy();
    });
  };
}

/**
 * Makes sure nothing else answers on `socketPath` before taking it over: a stale socket left by a
 * crashed daemon is removed, a live one (another daemon) or a file that is not a socket is not.
 */
export async function claimSocketPath(socketPath: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw invalid(`${socketPath} exists and is not a socket: choose another --host, or remove it if it is stale`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw conflict(`another daemon is already listening on unix://${socketPath}: stop it first, or give this one its own --host`);
  fs.rmSync(socketPath, { force: true });
}

export interface ServerOptions {
  socketPath: string;
  /** Group that may use the socket (mode 0660); root's group when unset. */
  group?: number;
  log: Logger;
}

export async function startServer(engine: Engine, opts: ServerOptions): Promise<http.Server> {
  if (opts.group !== undefined && !(Number.isInteger(opts.group) && opts.group >= 0)) {
    throw invalid(`invalid --group ${opts.group}: give the numeric id of the group allowed to use the socket (getent group NAME shows it)`);
  }
  const docker = createHandler(routes(engine), opts.log);
  // The CNI shim's requests carry the runtime's CNI_* variables as headers and the raw config.
  const server = http.createServer((req, res) => (req.method === 'POST' && req.url === '/cni' ? serveCni(engine, req, res, opts.log) : docker(req, res)));
  fs.mkdirSync(path.dirname(opts.socketPath), { recursive: true });
  await claimSocketPath(opts.socketPath);
  // Listen on a private name and rename once mode and owner are set: the socket never appears
  // under its real name with looser permissions, and once it appears the daemon answers.
  const staging = `${opts.socketPath}.${process.pid}.tmp`;
  fs.rmSync(staging, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(staging, () => resolve());
  });
  try {
    fs.chmodSync(staging, 0o660);
    if (opts.group !== undefined) fs.chownSync(staging, 0, opts.group);
    fs.renameSync(staging, opts.socketPath);
  } catch (err) {
    server.close();
    fs.rmSync(staging, { force: true });
    throw new BerthError('internal', `could not set up the API socket ${opts.socketPath}: ${messageOf(err)}`, { cause: err });
  }
  return server;
}
