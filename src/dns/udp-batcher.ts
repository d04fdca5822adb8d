/**
 * The main thread's handle on the resolver's batch thread (udp-batch-worker.ts): hands it UDP
 * sockets by descriptor and takes them back, streams it the directory's changes, and delivers what
 * it reports: the tally of the queries it answered, and the datagrams it left to the main thread.
 */
import * as fs from 'node:fs';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { startWorker } from '../kernel/daemon-memory.js';
import { BerthError } from '../errors.js';
import { eventfd } from '../kernel/tun-io.js';
import type { MemoryDirectory } from './directory.js';
import { SHARED_COUNTERS, type BatchCommand, type BatchReport, type BatchSocket, type BatchStart, type BatchTally, type PassedQuery } from './udp-batch-protocol.js';

const COMMAND_TIMEOUT_MS = 5000;
const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
/** Datagrams per recvmmsg/sendmmsg: as many as 32 clients' queries in flight and room to spare. */
const BATCH = 64;

export interface BatcherEvents {
  onTally(tally: BatchTally): void;
  onPassed(queries: PassedQuery[]): void;
  /** The thread ended without being asked to (once per thread): its sockets are still open, unserved. */
  onLost(reason: string): void;
}

type CommandBody = BatchCommand extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;

export class UdpBatcher {
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  private nextId = 1;
  private dead = false;
  private released = false;
  private stopping: Promise<void> | undefined;
  private readonly exited: Promise<void>;
  private readonly unwatch: () => void;

  private constructor(
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly wakeFd: number,
    private readonly shared: Float64Array,
    directory: MemoryDirectory,
    events: BatcherEvents,
  ) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    let failure: string | undefined;
    worker.on('error', (err) => (failure = `the DNS batch thread failed: ${err.message}`));
    void this.exited.then(() => {
      this.fail('the DNS batch thread exited');
      if (this.stopping) return;
      this.release();
      events.onLost(failure ?? 'the DNS batch thread exited');
    });
    port.on('message', (report: BatchReport) => {
      if (report.kind === 'batch') {
        if (report.tally) events.onTally(report.tally);
        if (report.passed.length) events.onPassed(report.passed);
      } else if (report.kind === 'reply') {
        const waiter = this.pending.get(report.id);
        if (!waiter) return;
        this.pending.delete(report.id);
        clearTimeout(waiter.timer);
        if (report.ok) waiter.resolve();
        else waiter.reject(new BerthError('internal', `DNS batch thread: ${report.error}`));
      }
    });
    // The replica starts from what the directory holds now and follows every change after it.
    this.send({ op: 'change', changes: directory.snapshot() });
    this.unwatch = directory.watch((change) => this.send({ op: 'change', changes: [change] }));
  }

  /** Starts the thread; resolves once it runs, else rejects with nothing left behind. */
  static async start(directory: MemoryDirectory, events: BatcherEvents, cacheEntries?: number): Promise<UdpBatcher> {
    // The mmsghdr layout built in tun-io.ts is that of 64-bit Linux.
    if (process.arch !== 'x64' && process.arch !== 'arm64') throw new BerthError('unavailable', `batched DNS I/O supports 64-bit x86 and ARM Linux, not ${process.arch}`);
    const wakeFd = eventfd();
    const { port1, port2 } = new MessageChannel();
    const counters = new SharedArrayBuffer(SHARED_COUNTERS.length * Float64Array.BYTES_PER_ELEMENT);
    const workerData: BatchStart = { port: port2, wakeFd, batch: BATCH, counters, ...(cacheEntries !== undefined && { cacheEntries }) };
    let worker: Worker;
    try {
      worker = startWorker(new URL('./udp-batch-worker.js', import.meta.url), { workerData, transferList: [port2] });
    } catch (err) {
      port1.close();
      fs.closeSync(wakeFd);
      throw err;
    }
    const ready = await new Promise<string | undefined>((resolve) => {
      port1.once('message', () => resolve(undefined));
      worker.once('error', (err) => resolve(`the DNS batch thread failed: ${err.message}`));
      worker.once('exit', (code) => resolve(`the DNS batch thread exited (code ${code}) before it was ready`));
    });
    if (ready !== undefined) {
      port1.close();
      await worker.terminate();
      fs.closeSync(wakeFd);
      throw new BerthError('unavailable', ready);
    }
    return new UdpBatcher(worker, port1, wakeFd, new Float64Array(counters), directory, events);
  }

  /** Whether the thread still runs (false once it ended, asked or not). */
  get running(): boolean {
    return !this.dead;
  }

  /** Hands the thread a bound IPv4 UDP socket; from now on it owns the descriptor (remove() closes it). */
  add(socket: BatchSocket): Promise<void> {
    return this.command({ op: 'add', ...socket });
  }

  /** Stops serving the socket and closes its descriptor. */
  remove(socket: string): Promise<void> {
    return this.command({ op: 'remove', socket });
  }

  /** What the thread has counted so far (exact for every answer it has sent). */
  counters(): Record<(typeof SHARED_COUNTERS)[number], number> {
    return Object.fromEntries(SHARED_COUNTERS.map((name, i) => [name, this.shared[i]!])) as Record<(typeof SHARED_COUNTERS)[number], number>;
  }

  /** A client's cache scope, and an answer just cached in it (see the 'cached' command). */
  teach(cached: Omit<Extract<BatchCommand, { op: 'cached' }>, 'op'>): void {
    this.send({ op: 'cached', ...cached });
  }

  /** The main thread's routes changed: the scopes taught so far may be wrong now. */
  forgetScopes(): void {
    this.send({ op: 'forgetScopes' });
  }

  /** Ends the thread (it closes any socket still its own) and waits for it; again: waits for that. */
  stop(): Promise<void> {
    this.stopping ??= this.end();
    return this.stopping;
  }

  private async end(): Promise<void> {
    try {
      if (!this.dead) await this.command({ op: 'stop' });
    } catch {
      /* ended below either way */
    } finally {
      this.dead = true;
      await this.worker.terminate();
      await this.exited;
      this.release();
    }
  }

  /** What this handle holds besides the thread: the directory watch, the port and the eventfd. Once. */
  private release(): void {
    if (this.released) return;
    this.released = true;
    this.unwatch();
    this.port.close();
    fs.closeSync(this.wakeFd);
  }

  private send(cmd: BatchCommand): void {
    if (this.dead) return;
    this.port.postMessage(cmd);
    fs.writeSync(this.wakeFd, ONE);
  }

  private command(body: CommandBody): Promise<void> {
    if (this.dead) return Promise.reject(new BerthError('unavailable', 'the DNS batch thread is not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new BerthError('unavailable', `the DNS batch thread did not answer ${body.op} within ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ ...body, id } as BatchCommand);
    });
  }

  private fail(reason: string): void {
    this.dead = true;
    for (const [id, waiter] of this.pending) {
      this.pending.delete(id);
      clearTimeout(waiter.timer);
      waiter.reject(new BerthError('unavailable', reason));
    }
  }
}
