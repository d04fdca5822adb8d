/**
 * A dead kernel worker never leaves calls hanging: calls in flight are rejected with an error
 * that says so, and the next call gets a new worker. A stand-in worker (same protocol) can be
 * told to die.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Kernel } from '../../../src/kernel/kernel.js';

const STAND_IN = `
import { parentPort } from 'node:worker_threads';
parentPort.on('message', (req) => {
  if (req.op === 'boom') process.exit(3);
  if (req.op === 'hang') return;
  parentPort.postMessage({ id: req.id, ok: true, value: 'pong' });
});
`;

function standIn(): URL {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'berth-kernel-')), 'worker.mjs');
  fs.writeFileSync(file, STAND_IN);
  return pathToFileURL(file);
}

const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms))]);

test('calls in flight when the worker dies are rejected, and later calls get a new worker', async () => {
  const kernel = new Kernel(standIn());
  try {
    assert.equal(await kernel.call('ping'), 'pong');
    const inFlight = kernel.call('hang' as 'ping');
    const dying = kernel.call('boom' as 'ping');
    await assert.rejects(within(dying, 5000), /kernel worker thread exited \(code 3\)/);
    await assert.rejects(within(inFlight, 5000), /kernel worker thread exited \(code 3\)/, 'the other call in flight too');
    assert.equal(await within(kernel.call('ping'), 5000), 'pong', 'a new worker answers');
  } finally {
    await kernel.close();
  }
});

test('calls after close are rejected at once', async () => {
  const kernel = new Kernel(standIn());
  await kernel.close();
  await assert.rejects(within(kernel.call('ping'), 1000), /after the kernel was closed/);
});
