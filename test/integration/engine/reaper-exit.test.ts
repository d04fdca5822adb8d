/**
 * Issue 18: the reaper watches each reported process through a pidfd (runtime/process-watch.ts).
 * A container whose process an attached client started and reported (so not the daemon's child)
 * is marked exited soon after that process dies; one whose process lives stays running (the
 * positive control, through the same reaper ticks).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { BUSYBOX, Sandbox, eventually, sleep } from '../../helpers/sandbox.js';
import { call } from '../api/http.js';

describe('the reaper and reported processes', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create('rx');
  });
  after(async () => {
    await sb?.destroy();
  });

  const state = async (name: string) => (JSON.parse((await call(sb.socket, 'GET', `/containers/${name}/json`)).text) as { State: { Status: string } }).State.Status;

  /** Network only (detach=0), then a process started here in its namespace and reported, as `berth run` does. */
  async function startReported(name: string) {
    const created = await call(sb.socket, 'POST', '/containers/create?start=1&detach=0', { body: { name, cmd: [BUSYBOX, 'sleep', '60'] } });
    assert.equal(created.status, 201, created.text);
    const proc = sb.spawnIn(await sb.netnsOf(name), BUSYBOX, ['sleep', '60']);
    await once(proc, 'spawn');
    const reported = await call(sb.socket, 'POST', `/containers/${name}/pid`, { body: { pid: proc.pid } });
    assert.equal(reported.status, 204, reported.text);
    return proc;
  }

  test('a reported process that dies marks its container exited; a live one keeps it running', async () => {
    const live = await startReported('lives');
    const dying = await startReported('dies');
    // Two reaper ticks and more: both processes were watched and both are alive.
    await sleep(2500);
    assert.deepEqual([await state('lives'), await state('dies')], ['running', 'running']);
    dying.kill('SIGKILL');
    await once(dying, 'exit');
    assert.ok(await eventually(async () => (await state('dies')) === 'exited', 5000, 100), 'reaped within a few ticks of the exit');
    assert.equal(await state('lives'), 'running', 'the other is untouched');
    live.kill('SIGKILL');
    assert.ok(await eventually(async () => (await state('lives')) === 'exited', 5000, 100));
  });
});
