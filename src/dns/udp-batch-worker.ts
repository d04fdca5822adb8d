/**
 * The resolver's batch thread: it owns the resolver's IPv4 UDP sockets, waits in poll(2) on them
 * and on an eventfd, reads each ready socket's queries in one recvmmsg, answers the container names
 * among them itself from a replica of the directory, and forwarded names its cache holds (the main
 * thread copies in what it caches), and sends those answers in one sendmmsg. Every other datagram
 * (forwarded names it lacks, malformed packets, anything it cannot answer) goes to the main
 * thread as it came, in one message per batch. What this thread answered is counted in shared
 * memory before the answers leave; the outcomes (for metrics and events) go with such a message, or
 * on their own after a millisecond with nothing to read (at the latest every TALLY_MS under
 * continuous load), so a client asking one query after another does not wake the main thread each time.
 *
 * The replica is the directory's changes replayed in order. Commands are drained after every
 * recvmmsg as well as on the eventfd, so a query sent after a change was made (the engine made it,
 * then answered its client) is answered with that change.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import { close } from '../kernel/libc.js';
import { injectedFault } from '../kernel/faults.js';
import { Batch, EAGAIN, EINTR, MSG_TRUNC, POLLIN, errno, poll, read, recvmmsg, sendBatch } from '../kernel/tun-io.js';
import { formatIpv4 } from '../ipam/ipv4.js';
import { AnswerCache } from './answer-cache.js';
import { MemoryDirectory } from './directory.js';
import { localAnswer, outcomeOf } from './local-answer.js';
import { MAX_UDP_BYTES, RCODE, buildReply, decodeQuery, truncateForwarded, type Query } from './packet.js';
import { SHARED_COUNTERS, type BatchCommand, type BatchReport, type BatchSocket, type BatchStart, type BatchTally, type PassedQuery } from './udp-batch-protocol.js';

const POLL_TIMEOUT_MS = 1000;
/** The longest a tally waits while queries keep coming. */
const TALLY_MS = 10;
// One byte more than any query may have: a longer datagram arrives cut (MSG_TRUNC) yet still longer
// than MAX_UDP_BYTES, so the main thread answers it FORMERR as if it had read it whole.
const RX_SLOT = MAX_UDP_BYTES + 1;

const start = workerData as BatchStart;
const port = start.port;
const directory = new MemoryDirectory();
const cache = start.cacheEntries === 0 ? undefined : new AnswerCache({ maxEntries: start.cacheEntries });
/** Cache scope by socket and client, as the main thread last told it. */
const scopes = new Map<string, string>();
const scopeKey = (socket: string, clientIp: string) => `${socket}\n${clientIp}`;
const sockets = new Map<string, BatchSocket & { removed: boolean }>();
let polled: (BatchSocket & { removed: boolean })[] = [];
let pollFds = Buffer.alloc(8);
let stopping = false;

const rx = new Batch(start.batch, RX_SLOT);
const tx = new Batch(start.batch, MAX_UDP_BYTES);
let tallied = 0;
let tally: BatchTally = emptyTally();
let tallySince = 0;
const shared = new Float64Array(start.counters);
const QUERIES = SHARED_COUNTERS.indexOf('queries');
const ANSWERED_LOCALLY = SHARED_COUNTERS.indexOf('answeredLocally');
const CACHE_HITS = SHARED_COUNTERS.indexOf('cacheHits');
const TRUNCATED = SHARED_COUNTERS.indexOf('truncated');
let passed: PassedQuery[] = [];

function emptyTally(): BatchTally {
  tallied = 0;
  return { outcomes: {} };
}

function repoll(): void {
  polled = [...sockets.values()];
  pollFds = Buffer.alloc(8 * (polled.length + 1));
  pollFds.writeInt32LE(start.wakeFd, 0);
  polled.forEach((s, i) => pollFds.writeInt32LE(s.fd, 8 * (i + 1)));
  for (let i = 0; i <= polled.length; i++) pollFds.writeInt16LE(POLLIN, 8 * i + 4);
}

/** Applies the commands waiting on the port. */
function takeCommands(): void {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const cmd = m.message as BatchCommand;
    if (cmd.op === 'change') {
      // The main thread's directory accepted each of these already, so none throws here.
      for (const change of cmd.changes) directory.apply(change);
      // Upstreams (the host's, a container's own) may have changed: learn scopes afresh.
      scopes.clear();
      continue;
    }
    if (cmd.op === 'forgetScopes') {
      scopes.clear();
      continue;
    }
    if (cmd.op === 'cached') {
      scopes.set(scopeKey(cmd.socket, cmd.clientIp), cmd.scope);
      const decoded = cmd.query && decodeQuery(Buffer.from(cmd.query), MAX_UDP_BYTES);
      if (decoded?.kind === 'query' && cmd.answer) cache?.put(cmd.scope, decoded.query, Buffer.from(cmd.answer));
      continue;
    }
    let reply: BatchReport = { kind: 'reply', id: cmd.id, ok: true };
    try {
      if (cmd.op === 'add') {
        const { op: _op, id: _id, ...socket } = cmd;
        sockets.set(socket.socket, { ...socket, removed: false });
        repoll();
      } else if (cmd.op === 'remove') {
        const s = sockets.get(cmd.socket);
        if (s) {
          sockets.delete(cmd.socket);
          s.removed = true;
          close(s.fd);
          repoll();
        }
      } else {
        stopping = true;
      }
    } catch (err) {
      reply = { kind: 'reply', id: cmd.id, ok: false, error: (err as Error).message };
    }
    port.postMessage(reply);
  }
}

/** One batch from `s`: container names answered here in one sendmmsg, the rest passed on. */
function serve(s: BatchSocket & { removed: boolean }): void {
  const n = recvmmsg(s.fd, rx.msgs, rx.count);
  if (n <= 0) return;
  // Tests end the thread here as a fault in its own code would (BERTH_KERNEL_FAULTS: `dnsBatch`).
  const fault = injectedFault('dnsBatch');
  if (fault) throw fault;
  takeCommands();
  let out = 0;
  if (!s.removed) {
    for (let i = 0; i < n; i++) {
      const { len, flags, sender, port: from } = rx.received(i);
      const data = rx.slots[i]!.subarray(0, flags & MSG_TRUNC ? RX_SLOT : len);
      const reply = answer(s, data, sender);
      if (!reply) {
        passed.push({ socket: s.socket, data: Uint8Array.from(data), ip: sender, port: from });
        continue;
      }
      reply.copy(tx.slots[out]!);
      tx.setLength(out, reply.length);
      tx.setDestination(out, rx.name(i));
      out++;
    }
  }
  rx.resetNames(n);
  sendBatch(s.fd, tx, out); // what the kernel refuses is dropped, as UDP may: the client retries
  if (passed.length > 0 || (tallied > 0 && Date.now() - tallySince >= TALLY_MS)) report();
}

/** The reply to a query for a container name or a cached forwarded name, counted; undefined for anything else. */
function answer(s: BatchSocket, data: Buffer, sender: number): Buffer | undefined {
  const decoded = decodeQuery(data, MAX_UDP_BYTES);
  if (decoded.kind !== 'query') return undefined;
  const query = decoded.query;
  try {
    const clientIp = s.client ?? formatIpv4(sender);
    const records = localAnswer(directory, s, query, clientIp);
    if (records) {
      const { bytes, truncated } = buildReply(query, RCODE.NOERROR, records, query.udpLimit);
      shared[ANSWERED_LOCALLY]!++;
      return counted(bytes, truncated, 'local');
    }
    return cached(s, query, clientIp);
  } catch {
    return undefined; // the main thread answers it, and logs why
  }
}

/** A forwarded name's answer from the cache, fitted to the client as the main thread fits it. */
function cached(s: BatchSocket, query: Query, clientIp: string): Buffer | undefined {
  const scope = scopes.get(scopeKey(s.socket, clientIp));
  const hit = scope === undefined ? undefined : cache?.get(scope, query);
  if (!hit) return undefined;
  shared[CACHE_HITS]!++;
  const fits = hit.length <= query.udpLimit;
  return counted(fits ? hit : truncateForwarded(hit, query), !fits, 'forwarded');
}

function counted(reply: Buffer, truncated: boolean, answered: 'local' | 'forwarded'): Buffer {
  if (tallied++ === 0) tallySince = Date.now();
  shared[QUERIES]!++;
  if (truncated) shared[TRUNCATED]!++;
  const outcome = outcomeOf(reply, answered);
  tally.outcomes[outcome] = (tally.outcomes[outcome] ?? 0) + 1;
  return reply;
}

function report(): void {
  if (tallied === 0 && passed.length === 0) return;
  const message: BatchReport = { kind: 'batch', passed, ...(tallied > 0 && { tally }) };
  port.postMessage(message);
  tally = emptyTally();
  passed = [];
}

function loop(): void {
  const wake = Buffer.alloc(8);
  repoll();
  while (!stopping) {
    // A tally waits for a quiet millisecond, so a client asking one query after another does not
    // wake the main thread for each.
    let ready = tallied > 0 ? poll(pollFds, polled.length + 1, 1) : -2;
    if (ready === 0 || ready === -2) {
      report();
      ready = poll(pollFds, polled.length + 1, POLL_TIMEOUT_MS);
    }
    if (ready < 0 && errno() !== EINTR && errno() !== EAGAIN) throw new Error(`poll failed: errno ${errno()}`);
    if (ready <= 0) continue;
    if (pollFds.readInt16LE(6) !== 0) {
      read(start.wakeFd, wake, 8);
      takeCommands();
    }
    const now = polled;
    const fds = pollFds;
    for (let i = 0; i < now.length && !stopping; i++) {
      if (fds.readInt16LE(8 * (i + 1) + 6) !== 0 && !now[i]!.removed) serve(now[i]!);
    }
  }
}

port.postMessage({ kind: 'ready' } satisfies BatchReport);
try {
  loop();
} finally {
  // Asked to stop: the sockets still open are closed here (the resolver closes each first; this is
  // the fallback). Ended by a fault: they stay open, and the resolver hands them to a new thread.
  if (stopping) for (const s of sockets.values()) close(s.fd);
  port.close();
}
