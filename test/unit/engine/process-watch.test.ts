/**
 * The reaper's process watch (runtime/process-watch.ts) against real processes this test starts
 * (`sleep`, killed by PID at the end): a live process is tracked and not reported; once it exits,
 * one poll reports it; a recorded start time that is not the process's, and a PID with no
 * process, are refused at once; past the tick's budget of new pidfds, a process is probed instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { ProcessWatch } from '../../../src/runtime/process-watch.js';
import { exitStatus, processStartTime } from '../../../src/runtime/process.js';

async function withSleepers(n: number, fn: (children: ChildProcess[]) => Promise<void>): Promise<void> {
  const children = Array.from({ length: n }, () => spawn('sleep', ['30'], { stdio: 'ignore' }));
  try {
    await Promise.all(children.map((c) => once(c, 'spawn')));
    await fn(children);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

test('a tracked process is reported once it exits, and only then', () =>
  withSleepers(2, async ([a, b]) => {
    const watch = new ProcessWatch();
    try {
      for (const [id, c] of [['a', a!], ['b', b!]] as const) {
        assert.equal(watch.track(id, c.pid!, processStartTime(c.pid!)!, false), true, `${id} is alive`);
      }
      assert.deepEqual(watch.exited(), [], 'nothing has exited yet (positive control for the poll below)');
      a!.kill('SIGKILL');
      await once(a!, 'exit');
      assert.deepEqual(watch.exited(), ['a'], 'the poll reports the one that exited');
      assert.deepEqual(watch.exited(), [], 'once');
      assert.equal(watch.track('b', b!.pid!, processStartTime(b!.pid!)!, false), true, 'b is still tracked');
    } finally {
      watch.close();
    }
  }));

test('a start time that is not the process’s, or a PID with no process, is refused', () =>
  withSleepers(1, async ([c]) => {
    const watch = new ProcessWatch();
    try {
      const start = processStartTime(c!.pid!)!;
      assert.equal(watch.track('reused', c!.pid!, String(Number(start) + 1), false), false, 'another process now has this PID');
      assert.equal(watch.track('same', c!.pid!, start, false), true, 'positive control: the recorded start time');
      c!.kill('SIGKILL');
      await once(c!, 'exit');
      // Node has reaped it: the PID names no process at all now.
      assert.equal(watch.track('gone', c!.pid!, start, true), false);
    } finally {
      watch.close();
    }
  }));

test('retain stops watching the others', () =>
  withSleepers(2, async ([a, b]) => {
    const watch = new ProcessWatch();
    try {
      watch.track('a', a!.pid!, null, false);
      watch.track('b', b!.pid!, null, false);
      watch.retain(new Set(['b']));
      a!.kill('SIGKILL');
      b!.kill('SIGKILL');
      await Promise.all([once(a!, 'exit'), once(b!, 'exit')]);
      assert.deepEqual(watch.exited(), ['b'], 'a was no longer watched');
    } finally {
      watch.close();
    }
  }));

test("past the tick's budget of new pidfds a process is probed, and gets its pidfd at a later tick", () =>
  withSleepers(2, async ([a, b]) => {
    const watch = new ProcessWatch(1);
    try {
      watch.beginTick();
      assert.equal(watch.track('a', a!.pid!, null, true), true, 'a gets the one pidfd of this tick');
      assert.equal(watch.track('b', b!.pid!, null, true), true, 'b is probed: alive');
      b!.kill('SIGKILL');
      await once(b!, 'exit');
      assert.deepEqual(watch.exited(), [], 'b has no pidfd, so the poll cannot report it');
      watch.beginTick();
      assert.equal(watch.track('b', b!.pid!, null, true), false, 'the next tick finds it gone');
      assert.equal(watch.track('a', a!.pid!, null, true), true, 'a still tracked');
    } finally {
      watch.close();
    }
  }));

test('an exit status is the code, or 128 + the signal that ended the process, as a shell reports it', () => {
  assert.equal(exitStatus(0, null), 0);
  assert.equal(exitStatus(3, null), 3);
  assert.equal(exitStatus(null, 'SIGPIPE'), 141, 'a command whose output went to `head`');
  assert.equal(exitStatus(null, 'SIGKILL'), 137);
  assert.equal(exitStatus(null, null), 143, 'no code and no signal: as if terminated');
});
