/**
 * The event stream over a real HTTP server on a unix socket, with a real EngineEvents and the
 * CLI's line reader: replay then live, `until` ending the answer, and no subscription left behind
 * when the client goes away.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApiClient } from '../../../src/api/client.js';
import { parseEventQuery, streamEvents } from '../../../src/api/events-routes.js';
import { nowNanos, toUnixSeconds } from '../../../src/api/event-time.js';
import { streamLines } from '../../../src/api/stream-client.js';
import { EngineEvents } from '../../../src/engine/events.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('event stream', () => {
  let dir: string;
  let server: http.Server;
  let client: ApiClient;
  const events = new EngineEvents();
  const listeners = () => (events as unknown as { emitter: { listenerCount(n: string): number } }).emitter.listenerCount('event');

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-events-'));
    const socketPath = path.join(dir, 's.sock');
    server = http.createServer((req, res) => {
      const q = parseEventQuery(new URL(`http://x${req.url}`).searchParams);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      streamEvents(events, q, res);
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    client = new ApiClient(`unix://${socketPath}`);
  });
  after(() => {
    server.closeAllConnections();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const open = (query: string) => {
    const lines: { Action: string; Actor: { ID: string } }[] = [];
    const s = streamLines(client, `/events${query}`, (l) => lines.push(JSON.parse(l)));
    return { ...s, lines, ids: () => lines.map((l) => l.Actor.ID) };
  };

  test('live only without a time bound; replay then live with since; closing unsubscribes', async () => {
    const t0 = nowNanos();
    events.emit('network', 'create', 'n-past', { name: 'past', type: 'bridge' });
    const live = open('');
    const replaying = open(`?since=${toUnixSeconds(t0)}`);
    await Promise.all([live.ready, replaying.ready]);
    assert.equal(listeners(), 2);
    events.emit('network', 'create', 'n-live', { name: 'live', type: 'bridge' });
    await sleep(100);
    assert.deepEqual(live.ids(), ['n-live']);
    assert.deepEqual(replaying.ids(), ['n-past', 'n-live']);
    live.close();
    replaying.close();
    await Promise.all([live.done, replaying.done]);
    for (let i = 0; i < 50 && listeners() > 0; i++) await sleep(20);
    assert.equal(listeners(), 0, 'every subscription ended with its client');
  });

  test('until in the past: only past events in the range, and the answer ends at once', async () => {
    const from = nowNanos();
    await sleep(5);
    events.emit('container', 'start', 'c-in', { name: 'in' });
    await sleep(5);
    const to = nowNanos();
    await sleep(5);
    events.emit('container', 'die', 'c-out', { name: 'out', exitCode: '0' });
    const s = open(`?since=${toUnixSeconds(from)}&until=${toUnixSeconds(to)}`);
    await s.done;
    assert.deepEqual(s.ids(), ['c-in']);
    assert.equal(listeners(), 0);
  });

  test('until in the future: live events until then, then the answer ends by itself', async () => {
    const until = nowNanos() + 400_000_000n;
    const s = open(`?until=${toUnixSeconds(until)}&filters=${encodeURIComponent('{"type":["network"]}')}`);
    await s.ready;
    events.emit('container', 'create', 'c-filtered', { name: 'f' });
    events.emit('network', 'destroy', 'n-kept', { name: 'k', type: 'bridge' });
    const started = Date.now();
    await s.done;
    assert.ok(Date.now() - started < 2000, 'ended near until');
    assert.ok(nowNanos() >= until, 'not before until');
    // `until` alone replays every kept event up to it, as Docker does: the network events of the tests before.
    assert.deepEqual(s.ids().slice(-1), ['n-kept']);
    assert.ok(!s.ids().includes('c-filtered'));
    events.emit('network', 'create', 'n-after', { name: 'a', type: 'bridge' });
    assert.equal(listeners(), 0);
  });
});
