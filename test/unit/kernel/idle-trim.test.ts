/**
 * The kernel worker gives freed C heap back once it falls idle: one trim after a quiet spell,
 * never one per call, and never while calls keep coming.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { IdleTrim } from '../../../src/kernel/idle-trim.js';
import { mallocTrim } from '../../../src/kernel/libc.js';

test('a burst of calls is followed by one trim, once the worker has been idle', async () => {
  let trims = 0;
  const IDLE_MS = 200;
  const idle = new IdleTrim(() => trims++, IDLE_MS);
  // Calls 10 ms apart. On a loaded machine a 10 ms sleep can overrun; the gaps are measured, and
  // "no trim yet" is only claimed when every gap was indeed shorter than the idle time.
  let last = performance.now();
  let widestGap = 0;
  for (let i = 0; i < 10; i++) {
    idle.touch();
    await sleep(10);
    widestGap = Math.max(widestGap, performance.now() - last);
    last = performance.now();
  }
  if (widestGap < IDLE_MS) assert.equal(trims, 0, 'no trim while calls keep coming (each within the idle time of the last)');
  const during = trims;
  await sleep(2 * IDLE_MS);
  assert.equal(trims, during + 1, 'one trim after the idle time without a call');
  idle.touch();
  await sleep(2 * IDLE_MS);
  assert.equal(trims, during + 2, 'the next burst is trimmed after it too');
});

test('a pending trim does not keep the process alive', () => {
  const idle = new IdleTrim(() => assert.fail('the test ends before the trim is due'), 60_000);
  idle.touch();
  // node:test would wait for a referenced 60 s timer; reaching the end proves it is unref'd.
});

test('malloc_trim is reachable through libc and answers whether it released pages', () => {
  // Memory freed just before is what it gives back; either answer is valid, a throw is not.
  const held = Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024, 1));
  held.length = 0;
  assert.equal(typeof mallocTrim(), 'boolean');
});
