/**
 * The engine's handle on the kernel: typed async calls into the kernel worker thread (~30 µs per
 * round trip). This is the only way the rest of berth reaches Linux networking.
 */
import { Worker } from 'node:worker_threads';
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

export class Kernel {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor() {
    this.worker = new Worker(new URL('./worker.js', import.meta.url));
    this.worker.on('message', (reply: KernelReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) this.worker.unref();
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new KernelError(reply.error.message, reply.error.errno));
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', (code) => this.failAll(new KernelError(`kernel worker exited (code ${code})`)));
    // The worker keeps the process alive only while a call is in flight.
    this.worker.unref();
  }

  call<K extends keyof Ops>(op: K, ...spec: Spec<K> extends undefined ? [] : [Spec<K>]): Promise<Result<K>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.ref();
      this.worker.postMessage({ id, op, spec: spec[0] });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private failAll(err: Error): void {
    for (const w of this.pending.values()) w.reject(err);
    this.pending.clear();
  }
}
