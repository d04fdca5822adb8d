/**
 * The namespace pool's bookkeeping, against a kernel stand-in that records its calls (the real
 * namespaces are in test/integration/engine/netns-pool.test.ts): an earlier build's pool files
 * go first, the pool fills once nothing has been taken for a moment, a burst of takes refills only
 * after the burst, and closing drops what is still ready. --netns-pool is checked here too.
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

type Call = { op: string; path?: string; fd?: number };

/** Records each call; a pooled namespace's descriptor is the next number from 100. */
function fakeKernel() {
  const calls: Call[] = [];
  let next = 100;
  const kernel = {
    async call(op: string, spec: { path?: string; fd?: number } = {}) {
      calls.push({ op, ...spec });
      return op === 'createPooledSandbox' ? next++ : undefined;
    },
  };
  return { calls, kernel: kernel as unknown as Kernel };
}

const made = (calls: Call[]) => calls.filter((c) => c.op === 'createPooledSandbox').length;

/** A pool of `size` over a kernel stand-in, its legacy directory in a temporary one removed after `fn`. */
async function withPool(size: number, fn: (t: { dir: string; pool: NetnsPool; calls: Call[] }) => Promise<void>, before?: (dir: string) => void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pool-'));
  try {
    before?.(dir);
    const { calls, kernel } = fakeKernel();
    await fn({ dir, pool: new NetnsPool(kernel, path.join(dir, 'netns-pool'), size, createLogger('error')), calls });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test("an earlier build's pool files go at open; the pool fills when quiet; takes hit until it is empty", () =>
  withPool(
    2,
    async ({ dir, pool, calls }) => {
      await pool.open();
      assert.deepEqual(calls[0], { op: 'deleteSandbox', path: path.join(dir, 'netns-pool', 'left-by-a-crash') });
      assert.equal(fs.existsSync(path.join(dir, 'netns-pool')), false, 'and their directory');
      assert.equal(pool.take(), undefined, 'nothing ready before the first fill');
      await sleep(200);
      assert.equal(made(calls), 2);
      assert.deepEqual([pool.take(), pool.take()], [100, 101], 'the descriptors the kernel made, oldest first');
      assert.equal(pool.take(), undefined);
      assert.deepEqual({ hits: pool.hits, misses: pool.misses }, { hits: 2, misses: 2 });
      await pool.close();
      assert.equal(calls.filter((c) => c.op === 'releasePooledSandbox').length, 0, 'nothing left to drop');
    },
    (dir) => {
      fs.mkdirSync(path.join(dir, 'netns-pool'));
      fs.writeFileSync(path.join(dir, 'netns-pool', 'left-by-a-crash'), '');
    },
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
    const dropped = calls.filter((c) => c.op === 'releasePooledSandbox').map((c) => c.fd);
    assert.deepEqual(dropped, [102, 103], 'closing drops the two still ready');
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
