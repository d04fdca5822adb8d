/**
 * berth's embedded DNS resolver: one UDP socket and one TCP listener per user-defined network (on
 * its gateway address, like aardvark-dns), answering container names from a `DnsDirectory` scoped
 * to that network and forwarding everything else upstream.
 *
 * Every query is handled on its own: answers about containers are computed synchronously and sent
 * at once, whatever forwards are pending, so a dead upstream never delays them. Forwards in flight
 * are capped; past the cap the answer is REFUSED at once rather than queued, so a dead upstream
 * cannot make memory grow.
 *
 * When there is nowhere to forward (internal networks, or no upstream configured) the answer is
 * SERVFAIL, which is what Docker's resolver answers when it has no external server.
 *
 * IPv4 UDP sockets are served by a batch thread (udp-batcher.ts) when the directory is a
 * MemoryDirectory it can replicate: it reads queries a batch per recvmmsg and answers container
 * names itself, a batch per sendmmsg, and passes everything else here, where it is answered as
 * any query and sent back through the same socket. TCP, IPv6 and other directories stay on the
 * event loop (dgram).
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { setMaxListeners } from 'node:events';
import { createServer, isIP, type Server, type Socket as TcpSocket } from 'node:net';
import { BerthError, conflict, invalid, messageOf } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { MemoryDirectory, type DnsDirectory, type Upstream } from './directory.js';
import { bind, close as closeFd, socket, AF_INET, SOCK_CLOEXEC, SOCK_DGRAM } from '../kernel/libc.js';
import { Batch, sendBatch, sendto, sockaddrIn, socketName } from '../kernel/tun-io.js';
import { formatIpv4, parseIpv4 } from '../ipam/ipv4.js';
import { localAnswer, outcomeOf, type DnsOutcome } from './local-answer.js';
import { UdpBatcher } from './udp-batcher.js';
import type { BatchTally, PassedQuery } from './udp-batch-protocol.js';
import { AnswerCache } from './answer-cache.js';
import { forward, type Transport } from './forwarder.js';
import { UpstreamPool } from './upstream-pool.js';
import { FrameReader, MAX_TCP_BYTES, MAX_UDP_BYTES, RCODE, buildReply, decodeQuery, frame, truncateForwarded, type LocalRecord, type Query, type Rcode } from './packet.js';

export type { DnsOutcome } from './local-answer.js';

export interface DnsResolverOptions {
  directory: DnsDirectory;
  /** Told what became of each query (the engine's metrics count them). */
  onOutcome?: (outcome: DnsOutcome) => void;
  /** Per upstream, before failing over. */
  forwardTimeoutMs?: number;
  /** Forwards in flight across all networks; beyond it queries are REFUSED. */
  maxInFlight?: number;
  /** TCP connections with no traffic for this long are closed. */
  tcpIdleMs?: number;
  /** TCP connections per network; more are closed on accept. */
  maxTcpConnections?: number;
  /** Forwarded answers kept (by their TTLs); 0 turns the cache off. */
  cacheEntries?: number;
  /** Reuse a pool of connected UDP sockets per upstream instead of a socket per forward. */
  pooledUpstreams?: boolean;
  /** Serve IPv4 UDP from the batch thread (default, with a MemoryDirectory); false keeps it on the event loop. */
  batchedUdp?: boolean;
  log?: Logger;
}

export interface DnsCounters {
  /** Every packet received, well-formed or not. */
  queries: number;
  answeredLocally: number;
  /** Queries sent upstream (counted once, however many upstreams were tried). */
  forwarded: number;
  /** SERVFAIL answered because every upstream failed or there was none. */
  failures: number;
  /** Packets answered FORMERR/NOTIMP or dropped. */
  malformed: number;
  /** Queries REFUSED because too many forwards were in flight. */
  refused: number;
  /** UDP answers cut to the client's size, TC set. */
  truncated: number;
  /** Forwarded names answered from the cache. */
  cacheHits: number;
}


export interface ListenResult {
  udpPort: number;
  tcpPort: number;
}

const DEFAULTS = { forwardTimeoutMs: 2000, maxInFlight: 1024, tcpIdleMs: 10_000, maxTcpConnections: 256 };
/** Upstreams tried per query, like Docker and glibc. */
const MAX_UPSTREAMS = 3;
/** Replies sent in one sendmmsg: as many as the batch thread passes in one message. */
const REPLY_BATCH = 64;
/** A TCP client that stops reading its answers is cut off once this much is queued for it. */
const MAX_TCP_BACKLOG_BYTES = 1 << 20;

interface Listener {
  /** Its key in the resolver's listeners (and the batch thread's name for its socket). */
  id: string;
  networkId: string;
  address: string;
  /**
   * The one container a listener inside its namespace serves: its queries come from 127.0.0.1 there,
   * so its own address stands in for the source (per-container upstreams are keyed by it).
   */
  client?: string;
  /** Further networks whose names it answers, after `networkId`'s (a container's other networks). */
  alsoNetworks?: string[];
  /** The UDP socket: on the event loop, or a descriptor the batch thread owns. */
  udp: { dgram: UdpSocket } | { fd: number };
  /** The batch thread serving the descriptor, once handed over; `handing` while that is under way. */
  handedTo?: UdpBatcher;
  handing?: Promise<void>;
  /** The descriptor has been closed (or given back to be closed): never again. */
  udpReleased?: boolean;
  tcp: Server;
  udpPort: number;
  tcpPort: number;
  connections: Set<TcpSocket>;
  closed: boolean;
}

type Reply = Buffer | undefined;

/** Batch threads started anew after a fault, at most, within RESTART_WINDOW_MS. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

/** Upstreams a query may go to, and the cache scope of their answers. */
interface Route {
  upstreams: readonly Upstream[];
  scope: string;
}

export class DnsResolver {
  private readonly directory: DnsDirectory;
  private readonly settings: typeof DEFAULTS;
  private readonly log: Logger;
  private readonly listeners = new Map<string, Listener>();
  /** Networks whose listen() is still binding, so a second call for one cannot race it. */
  private readonly starting = new Set<string>();
  private readonly aborter = new AbortController();
  private readonly stats: DnsCounters = { queries: 0, answeredLocally: 0, forwarded: 0, failures: 0, malformed: 0, refused: 0, truncated: 0, cacheHits: 0 };
  private readonly onOutcome: (outcome: DnsOutcome) => void;
  private readonly cache: AnswerCache | undefined;
  private readonly pool: UpstreamPool | undefined;
  /** Routes by the directory's upstream list; replaced whenever our own listeners change. */
  private routes = new WeakMap<readonly Upstream[], Route>();
  private inFlight = 0;
  private closed = false;
  /** The batch thread, started with the first UDP socket it can serve; undefined: none (dgram). */
  private batcher: Promise<UdpBatcher | undefined> | undefined;
  private readonly batchedUdp: boolean;
  /** The batch thread once it runs (batcher settled). */
  private batcherNow: UdpBatcher | undefined;
  /** What batch threads lost since counted (their shared counters), so the totals never go back. */
  private lostCounts: Partial<Record<keyof DnsCounters, number>> = {};
  /** When the batch thread was restarted, within the last RESTART_WINDOW_MS. */
  private restarts: number[] = [];
  /** Clients (listener id, address) whose cache scope the batch thread has been told. */
  private readonly taught = new Set<string>();
  private readonly cacheEntries: number | undefined;
  /** Replies to the batch thread's passed queries that are ready at once, sent together. */
  private replyBatch: Batch | undefined;

  constructor(options: DnsResolverOptions) {
    this.directory = options.directory;
    this.log = options.log ?? silentLogger;
    this.settings = {
      forwardTimeoutMs: options.forwardTimeoutMs ?? DEFAULTS.forwardTimeoutMs,
      maxInFlight: options.maxInFlight ?? DEFAULTS.maxInFlight,
      tcpIdleMs: options.tcpIdleMs ?? DEFAULTS.tcpIdleMs,
      maxTcpConnections: options.maxTcpConnections ?? DEFAULTS.maxTcpConnections,
    };
    this.cache = options.cacheEntries === 0 ? undefined : new AnswerCache({ maxEntries: options.cacheEntries });
    this.pool = options.pooledUpstreams === false ? undefined : new UpstreamPool();
    // Every forward in flight listens for close(); that many listeners is expected, not a leak.
    setMaxListeners(this.settings.maxInFlight + 1, this.aborter.signal);
    this.onOutcome = options.onOutcome ?? (() => undefined);
    this.batchedUdp = options.batchedUdp !== false;
    this.cacheEntries = options.cacheEntries;
  }

  /** Queries by outcome: answered from records, forwarded (or cached) answers, upstream NXDOMAIN, REFUSED, SERVFAIL, malformed. */

  /** A snapshot of the counters, for metrics. */
  get counters(): Readonly<DnsCounters> {
    const counters = { ...this.stats };
    const thread = this.batcherNow?.counters();
    if (thread) for (const [name, n] of Object.entries(thread)) counters[name as keyof typeof thread] += n;
    for (const [name, n] of Object.entries(this.lostCounts)) counters[name as keyof DnsCounters] += n;
    return counters;
  }

  /** Serves `networkId` on `address`; port 0 picks one free port for both UDP and TCP. */
  async listen(networkId: string, address: string, port: number): Promise<ListenResult> {
    if (this.closed) throw new BerthError('unavailable', 'DNS resolver is closed');
    if (isIP(address) === 0) throw invalid(`DNS listen address "${address}" is not an IP address`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalid(`DNS listen port ${port} is out of range 0-65535`);
    if (this.listeners.has(networkId) || this.starting.has(networkId)) throw conflict(`DNS resolver already listening for network ${networkId}`);
    this.starting.add(networkId);
    try {
      const batcher = isIP(address) === 4 ? await this.batcherFor() : undefined;
      const listener = await this.open(networkId, address, port, batcher);
      if (this.closed) {
        await this.closeListener(listener);
        throw new BerthError('unavailable', 'DNS resolver closed while it was starting to listen');
      }
      this.listeners.set(networkId, listener);
      this.routesChanged();
      return { udpPort: listener.udpPort, tcpPort: listener.tcpPort };
    } finally {
      this.starting.delete(networkId);
    }
  }

  /**
   * Serves one container (`client`, its address on the first of `networkIds`) on sockets already
   * bound inside its namespace, given as file descriptors: names of each of `networkIds`, in order,
   * and forwards as on the first. `listenerId` names the listener for unlisten().
   */
  async adopt(listenerId: string, networkIds: string[], fds: { udp: number; tcp: number }, client: string): Promise<void> {
    const [networkId, ...alsoNetworks] = networkIds;
    if (networkId === undefined) throw invalid('adopt needs at least one network');
    if (this.closed) throw new BerthError('unavailable', 'DNS resolver is closed');
    if (this.listeners.has(listenerId) || this.starting.has(listenerId)) throw conflict(`DNS resolver already listening as ${listenerId}`);
    this.starting.add(listenerId);
    try {
      // The batch thread serves IPv4 sockets only (socketName knows no other).
      const batcher = socketName(fds.udp) ? await this.batcherFor() : undefined;
      const udp = await boundUdp({ fd: fds.udp }, batcher !== undefined);
      const tcp = await listenTcp({ fd: fds.tcp }, this.settings.maxTcpConnections).catch((err: unknown) => {
        udp.close();
        throw err;
      });
      const listener = this.listenerFor(listenerId, networkId, udp.address, udp.socket, udp.port, tcp);
      listener.client = client;
      listener.alsoNetworks = alsoNetworks;
      if (batcher) await this.handOver(batcher, listener);
      this.listeners.set(listenerId, listener);
      this.routesChanged();
    } finally {
      this.starting.delete(listenerId);
    }
  }

  /** Stops serving `networkId` (or the listener named so by adopt()); answers still being forwarded for it are dropped. */
  async unlisten(networkId: string): Promise<void> {
    const listener = this.listeners.get(networkId);
    if (!listener) return;
    this.listeners.delete(networkId);
    this.routesChanged();
    await this.closeListener(listener);
  }

  /** Stops everything: every listener, every connection and every forward in flight. */
  async close(): Promise<void> {
    this.closed = true;
    this.aborter.abort();
    this.pool?.close();
    await Promise.all([...this.listeners.keys()].map((id) => this.unlisten(id)));
    // Stopped, its counters stay readable (shared memory): counters keeps counting them.
    await (await this.batcher?.catch(() => undefined))?.stop();
  }

  /** Our own sockets changed, so may every client's route: forget them, here and in the batch thread. */
  private routesChanged(): void {
    this.routes = new WeakMap();
    this.taught.clear();
    this.batcherNow?.forgetScopes();
  }

  /** The batch thread, started on first use; undefined when UDP stays on the event loop. */
  private batcherFor(): Promise<UdpBatcher | undefined> {
    if (!this.batchedUdp || !(this.directory instanceof MemoryDirectory)) return Promise.resolve(undefined);
    this.batcher ??= UdpBatcher.start(this.directory, {
      onTally: (tally) => this.count(tally),
      onPassed: (queries) => this.onPassed(queries),
      onLost: (reason) => void this.batcherLost(reason),
    }, this.cache ? this.cacheEntries : 0).then((batcher) => (this.batcherNow = batcher)).catch((err: unknown) => {
      this.log.warn('dns batch thread did not start: UDP is served on the event loop', { error: messageOf(err) });
      return undefined;
    });
    return this.batcher;
  }

  /** Gives the batch thread the listener's UDP descriptor; on failure closes the listener whole. */
  private async handOver(batcher: UdpBatcher, listener: Listener): Promise<void> {
    if (!('fd' in listener.udp)) return;
    const { fd } = listener.udp;
    listener.handing = batcher.add({ socket: listener.id, fd, networkId: listener.networkId, alsoNetworks: listener.alsoNetworks ?? [], ...(listener.client !== undefined && { client: listener.client }) });
    try {
      await listener.handing;
      listener.handedTo = batcher;
    } catch (err) {
      // The thread may have taken the descriptor before it failed: take it back before closing it.
      listener.udpReleased = true;
      await batcher.remove(listener.id).catch(() => closeFd(fd));
      listener.closed = true;
      await new Promise<void>((resolve) => listener.tcp.close(() => resolve()));
      throw err;
    } finally {
      listener.handing = undefined;
    }
  }

  /**
   * The batch thread ended unasked (a fault in its own code): its sockets are still open, so a new
   * thread takes them over, with a replica of the directory as it is now. At most MAX_RESTARTS in
   * RESTART_WINDOW_MS; past that (a thread that fails at once every time) UDP stays unanswered,
   * as does it when no thread can start, and the descriptors are closed with their listeners.
   */
  private async batcherLost(reason: string): Promise<void> {
    const lost = this.batcherNow;
    if (!lost) return;
    for (const [name, n] of Object.entries(lost.counters())) this.lostCounts[name as keyof DnsCounters] = (this.lostCounts[name as keyof DnsCounters] ?? 0) + n;
    this.batcher = undefined;
    this.batcherNow = undefined;
    this.taught.clear();
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (this.closed) return;
    if (this.restarts.length >= MAX_RESTARTS) {
      this.log.error('dns batch thread lost again: its UDP sockets no longer answer until the daemon restarts', { reason, restartsInWindow: this.restarts.length });
      return;
    }
    this.restarts.push(now);
    this.log.error('dns batch thread lost: a new one takes over its sockets', { reason });
    const batcher = await this.batcherFor();
    if (!batcher) return;
    for (const listener of [...this.listeners.values()]) {
      if (listener.closed || listener.udpReleased || listener.handedTo !== lost) continue;
      try {
        await this.handOver(batcher, listener);
      } catch (err) {
        // handOver closed it whole: it no longer listens.
        this.listeners.delete(listener.id);
        this.log.error('dns listener lost with the batch thread', { listener: listener.id, error: messageOf(err) });
      }
    }
    this.routesChanged();
  }

  /** Tells onOutcome what the batch thread answered (its counters are read from shared memory). */
  private count(tally: BatchTally): void {
    for (const [outcome, n] of Object.entries(tally.outcomes) as [DnsOutcome, number][]) for (let i = 0; i < n; i++) this.onOutcome(outcome);
  }

  /**
   * Queries the batch thread left to us, answered here and sent back through the socket they came
   * on: those answered at once (cache hits, errors) together in one sendmmsg, forwards when they
   * complete.
   */
  private onPassed(queries: PassedQuery[]): void {
    const batch = (this.replyBatch ??= new Batch(REPLY_BATCH, MAX_UDP_BYTES));
    let n = 0;
    let fd = -1;
    const flush = (): void => {
      if (n > 0) sendBatch(fd, batch, n);
      n = 0;
    };
    for (const q of queries) {
      const listener = this.listeners.get(q.socket);
      if (!listener || listener.closed || !('fd' in listener.udp)) continue;
      const msg = Buffer.from(q.data.buffer, q.data.byteOffset, q.data.byteLength);
      const answer = this.answer(listener, msg, 'udp', listener.client ?? formatIpv4(q.ip));
      if (answer instanceof Promise) {
        const { fd: socketFd } = listener.udp;
        answer.then(
          // Closed: the batch thread has closed (or is closing) the descriptor.
          (reply) => reply && !listener.closed && sendto(socketFd, reply, sockaddrIn(q.ip, q.port)),
          (err: unknown) => this.log.warn('dns query failed', { error: messageOf(err) }),
        );
        continue;
      }
      if (!answer) continue;
      if (listener.udp.fd !== fd) flush();
      fd = listener.udp.fd;
      answer.copy(batch.slots[n]!);
      batch.setLength(n, answer.length);
      batch.setDestination(n, sockaddrIn(q.ip, q.port));
      if (++n === batch.count) flush();
    }
    flush();
  }

  private async closeListener(listener: Listener): Promise<void> {
    listener.closed = true;
    for (const socket of listener.connections) socket.destroy();
    const udp = listener.udp;
    const closeUdp = 'dgram' in udp ? new Promise<void>((resolve) => udp.dgram.close(() => resolve())) : this.releaseUdp(listener, udp.fd);
    await Promise.all([closeUdp, new Promise<void>((resolve) => listener.tcp.close(() => resolve()))]);
  }

  /** Closes a batched listener's descriptor once: through the thread that serves it, else here. */
  private async releaseUdp(listener: Listener, fd: number): Promise<void> {
    await listener.handing?.catch(() => undefined);
    if (listener.udpReleased) return;
    listener.udpReleased = true;
    const thread = listener.handedTo;
    if (thread?.running) await thread.remove(listener.id).catch((err: unknown) => this.log.warn('dns udp socket not closed', { error: messageOf(err) }));
    else closeFd(fd);
  }

  /** Binds UDP and TCP for `networkId`; with `batcher`, its UDP descriptor goes to the batch thread. */
  private async open(networkId: string, address: string, port: number, batcher?: UdpBatcher): Promise<Listener> {
    const fail = (proto: string, at: number) => (err: unknown) => {
      throw new BerthError('unavailable', `cannot listen for DNS on ${address}:${at}/${proto} for network ${networkId}: ${messageOf(err)}`, { cause: err });
    };
    // Port 0: one free port for both UDP and TCP (the firewall redirects :53 to a single port).
    for (let attempt = 1; ; attempt++) {
      const udp = await boundUdp({ address, port }, batcher !== undefined).catch(fail('udp', port));
      let tcp: Server;
      try {
        tcp = await listenTcp({ address, port: udp.port }, this.settings.maxTcpConnections);
      } catch (err) {
        udp.close();
        if (port === 0 && attempt < 20 && (err as { code?: string }).code === 'EADDRINUSE') continue;
        return fail('tcp', udp.port)(err);
      }
      const listener = this.listenerFor(networkId, networkId, address, udp.socket, udp.port, tcp);
      if (batcher) await this.handOver(batcher, listener);
      return listener;
    }
  }

  private listenerFor(id: string, networkId: string, address: string, udp: Listener['udp'], udpPort: number, tcp: Server): Listener {
    const listener: Listener = {
      id,
      networkId,
      address,
      udp,
      tcp,
      udpPort,
      tcpPort: tcpPortOf(tcp),
      connections: new Set(),
      closed: false,
    };
    if ('dgram' in udp) {
      udp.dgram.on('message', (msg, from) => this.onDatagram(listener, udp.dgram, msg, from));
      udp.dgram.on('error', (err) => this.log.warn('dns udp socket error', { network: networkId, error: err.message }));
    }
    tcp.on('connection', (socket) => this.onConnection(listener, socket));
    tcp.on('error', (err) => this.log.warn('dns tcp listener error', { network: networkId, error: err.message }));
    return listener;
  }

  /** UDP answers go out as soon as they are ready; no callback, as nothing is done on failure (the client retries). */
  private onDatagram(listener: Listener, udp: UdpSocket, msg: Buffer, from: RemoteInfo): void {
    const send = (answer: Reply): void => {
      if (!answer || listener.closed) return;
      try {
        udp.send(answer, from.port, from.address);
      } catch (err) {
        this.log.debug('dns udp send failed', { network: listener.networkId, error: messageOf(err) });
      }
    };
    const answer = this.answer(listener, msg, 'udp', listener.client ?? from.address);
    if (answer instanceof Promise) answer.then(send, (err: unknown) => this.log.warn('dns query failed', { error: messageOf(err) }));
    else send(answer);
  }

  private onConnection(listener: Listener, socket: TcpSocket): void {
    listener.connections.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(this.settings.tcpIdleMs, () => socket.destroy());
    socket.on('error', () => socket.destroy()); // resets by clients are routine
    socket.on('close', () => listener.connections.delete(socket));
    const reader = new FrameReader();
    const clientIp = listener.client ?? unmapped(socket.remoteAddress ?? '');
    socket.on('data', (chunk) => {
      for (const msg of reader.push(chunk)) {
        this.reply(listener, msg, 'tcp', clientIp, (answer) => {
          if (socket.destroyed) return;
          if (socket.writableLength > MAX_TCP_BACKLOG_BYTES) socket.destroy();
          else socket.write(frame(answer));
        });
      }
    });
  }

  /** Answers one packet through `send`, now or when its forward completes. Never throws. */
  private reply(listener: Listener, msg: Buffer, transport: Transport, clientIp: string, send: (answer: Buffer) => void): void {
    const deliver = (answer: Reply): void => {
      if (!answer) return;
      try {
        send(answer);
      } catch (err) {
        this.log.debug('dns reply not sent', { network: listener.networkId, error: messageOf(err) });
      }
    };
    const answer = this.answer(listener, msg, transport, clientIp);
    if (answer instanceof Promise) answer.then(deliver, (err: unknown) => this.log.warn('dns query failed', { error: messageOf(err) }));
    else deliver(answer);
  }

  /** Counts a query's outcome by its answer's rcode (no answer: a packet dropped as malformed). */
  private tally(reply: Reply, answered: 'local' | 'forwarded'): Reply {
    this.onOutcome(outcomeOf(reply, answered));
    return reply;
  }

  /**
   * The answer to one packet, counted: at once when it comes from records or the cache, a promise
   * only when it must go upstream (so the common cases never wait for a microtask).
   */
  private answer(listener: Listener, msg: Buffer, transport: Transport, clientIp: string): Reply | Promise<Reply> {
    this.stats.queries++;
    const decoded = decodeQuery(msg, transport === 'udp' ? MAX_UDP_BYTES : MAX_TCP_BYTES);
    if (decoded.kind !== 'query') {
      this.stats.malformed++;
      return this.tally(decoded.kind === 'error' ? decoded.reply : undefined, 'local');
    }
    const query = decoded.query;
    const limit = transport === 'udp' ? query.udpLimit : MAX_TCP_BYTES;
    try {
      const records = localAnswer(this.directory, listener, query, clientIp);
      if (records) {
        this.stats.answeredLocally++;
        return this.tally(this.build(query, RCODE.NOERROR, records, limit), 'local');
      }
      return this.forwardQuery(listener, query, transport, clientIp);
    } catch (err) {
      this.log.warn('dns local answer failed', { network: listener.networkId, name: query.name, error: messageOf(err) });
      this.stats.failures++;
      return this.tally(this.build(query, RCODE.SERVFAIL, [], limit), 'local');
    }
  }

  /** A cached answer at once; otherwise a forward upstream, refused past the cap on forwards in flight. */
  private forwardQuery(listener: Listener, query: Query, transport: Transport, clientIp: string): Reply | Promise<Reply> {
    const limit = transport === 'udp' ? query.udpLimit : MAX_TCP_BYTES;
    const route = this.routeFor(this.directory.upstreams(listener.networkId, clientIp));
    if (route.upstreams.length === 0) {
      this.stats.failures++;
      return this.tally(this.build(query, RCODE.SERVFAIL, [], limit), 'forwarded');
    }
    const cached = this.cache?.get(route.scope, query);
    if (cached) {
      this.stats.cacheHits++;
      this.teachScope(listener, clientIp, route.scope);
      return this.tally(this.fit(cached, query, limit), 'forwarded');
    }
    if (this.inFlight >= this.settings.maxInFlight) {
      this.stats.refused++;
      return this.tally(this.build(query, RCODE.REFUSED, [], limit), 'forwarded');
    }
    return this.forwardUpstream(listener, clientIp, query, route, transport, limit).then((reply) => this.tally(reply, 'forwarded'));
  }

  /**
   * Tells the batch thread which cache scope a client of a batched socket forwards in (once per
   * client until routes change), and the answer just cached, so it answers the repeats itself.
   */
  private teachScope(listener: Listener, clientIp: string, scope: string, query?: Query, answer?: Buffer): void {
    if (!this.batcherNow || !('fd' in listener.udp) || !this.cache) return;
    const key = `${listener.id}\n${clientIp}`;
    if (!answer && this.taught.has(key)) return;
    this.taught.add(key);
    this.batcherNow.teach({ socket: listener.id, clientIp, scope, ...(query && answer && { query: query.raw, answer }) });
  }

  private async forwardUpstream(listener: Listener, clientIp: string, query: Query, route: Route, transport: Transport, limit: number): Promise<Reply> {
    this.inFlight++;
    this.stats.forwarded++;
    let answer: Buffer | undefined;
    try {
      answer = await forward(query, route.upstreams, transport, { timeoutMs: this.settings.forwardTimeoutMs, signal: this.aborter.signal, pool: this.pool });
    } finally {
      this.inFlight--;
    }
    if (!answer) {
      this.stats.failures++;
      return this.build(query, RCODE.SERVFAIL, [], limit);
    }
    this.cache?.put(route.scope, query, answer);
    this.teachScope(listener, clientIp, route.scope, query, answer);
    return this.fit(answer, query, limit);
  }

  /** A forwarded answer as the client can take it: whole, or cut to header and question with TC set. */
  private fit(answer: Buffer, query: Query, limit: number): Buffer {
    if (answer.length <= limit) return answer;
    this.stats.truncated++;
    return truncateForwarded(answer, query);
  }

  /**
   * Where a client's queries go: at most three upstreams, never one of our own sockets (a host
   * resolv.conf naming the gateway must not make queries loop), and the cache scope they share.
   * Remembered per upstream list (the directory hands out the same frozen list until it changes),
   * so the common query does no filtering or string building.
   */
  private routeFor(upstreams: readonly Upstream[]): Route {
    let route = this.routes.get(upstreams);
    if (!route) {
      const own = new Set([...this.listeners.values()].flatMap((l) => [`${l.address}#${l.udpPort}`, `${l.address}#${l.tcpPort}`]));
      const usable = upstreams.filter((u) => !own.has(`${u.address}#${u.port}`)).slice(0, MAX_UPSTREAMS);
      // Answers are shared only between clients that would have asked the same upstreams.
      route = { upstreams: usable, scope: usable.map((u) => `${u.address}#${u.port}`).join(',') };
      this.routes.set(upstreams, route);
    }
    return route;
  }

  private build(query: Query, rcode: Rcode, records: readonly LocalRecord[], limit: number): Buffer {
    const { bytes, truncated } = buildReply(query, rcode, records, limit);
    if (truncated) this.stats.truncated++;
    return bytes;
  }
}

/** Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; the directory knows them as a.b.c.d. */
function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/** Where a socket binds: an address and port, or a descriptor already bound (adopt()). */
type BindTarget = { address: string; port: number } | { fd: number };

/** A listener's UDP socket once bound: on the event loop (dgram), or a descriptor for the batch thread. */
interface BoundUdp {
  socket: Listener['udp'];
  address: string;
  port: number;
  close(): void;
}

/** Binds (or adopts) a listener's UDP socket; `batched`: as a bare IPv4 descriptor for the batch thread. */
async function boundUdp(target: BindTarget, batched: boolean): Promise<BoundUdp> {
  if (batched) {
    const fd = 'fd' in target ? target.fd : bindUdpFd(target.address, target.port);
    const name = socketName(fd)!;
    return { socket: { fd }, address: formatIpv4(name.ip), port: name.port, close: () => closeFd(fd) };
  }
  const udp = await bindUdp(target);
  return { socket: { dgram: udp }, address: udp.address().address, port: udp.address().port, close: () => udp.close() };
}

/** A bound IPv4 UDP socket's descriptor, for the batch thread (no SO_REUSEADDR: exclusive, as dgram's). */
function bindUdpFd(address: string, port: number): number {
  const fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  try {
    bind(fd, sockaddrIn(parseIpv4(address), port), `bind ${address}:${port}/udp`);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  return fd;
}

function bindUdp(target: BindTarget): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('address' in target && isIP(target.address) === 6 ? 'udp6' : 'udp4');
    const fail = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', fail);
    socket.bind('fd' in target ? { fd: target.fd } : { address: target.address, port: target.port, exclusive: true }, () => {
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

function listenTcp(target: BindTarget, maxConnections: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.maxConnections = maxConnections;
    server.once('error', reject);
    server.listen('fd' in target ? { fd: target.fd } : { host: target.address, port: target.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function tcpPortOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new BerthError('internal', 'DNS TCP listener has no port');
  return address.port;
}
