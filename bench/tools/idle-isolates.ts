/**
 * The floor under the daemon's memory in §2: a Node process laid out as the daemon is (its main
 * thread plus two worker threads, the kernel and DNS threads, with the daemon's memory settings)
 * that runs no berth code and holds nothing. Prints its RSS once the workers have started and
 * settled, then exits.
 */
import * as fs from 'node:fs';
import { isMainThread, parentPort } from 'node:worker_threads';
import { KERNEL_WORKER_YOUNG_GENERATION_MB, limitDaemonMemory, startWorker } from '../../src/kernel/daemon-memory.js';
import { num, parseArgs } from './args.js';

if (isMainThread) {
  const args = parseArgs(process.argv.slice(2));
  const settleMs = num(args, 'settle', 1000);
  limitDaemonMemory();
  const self = new URL(import.meta.url);
  // As the daemon starts them: the kernel thread with its young-generation limit, the DNS thread without.
  const workers = [startWorker(self, { resourceLimits: { maxYoungGenerationSizeMb: KERNEL_WORKER_YOUNG_GENERATION_MB } }), startWorker(self, {})];
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]);
  process.stdout.write(`${JSON.stringify({ rssKb, threads: workers.length + 1 })}\n`);
  process.exit(0);
} else {
  parentPort!.postMessage('up');
  setInterval(() => undefined, 1 << 30);
}
