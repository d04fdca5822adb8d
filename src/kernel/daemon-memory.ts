/**
 * The daemon's memory settings: a long-lived process with three V8 isolates (main, kernel and DNS
 * threads) on the host's own C heap.
 *
 * - V8 doubles an isolate's young generation whenever many objects survive a scavenge, up to 16 MB
 *   semi-spaces, and keeps the pages while the process is busy. A burst of setups does that on the
 *   main thread: the state each setup keeps looks like survival. Growth factor 1 keeps the first
 *   1 MB semi-spaces (or one doubling, if the main thread is busy while a worker starts). At 1,000
 *   containers that is ~30 MB less resident, for no cost above this machine's noise (3 × 200
 *   back-to-back setups; +0.1–0.4 ms p50 in two runs with 0.4 s pauses).
 *   The flag has to be set before the CLI's modules load (bin/berth does it), and again after each
 *   worker isolate starts: V8 raises the growth factor back to its minimum of 2 whenever it
 *   configures a new heap, for every isolate of the process.
 * - glibc's malloc gives each thread that allocates an arena of its own (up to 8 per core), each
 *   fragmenting on its own; two are enough for a process whose threads mostly wait (~8 MB less
 *   resident at 1,000 containers).
 */
import { setFlagsFromString } from 'node:v8';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { setMallocArenaMax } from './libc.js';

const MALLOC_ARENAS = 2;

/**
 * The kernel thread's young generation, in MB (two 1 MB semi-spaces and a large-object space).
 * Left to itself V8 grows the worker's new space to 8 MB during a burst of setups and never gives
 * the pages back; the worker's objects live for one call, so the small one collects them as well
 * and keeps ~6 MB less resident (measured at 300 containers).
 */
export const KERNEL_WORKER_YOUNG_GENERATION_MB = 3;

let keptSmall = false;

function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** The daemon's settings, for the rest of the process's life: called once, before anything else loads. */
export function limitDaemonMemory(): void {
  keptSmall = true;
  keepYoungGenerationSmall();
  setMallocArenaMax(MALLOC_ARENAS);
}

/**
 * A worker thread; in the daemon, the young-generation setting is restored once its isolate runs.
 * berth's threads hand descriptors to each other and close what they were handed (a listener's
 * socket, a namespace), which Node's tracking of a worker's own descriptors reports as a warning
 * on every such close: not tracked.
 */
export function startWorker(url: URL, options: WorkerOptions): Worker {
  const worker = new Worker(url, { trackUnmanagedFds: false, ...options });
  if (keptSmall) worker.once('online', keepYoungGenerationSmall);
  return worker;
}
