/**
 * The namespace pool's bookkeeping, against a kernel stand-in that records its calls (the real
 * namespaces are in test/integration/engine/netns-pool.test.ts): an earlier daemon's leftovers
 * go first, the pool fills once nothing has been taken for a moment, a burst of takes refills only
 * after the burst, and closing removes what is still ready. --netns-pool is checked here too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetnsPool, parseNetnsPool } from '../../../src/engine/netns-pool.js';
import type { Kernel } from '../../../src/kernel/kernel.js';
import { createLogger } from '../../../src/log.js';

function fakeKernel() {
  const calls: { op: string; path: string }[] = [];
  const kernel = {
    async call(op: string, spec: { path: string }) {
      calls.push({ op, path: spec.path });
      return undefined;
    },
  };
  return { calls, kernel: kernel as unknown as Kernel };
}

const made = (calls: { op: string }[]) => calls.filter((c) => c.op === 'createSandbox').length;

/** A pool of `size` over a kernel stand-in, in a temporary directory removed after `fn`. */
async function withPool(size: number, fn: (t: { dir: string; pool: NetnsPool; calls: { op: string; path: string }[] }) => Promise<void>, before?: (dir: string) => void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pool-'));
  try {
    before?.(dir);
    const { calls, kernel } = fakeKernel();
    await fn({ dir, pool: new NetnsPool(kernel, dir, size, createLogger('error')), calls });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('leftovers go at open; the pool fills when quiet; takes hit until it is empty', () =>
  withPool(
    2,
    async ({ dir, pool, calls }) => {
      await pool.open();
      assert.deepEqual(calls[0], { op: 'deleteSandbox', path: path.join(dir, 'left-by-a-crash') });
      assert.equal(pool.take(), undefined, 'nothing ready before the first fill');
      await sleep(200);
      assert.equal(made(calls), 2);
      const a = pool.take();
      const b = pool.take();
      assert.ok(a && b && a !== b && a.startsWith(dir) && b.startsWith(dir));
      assert.equal(pool.take(), undefined);
      assert.deepEqual({ hits: pool.hits, misses: pool.misses }, { hits: 2, misses: 2 });
      await pool.close();
    },
    (dir) => fs.writeFileSync(path.join(dir, 'left-by-a-crash'), ''),
  ));

test('a burst of takes refills only once the burst is over', () =>
  withPool(2, async ({ pool, calls }) => {
    await pool.open();
    await sleep(200);
    assert.equal(made(calls), 2);
    // A take every 10 ms for 300 ms: the refill waits for 50 ms without one.
    for (let i = 0; i < 30; i++) {
      pool.take();
      await sleep(10);
    }
    assert.equal(made(calls), 2, 'no namespace made during the burst');
    await sleep(200);
    assert.equal(made(calls), 4, 'refilled after it');
    await pool.close();
    const deleted = calls.filter((c) => c.op === 'deleteSandbox').map((c) => c.path);
    assert.equal(deleted.length, 2, 'closing removes the two still ready');
  }));

test('a pool of 0 makes nothing and counts nothing', () =>
  withPool(0, async ({ pool, calls }) => {
    await pool.open();
    await sleep(100);
    assert.equal(pool.take(), undefined);
    assert.equal(made(calls), 0);
    assert.deepEqual({ hits: pool.hits, misses: pool.misses }, { hits: 0, misses: 0 });
  }));

test('--netns-pool takes a whole number from 0 to 64', () => {
  for (const ok of ['0', '2', '64']) assert.equal(parseNetnsPool(ok), Number(ok));
  for (const bad of ['', '-1', '1.5', '65', 'lots', ' 2']) assert.throws(() => parseNetnsPool(bad), /--netns-pool .*: give a whole number of namespaces from 0 \(none\) to 64/);
});
