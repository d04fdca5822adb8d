/**
 * UDP exchanges with upstream resolvers over a small pool of connected sockets per upstream,
 * instead of a new socket per query (socket, bind, connect and close cost more than the query).
 * What a fresh socket per query gave is kept as far as a pool allows:
 * - each socket is bound by the kernel to a random ephemeral port and retired after a few
 *   queries or seconds, so source ports keep changing (RFC 5452's second 16 bits);
 * - each query goes out with a random id not in flight on its socket, and the client's own id is
 *   put back on the answer, so clients using the same id never collide;
 * - a connected socket hears only its upstream, and an ICMP unreachable fails the socket's
 *   queries at once (fail over now, not after the timeout).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Upstream } from './directory.js';
import { answersQuery, type Query } from './packet.js';

export interface PoolSettings {
  /** Sockets per upstream. */
  socketsPerUpstream?: number;
  /** A socket takes no new query after this many… */
  usesPerSocket?: number;
  /** …or after this long. */
  socketLifetimeMs?: number;
}

interface Pending {
  /** The query as sent, with our id: what the answer must match. */
  sent: Query;
  finish: (answer?: Buffer) => void;
}

interface PooledSocket {
  socket: UdpSocket;
  ready: Promise<boolean>;
  pending: Map<number, Pending>;
  uses: number;
  bornAt: number;
  retired: boolean;
}

export class UpstreamPool {
  private readonly pools = new Map<string, PooledSocket[]>();
  private readonly size: number;
  private readonly maxUses: number;
  private readonly lifetimeMs: number;
  private next = 0;
  private closed = false;

  constructor(settings: PoolSettings = {}) {
    this.size = settings.socketsPerUpstream ?? 4;
    this.maxUses = settings.usesPerSocket ?? 256;
    this.lifetimeMs = settings.socketLifetimeMs ?? 10_000;
  }

  /** Sends `query` to `upstream`; resolves with the answer (client's id restored) or undefined. */
  async exchange(query: Query, upstream: Upstream, timeoutMs: number, signal: AbortSignal): Promise<Buffer | undefined> {
    if (this.closed || signal.aborted) return undefined;
    const pooled = this.pick(upstream);
    if (!(await pooled.ready)) return undefined;
    let id = randomInt(0x10000);
    while (pooled.pending.has(id)) id = randomInt(0x10000);
    const raw = Buffer.from(query.raw);
    raw.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      const finish = (answer?: Buffer): void => {
        if (!pooled.pending.delete(id)) return;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.releaseIfIdle(upstream, pooled);
        if (answer) {
          const out = Buffer.from(answer);
          out.writeUInt16BE(query.id, 0);
          resolve(out);
        } else resolve(undefined);
      };
      const onAbort = (): void => finish();
      const timer = setTimeout(finish, timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      pooled.pending.set(id, { sent: { ...query, id, raw }, finish });
      pooled.socket.send(raw, (err) => err && finish());
    });
  }

  close(): void {
    this.closed = true;
    for (const list of this.pools.values()) for (const p of list) this.destroy(p);
    this.pools.clear();
  }

  private pick(upstream: Upstream): PooledSocket {
    const key = `${upstream.address}#${upstream.port}`;
    let list = this.pools.get(key);
    if (!list) this.pools.set(key, (list = []));
    const now = Date.now();
    for (const p of list) {
      if (!p.retired && (p.uses >= this.maxUses || now - p.bornAt >= this.lifetimeMs)) {
        p.retired = true;
        this.releaseIfIdle(upstream, p);
      }
    }
    let live = list.filter((p) => !p.retired);
    if (live.length < this.size) {
      list.push(this.open(upstream));
      live = list.filter((p) => !p.retired);
    }
    const pooled = live[this.next++ % live.length]!;
    pooled.uses++;
    return pooled;
  }

  private open(upstream: Upstream): PooledSocket {
    const socket = createSocket(isIPv6(upstream.address) ? 'udp6' : 'udp4');
    const pooled: PooledSocket = { socket, pending: new Map(), uses: 0, bornAt: Date.now(), retired: false, ready: Promise.resolve(false) };
    // Connected before use: a connected socket drops datagrams from anyone but the upstream.
    pooled.ready = new Promise((resolve) => {
      socket.once('error', () => resolve(false));
      socket.connect(upstream.port, upstream.address, () => resolve(true));
    });
    socket.on('message', (msg) => {
      if (msg.length < 2) return;
      const p = pooled.pending.get(msg.readUInt16BE(0));
      if (p && answersQuery(msg, p.sent)) p.finish(msg);
    });
    // ECONNREFUSED (an ICMP unreachable) and the like: fail every query on it now, and retire it.
    socket.on('error', () => {
      pooled.retired = true;
      for (const p of [...pooled.pending.values()]) p.finish();
      this.releaseIfIdle(upstream, pooled);
    });
    return pooled;
  }

  private releaseIfIdle(upstream: Upstream, pooled: PooledSocket): void {
    if (!pooled.retired || pooled.pending.size > 0) return;
    this.destroy(pooled);
    const key = `${upstream.address}#${upstream.port}`;
    const list = this.pools.get(key);
    if (list) this.pools.set(key, list.filter((p) => p !== pooled));
  }

  private destroy(pooled: PooledSocket): void {
    try {
      pooled.socket.close();
    } catch {
      // Already closed after an error.
    }
  }
}
