/**
 * The udp backend's handle on its packet pump (tun-worker.ts): starts the pump's thread, which
 * opens the TUN device and the UDP socket in this process's namespace (the daemon's, the host's:
 * no setns anywhere), passes it peers and commands, reads its counters from shared memory, and
 * stops it so that no thread is left behind (it wakes the pump through an eventfd, and poll's
 * timeout bounds the wait even so).
 */
import * as fs from 'node:fs';
import { MessageChannel, type Worker } from 'node:worker_threads';
import { startWorker } from './daemon-memory.js';
import { eventfd } from './tun-io.js';
import type { TunDeviceSpec } from './tun-device.js';
import { COUNTERS, type Counters, type PumpCommand, type PumpHello, type PumpReply, type PumpStart } from './tun-protocol.js';

export type { Counters } from './tun-protocol.js';

export interface TunProxySpec {
  device: TunDeviceSpec;
  local: { network: number; prefix: number };
  bind: { ip: number; port: number };
  /** Packets per sendmmsg/recvmmsg at most (default 64). */
  batch?: number;
}

/** A command the pump did not answer within this long is failed (it answers within one poll timeout). */
const COMMAND_TIMEOUT_MS = 5000;
const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

type CommandBody = PumpCommand extends infer C ? (C extends PumpCommand ? Omit<C, 'id'> : never) : never;

export class TunProxy {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly exited: Promise<void>;
  private dead = false;

  private constructor(
    private readonly worker: Worker,
    private readonly port: MessageChannel['port1'],
    private readonly wakeFd: number,
    private readonly shared: Float64Array,
    /** Whether starting made the device (false: it re-attached to the one a previous run left). */
    readonly created: boolean,
  ) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    void this.exited.then(() => this.lost('the packet pump thread exited'));
    port.on('message', (reply: PumpReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      clearTimeout(waiter.timer);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(Object.assign(new Error(reply.error.message), { errno: reply.error.errno }));
    });
  }

  /** Starts the pump; resolves once the device is configured and the socket bound, else rejects with nothing left behind. */
  static async start(spec: TunProxySpec): Promise<TunProxy> {
    // The mmsghdr and iovec layouts built in tun-io.ts are those of 64-bit Linux.
    if (process.arch !== 'x64' && process.arch !== 'arm64') throw new Error(`the udp backend's packet pump supports 64-bit x86 and ARM Linux, not ${process.arch}`);
    const wakeFd = eventfd();
    const { port1, port2 } = new MessageChannel();
    const counters = new SharedArrayBuffer(COUNTERS.length * Float64Array.BYTES_PER_ELEMENT);
    const workerData: PumpStart = { ...spec, batch: spec.batch ?? 64, port: port2, wakeFd, counters };
    let worker: Worker;
    try {
      worker = startWorker(new URL('./tun-worker.js', import.meta.url), { workerData, transferList: [port2] });
    } catch (err) {
      fs.closeSync(wakeFd);
      throw err;
    }
    const hello = await new Promise<PumpHello>((resolve) => {
      port1.once('message', resolve);
      worker.once('error', (err) => resolve({ ready: false, error: { message: `the packet pump thread failed: ${err.message}` } }));
      worker.once('exit', (code) => resolve({ ready: false, error: { message: `the packet pump thread exited (code ${code}) before it was ready` } }));
    });
    if (!hello.ready) {
      port1.close();
      await worker.terminate();
      fs.closeSync(wakeFd);
      throw Object.assign(new Error(hello.error.message), { errno: hello.error.errno });
    }
    return new TunProxy(worker, port1, wakeFd, new Float64Array(counters), hello.created);
  }

  get alive(): boolean {
    return !this.dead;
  }

  setPeer(subnet: number, publicIp: number): Promise<void> {
    return this.command({ op: 'setPeer', subnet, publicIp }) as Promise<void>;
  }

  deletePeer(subnet: number): Promise<boolean> {
    return this.command({ op: 'deletePeer', subnet }) as Promise<boolean>;
  }

  /** Restores the device's mark, MTU, address and route; undefined if the device itself is gone. */
  repair(): Promise<string[] | undefined> {
    return this.command({ op: 'repair' }) as Promise<string[] | undefined>;
  }

  /** The pump's counters as of its last turn of the loop. */
  counters(): Counters {
    return Object.fromEntries(COUNTERS.map((name, i) => [name, this.shared[i]!])) as Counters;
  }

  /** Stops the pump and waits for its thread to end; with `remove`, the device goes too. */
  async stop(opts: { remove: boolean }): Promise<void> {
    try {
      if (!this.dead) await this.command({ op: 'stop', remove: opts.remove });
    } finally {
      // A pump that did not answer is ended; it leaves poll within POLL_TIMEOUT_MS.
      if (!this.dead) await this.worker.terminate();
      await this.exited;
      this.port.close();
      fs.closeSync(this.wakeFd);
    }
  }

  private command(body: CommandBody): Promise<unknown> {
    if (this.dead) return Promise.reject(new Error('the udp backend has stopped: its packet pump is not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the packet pump did not answer ${body.op} within ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.port.postMessage({ ...body, id });
      fs.writeSync(this.wakeFd, ONE);
    });
  }

  private lost(why: string): void {
    this.dead = true;
    for (const w of this.pending.values()) {
      clearTimeout(w.timer);
      w.reject(new Error(why));
    }
    this.pending.clear();
  }
}
