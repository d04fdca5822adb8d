/**
 * berth's one door to etcd: etcd v3's own JSON gateway (the HTTP face of its gRPC API, served by
 * every member on its client port), over node's http/https with a keep-alive agent. Chosen over
 * npm `etcd3` (no release since 2023, known watch and lease bugs) and its gRPC stack: the gateway
 * is etcd's documented API, costs ~0.4 ms more per put here (anchors/multihost §1), and keeps
 * deadlines, fail-over between members and watch resumption in code berth owns.
 *
 * Every unary call has a deadline (default 2 s) covering all members it tries; a member that does
 * not answer is skipped for the next one. A call that runs out of time or members fails with a
 * BerthError of kind 'unavailable' naming etcd and the members tried.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { BerthError, invalid } from '../errors.js';

export interface EtcdTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  lease: string;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
}

export interface Compare {
  key: string;
  target: 'CREATE' | 'MOD' | 'VERSION' | 'VALUE';
  result?: 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';
  /** The revision or version compared (CREATE/MOD/VERSION), or the value (VALUE). */
  value: number | string;
  /** Compare every key under `key` (an empty range compares as one absent key). */
  prefix?: boolean;
}

export type TxnOp = { put: { key: string; value: string; lease?: string } } | { delete: { key: string; prefix?: boolean } } | { get: { key: string; prefix?: boolean } };

const DEFAULT_DEADLINE_MS = 2000;

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** The key just past every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i]++;
      return end.toString('base64');
    }
  }
  return Buffer.from([0]).toString('base64');
}

interface RawKv {
  key: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  lease?: string;
}

function kvOf(raw: RawKv): KeyValue {
  return {
    key: unb64(raw.key),
    value: unb64(raw.value),
    createRevision: Number(raw.create_revision ?? 0),
    modRevision: Number(raw.mod_revision ?? 0),
    lease: raw.lease ?? '0',
  };
}

/**
 * Parses `etcd://IP:PORT[,IP:PORT…]` (or http(s)://): the members' client URLs. etcd:// means
 * http, or https when TLS files are given.
 */
export function parseClusterStore(spec: string, tls: boolean): string[] {
  const m = /^(etcd|http|https):\/\/(.+)$/.exec(spec.trim());
  if (!m) throw invalid(`--cluster-store "${spec}" is not etcd://IP:PORT[,IP:PORT…]: name the etcd members' client addresses`);
  const scheme = m[1] === 'etcd' ? (tls ? 'https' : 'http') : m[1];
  return m[2].split(',').map((member) => {
    const hp = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(member.trim());
    if (!hp || Number(hp[2]) < 1 || Number(hp[2]) > 65535) {
      throw invalid(`--cluster-store member "${member}" is not HOST:PORT (for example etcd://10.0.0.5:2379,10.0.0.6:2379)`);
    }
    return `${scheme}://${hp[1]}:${hp[2]}`;
  });
}

export class EtcdClient {
  private readonly agents: { http: http.Agent; https: https.Agent };
  /** The member that answered last: tried first next time. */
  private preferred = 0;
  private watchMember = 0;
  /** Told of every unary call's duration and whether it succeeded (the metrics). */
  private readonly callWatchers = new Set<(ms: number, ok: boolean) => void>();

  constructor(
    readonly members: string[],
    private readonly opts: { tls?: EtcdTls; deadlineMs?: number } = {},
  ) {
    this.agents = {
      http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
      https: new https.Agent({ keepAlive: true, maxSockets: 16, ca: opts.tls?.ca, cert: opts.tls?.cert, key: opts.tls?.key }),
    };
  }

  get deadlineMs(): number {
    return this.opts.deadlineMs ?? DEFAULT_DEADLINE_MS;
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** Calls `fn` after every unary call with its duration and outcome; returns the unsubscribe. */
  onCall(fn: (ms: number, ok: boolean) => void): () => void {
    this.callWatchers.add(fn);
    return () => this.callWatchers.delete(fn);
  }

  /** One unary gateway call, tried on each member in turn until the deadline. */
  async call<T>(path: string, body: unknown, deadlineMs = this.deadlineMs): Promise<T> {
    const started = performance.now();
    let ok = false;
    try {
      const answer = await this.tryMembers<T>(path, body, deadlineMs);
      ok = true;
      return answer;
    } finally {
      for (const fn of this.callWatchers) {
        try {
          fn(performance.now() - started, ok);
        } catch {
          /* a watcher's failure is not the call's */
        }
      }
    }
  }

  private async tryMembers<T>(path: string, body: unknown, deadlineMs: number): Promise<T> {
    const deadline = Date.now() + deadlineMs;
    const errors: string[] = [];
    for (let attempt = 0; attempt < this.members.length; attempt++) {
      const i = (this.preferred + attempt) % this.members.length;
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const answer = await this.post(this.members[i], path, body, left);
        this.preferred = i;
        return answer as T;
      } catch (err) {
        if (err instanceof BerthError) throw err;
        errors.push(`${this.members[i]}: ${(err as Error).message}`);
      }
    }
    throw new BerthError(
      'unavailable',
      `etcd (the cluster store) did not answer ${path} within ${deadlineMs} ms: ${errors.join('; ') || 'no member answered in time'}; check that a quorum of its members is up and reachable`,
    );
  }

  private post(member: string, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
    const url = new URL(path, member);
    const secure = url.protocol === 'https:';
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(
        url,
        { method: 'POST', agent: secure ? this.agents.https : this.agents.http, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: { error?: string; message?: string; code?: number } & Record<string, unknown>;
            try {
              parsed = JSON.parse(text);
            } catch {
              return reject(new Error(`answered ${res.statusCode} with no JSON: ${text.slice(0, 200)}`));
            }
            if (res.statusCode !== 200) {
              const message = parsed.message ?? parsed.error ?? text;
              // Quorum loss and leader changes are the member's problem, not the request's: try another.
              if (res.statusCode && res.statusCode >= 500) return reject(new Error(`answered ${res.statusCode}: ${message}`));
              return reject(new BerthError('internal', `etcd refused ${path}: ${message}`));
            }
            resolve(parsed);
          });
          res.on('error', reject);
        },
      );
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end(payload);
    });
  }

  /* keys */

  async get(key: string): Promise<KeyValue | undefined> {
    const r = await this.call<{ kvs?: RawKv[] }>('/v3/kv/range', { key: b64(key) });
    return r.kvs?.[0] ? kvOf(r.kvs[0]) : undefined;
  }

  /** Every key under `prefix`, and the store's revision the answer is from. */
  async list(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    const r = await this.call<{ kvs?: RawKv[]; header: { revision: string } }>('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix) });
    return { kvs: (r.kvs ?? []).map(kvOf), revision: Number(r.header.revision) };
  }

  async put(key: string, value: string, lease?: string): Promise<number> {
    const r = await this.call<{ header: { revision: string } }>('/v3/kv/put', { key: b64(key), value: b64(value), lease });
    return Number(r.header.revision);
  }

  async delete(key: string, opts: { prefix?: boolean } = {}): Promise<number> {
    const r = await this.call<{ deleted?: string }>('/v3/kv/deleterange', { key: b64(key), range_end: opts.prefix ? prefixEnd(key) : undefined });
    return Number(r.deleted ?? 0);
  }

  /** Compare-and-swap: `success` runs if every comparison holds, `failure` otherwise. */
  async txn(compare: Compare[], success: TxnOp[], failure: TxnOp[] = []): Promise<{ succeeded: boolean; revision: number; ranges: KeyValue[][] }> {
    const r = await this.call<{ succeeded?: boolean; header: { revision: string }; responses?: { response_range?: { kvs?: RawKv[] } }[] }>('/v3/kv/txn', {
      compare: compare.map((c) => ({
        key: b64(c.key),
        ...(c.prefix ? { range_end: prefixEnd(c.key) } : {}),
        target: c.target,
        result: c.result ?? 'EQUAL',
        ...(c.target === 'CREATE' ? { create_revision: String(c.value) } : {}),
        ...(c.target === 'MOD' ? { mod_revision: String(c.value) } : {}),
        ...(c.target === 'VERSION' ? { version: String(c.value) } : {}),
        ...(c.target === 'VALUE' ? { value: b64(String(c.value)) } : {}),
      })),
      success: success.map(opOf),
      failure: failure.map(opOf),
    });
    return {
      succeeded: Boolean(r.succeeded),
      revision: Number(r.header.revision),
      ranges: (r.responses ?? []).map((x) => (x.response_range?.kvs ?? []).map(kvOf)),
    };
  }

  /* leases */

  async grantLease(ttlSeconds: number): Promise<{ id: string; ttl: number }> {
    const r = await this.call<{ ID: string; TTL: string; error?: string }>('/v3/lease/grant', { TTL: ttlSeconds });
    return { id: r.ID, ttl: Number(r.TTL) };
  }

  /** Renews a lease once; the seconds it has left, 0 if it has expired (or never existed). */
  async keepAlive(id: string): Promise<number> {
    const r = await this.call<{ result?: { TTL?: string }; error?: { message?: string } }>('/v3/lease/keepalive', { ID: id });
    if (r.error) throw new BerthError('unavailable', `etcd could not renew lease ${id}: ${r.error.message ?? 'unknown error'}`);
    return Number(r.result?.TTL ?? 0);
  }

  async revokeLease(id: string): Promise<void> {
    await this.call('/v3/kv/lease/revoke', { ID: id });
  }

  /**
   * Watches every key under `prefix` from `fromRevision` on; events arrive in revision order.
   * The stream ends (onEnd, with the reason) when the member goes away or the revision was
   * compacted: the caller re-lists and watches again.
   */
  watch(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[], revision: number) => void, onEnd: (reason: { compacted?: number; error?: string }) => void): { cancel(): void } {
    let req: http.ClientRequest | undefined;
    let ended = false;
    const end = (reason: { compacted?: number; error?: string }) => {
      if (ended) return;
      ended = true;
      req?.destroy();
      onEnd(reason);
    };
    const member = this.members[this.watchMember];
    const url = new URL('/v3/watch', member);
    const secure = url.protocol === 'https:';
    const payload = JSON.stringify({ create_request: { key: b64(prefix), range_end: prefixEnd(prefix), start_revision: String(fromRevision), progress_notify: true } });
    req = (secure ? https : http).request(url, { method: 'POST', agent: false, ...(secure ? { ca: this.opts.tls?.ca, cert: this.opts.tls?.cert, key: this.opts.tls?.key } : {}) }, (res) => {
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (!line) continue;
          let msg: { result?: { header?: { revision?: string }; events?: { type?: string; kv: RawKv }[]; compact_revision?: string; canceled?: boolean; cancel_reason?: string }; error?: { message?: string } };
          try {
            msg = JSON.parse(line);
          } catch {
            return end({ error: `unparsable watch message: ${line.slice(0, 100)}` });
          }
          if (msg.error) return end({ error: msg.error.message ?? 'watch error' });
          const result = msg.result ?? {};
          if (result.compact_revision && Number(result.compact_revision) > 0) return end({ compacted: Number(result.compact_revision) });
          if (result.canceled) return end({ error: result.cancel_reason ?? 'watch canceled' });
          const events = (result.events ?? []).map((e) => ({ type: e.type === 'DELETE' ? ('delete' as const) : ('put' as const), kv: kvOf(e.kv) }));
          if (events.length > 0) onEvents(events, Number(result.header?.revision ?? 0));
        }
      });
      res.on('end', () => end({ error: 'the member closed the watch' }));
      res.on('error', (err) => end({ error: err.message }));
    });
    req.on('error', (err) => end({ error: `${member}: ${err.message}` }));
    req.end(payload);
    // The next watch (after this one ends) starts on the next member, in case this one went away.
    this.watchMember = (this.watchMember + 1) % this.members.length;
    return { cancel: () => end({ error: 'canceled' }) };
  }

  /** The members' health, for start-up checks and `berth doctor`. */
  async status(): Promise<{ version: string; leader: string }> {
    const r = await this.call<{ version: string; leader: string }>('/v3/maintenance/status', {});
    return { version: r.version, leader: r.leader };
  }
}

function opOf(op: TxnOp): unknown {
  if ('put' in op) return { request_put: { key: b64(op.put.key), value: b64(op.put.value), lease: op.put.lease } };
  if ('delete' in op) return { request_delete_range: { key: b64(op.delete.key), range_end: op.delete.prefix ? prefixEnd(op.delete.key) : undefined } };
  return { request_range: { key: b64(op.get.key), range_end: op.get.prefix ? prefixEnd(op.get.key) : undefined } };
}
