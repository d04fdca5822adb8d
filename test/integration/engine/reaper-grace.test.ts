/**
 * Issue 10 item 15: the reaper gives a started container whose attached client has not reported
 * its PID yet a grace period counted from the start, not from the container's creation. The
 * daemon runs with BERTH_REAP_GRACE_MS=3000 (a test hook) so the test takes seconds, not minutes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, eventually, sleep } from '../../helpers/sandbox.js';
import { call } from '../api/http.js';

const GRACE_MS = 3000;

describe('the reaper grace counts from start', () => {
  let sb: Sandbox;
  before(async () => {
    process.env.BERTH_REAP_GRACE_MS = String(GRACE_MS);
    sb = await Sandbox.create('g');
  });
  after(async () => {
    delete process.env.BERTH_REAP_GRACE_MS;
    await sb?.destroy();
  });

  // Through the API, not the CLI: a CLI start-up on a loaded machine can take longer than the
  // margin between the 2 s check and the 3 s grace.
  const state = async (name: string) => (JSON.parse((await call(sb.socket, 'GET', `/containers/${name}/json`)).text) as { State: { Status: string } }).State.Status;

  test('a container created long before an attached start is not reaped before its client reports the PID', async () => {
    const created = await call(sb.socket, 'POST', '/containers/create', { body: { name: 'late', cmd: [BUSYBOX, 'sleep', '60'] } });
    assert.equal(created.status, 201, created.text);
    await sleep(GRACE_MS + 500);
    const started = await call(sb.socket, 'POST', '/containers/late/start?detach=0');
    assert.equal(started.status, 200, started.text);
    // The reaper runs every second: two rounds well inside the grace from start.
    await sleep(2000);
    assert.equal(await state('late'), 'running', 'still within the grace counted from its start');
  });

  test('positive control: with no PID reported by the end of the grace, it is reaped', async () => {
    assert.ok(await eventually(async () => (await state('late')) === 'exited', GRACE_MS + 3000, 200), 'reaped after the grace');
  });
});
