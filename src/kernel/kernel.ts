/**
 * The engine's handle on the kernel: typed async calls into the kernel worker thread (~30 µs per
 * round trip). This is the only way the rest of berth reaches Linux networking.
 *
 * If the worker dies (a crash in native code, an uncaught error), the calls in flight are
 * rejected with an error saying so, and the next call starts a fresh worker: nothing waits
 * forever on a thread that is gone. What a dead call half-did is the reconciler's to repair.
 */
import type { Worker } from 'node:worker_threads';
import { KERNEL_WORKER_YOUNG_GENERATION_MB, startWorker } from './daemon-memory.js';
import { injectedFault } from './faults.js';
import type * as ops from './ops.js';
import type { KernelReply } from './worker.js';

type Ops = typeof ops;
type Spec<K extends keyof Ops> = Parameters<Ops[K]>[0];
type Result<K extends keyof Ops> = ReturnType<Ops[K]>;

export class KernelError extends Error {
  constructor(
    message: string,
    readonly errno?: number,
  ) {
    super(message);
    this.name = 'KernelError';
  }
}

type Waiter = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class Kernel {
  private worker: Worker | undefined;
  private closed = false;
  private nextId = 1;
  private readonly pending = new Map<number, Waiter>();

  /** `workerUrl` is for tests, which stand in a worker that can be made to die. */
  constructor(private readonly workerUrl: URL = new URL('./worker.js', import.meta.url)) {
    this.worker = this.spawn();
  }

  call<K extends keyof Ops>(op: K, ...spec: Spec<K> extends undefined ? [] : [Spec<K>]): Promise<Result<K>> {
    if (this.closed) return Promise.reject(new KernelError(`kernel call ${op} after the kernel was closed`));
    const fault = injectedFault(op);
    if (fault) return Promise.reject(fault);
    const worker = (this.worker ??= this.spawn());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.ref();
      worker.postMessage({ id, op, spec: spec[0] });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
    this.failAll(new KernelError('the kernel was closed while the call was in flight'));
  }

  private spawn(): Worker {
    const worker = startWorker(this.workerUrl, { resourceLimits: { maxYoungGenerationSizeMb: KERNEL_WORKER_YOUNG_GENERATION_MB } });
    worker.on('message', (reply: KernelReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new KernelError(reply.error.message, reply.error.errno));
    });
    worker.on('error', (err) => this.lost(worker, `failed (${err.message})`));
    worker.on('exit', (code) => this.lost(worker, `exited (code ${code})`));
    // The worker keeps the process alive only while a call is in flight.
    worker.unref();
    return worker;
  }

  /** The worker died: its calls in flight fail; the next call gets a new worker. */
  private lost(worker: Worker, how: string): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    this.failAll(new KernelError(`the kernel worker thread ${how} during this call; the next call starts a new one (\`berth system reconcile\` repairs what the call left half-done)`));
  }

  private failAll(err: Error): void {
    for (const w of this.pending.values()) w.reject(err);
    this.pending.clear();
  }
}
