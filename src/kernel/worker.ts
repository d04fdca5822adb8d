/**
 * The kernel worker thread. All namespace switching happens here, on one dedicated thread, so
 * setns never affects the event loop's thread or libuv's pool, and slow kernel calls (rtnl_lock
 * waits, link deletes) never stall the API. Requests are handled one at a time, in order.
 */
import { parentPort } from 'node:worker_threads';
import * as ops from './ops.js';
import { IdleTrim } from './idle-trim.js';

type Op = (spec: never) => unknown;
const table = ops as unknown as Record<string, Op>;

export interface KernelRequest {
  id: number;
  op: string;
  spec: unknown;
}

export type KernelReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { message: string; errno?: number; name: string } };

const idleTrim = new IdleTrim();

parentPort?.on('message', (req: KernelRequest) => {
  let reply: KernelReply;
  try {
    const fn = table[req.op];
    if (typeof fn !== 'function') throw new Error(`unknown kernel operation ${req.op}`);
    reply = { id: req.id, ok: true, value: fn(req.spec as never) };
  } catch (err) {
    const e = err as Error & { errno?: number };
    reply = { id: req.id, ok: false, error: { message: e.message, errno: e.errno, name: e.name } };
  }
  parentPort!.postMessage(reply);
  idleTrim.touch();
});
