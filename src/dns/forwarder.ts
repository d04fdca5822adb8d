/**
 * Sends a client's query to upstream resolvers in order and returns the first usable answer.
 * Timeouts, SERVFAIL, REFUSED and socket errors fail over to the next upstream; any other answer
 * (NXDOMAIN included) is final.
 *
 * UDP goes through the resolver's pool of connected sockets (upstream-pool.ts: random ports that
 * keep changing, random ids, the client's id restored) when it has one; otherwise each UDP forward
 * gets a fresh ephemeral, connected socket and the query goes out unchanged. TCP opens a
 * connection per forward.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIPv6, type Socket as TcpSocket } from 'node:net';
import type { Upstream } from './directory.js';
import { FrameReader, RCODE, answersQuery, frame, isTruncated, rcodeOf, type Query } from './packet.js';
import type { UpstreamPool } from './upstream-pool.js';

export type Transport = 'udp' | 'tcp';

export interface ForwardSettings {
  /** How long to wait for each upstream (and again for a TCP retry after a truncated answer). */
  timeoutMs: number;
  /** Aborts every exchange at once, when the resolver closes. */
  signal: AbortSignal;
  /** Pooled UDP sockets to reuse; without it each UDP forward opens its own. */
  pool?: UpstreamPool;
}

/** The first usable answer from `upstreams`, tried in order, or undefined when all failed. */
export async function forward(query: Query, upstreams: readonly Upstream[], transport: Transport, settings: ForwardSettings): Promise<Buffer | undefined> {
  for (const upstream of upstreams) {
    if (settings.signal.aborted) return undefined;
    const answer = await ask(query, upstream, transport, settings);
    if (answer && !isFailure(answer)) return answer;
  }
  return undefined;
}

function isFailure(answer: Buffer): boolean {
  const rcode = rcodeOf(answer);
  return rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED;
}

/** A client on TCP wants the whole answer, so its query goes upstream on TCP too. */
async function ask(query: Query, upstream: Upstream, transport: Transport, settings: ForwardSettings): Promise<Buffer | undefined> {
  if (transport === 'tcp') return exchangeTcp(query, upstream, settings);
  const answer = settings.pool ? await settings.pool.exchange(query, upstream, settings.timeoutMs, settings.signal) : await exchangeUdp(query, upstream, settings);
  if (!answer || !isTruncated(answer)) return answer;
  // If TCP fails, the truncated answer still tells the client to retry on its own.
  return (await exchangeTcp(query, upstream, settings)) ?? answer;
}

/** Resolves once with an answer or undefined, then releases the socket, timer and abort listener. */
function exchange<S>(settings: ForwardSettings, open: (finish: (answer?: Buffer) => void) => S, release: (socket: S) => void): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (answer?: Buffer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      settings.signal.removeEventListener('abort', onAbort);
      release(socket);
      resolve(answer);
    };
    const onAbort = (): void => finish();
    const timer = setTimeout(finish, settings.timeoutMs);
    settings.signal.addEventListener('abort', onAbort, { once: true });
    const socket = open(finish);
    if (settings.signal.aborted) finish();
  });
}

function exchangeUdp(query: Query, upstream: Upstream, settings: ForwardSettings): Promise<Buffer | undefined> {
  return exchange<UdpSocket>(
    settings,
    (finish) => {
      const socket = createSocket(isIPv6(upstream.address) ? 'udp6' : 'udp4');
      // Set once connected: the socket is bound a moment earlier and could receive from anyone then.
      let peer: { address: string; port: number } | undefined;
      socket.on('error', () => finish());
      socket.on('message', (msg, from) => {
        if (peer && from.address === peer.address && from.port === peer.port && answersQuery(msg, query)) finish(msg);
      });
      socket.connect(upstream.port, upstream.address, () => {
        peer = socket.remoteAddress();
        socket.send(query.raw, (err) => err && finish());
      });
      return socket;
    },
    (socket) => {
      try {
        socket.close();
      } catch {
        // Already closed after an error: nothing left to release.
      }
    },
  );
}

function exchangeTcp(query: Query, upstream: Upstream, settings: ForwardSettings): Promise<Buffer | undefined> {
  return exchange<TcpSocket>(
    settings,
    (finish) => {
      const socket = connect({ host: upstream.address, port: upstream.port, noDelay: true });
      const reader = new FrameReader();
      socket.on('connect', () => socket.write(frame(query.raw)));
      socket.on('data', (chunk) => {
        const answer = reader.push(chunk).find((m) => answersQuery(m, query));
        if (answer) finish(answer);
      });
      socket.on('error', () => finish());
      socket.on('close', () => finish());
      return socket;
    },
    (socket) => socket.destroy(),
  );
}
