/**
 * Issue 15's event stream against a sandbox daemon: real networks and containers go through their
 * lives while clients watch `GET /events` (the CLI's line reader) and `berth events`; replay with
 * `since`/`until`, filters with a matching event in the same stream as the control, and the errors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient } from '../../../src/api/client.js';
import { toUnixSeconds } from '../../../src/api/event-time.js';
import { streamLines } from '../../../src/api/stream-client.js';
import { BUSYBOX, Sandbox, eventually } from '../../helpers/sandbox.js';
import { call } from './http.js';

interface Msg {
  status?: string;
  id?: string;
  from?: string;
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: string;
  time: number;
  timeNano: number;
}

const seconds = (m: Msg) => toUnixSeconds(BigInt(String(m.timeNano)));
const q = (filters: unknown) => `filters=${encodeURIComponent(JSON.stringify(filters))}`;

describe('GET /events and berth events', () => {
  let sb: Sandbox;
  let client: ApiClient;
  const open: { close(): void }[] = [];
  /** What the first test saw, for the replay tests. */
  let lifecycle: Msg[] = [];
  let netId = '';
  let cid = '';

  const subscribe = async (query = '') => {
    const lines: Msg[] = [];
    const s = streamLines(client, `/events${query ? `?${query}` : ''}`, (l) => lines.push(JSON.parse(l) as Msg));
    open.push(s);
    await s.ready;
    return { ...s, lines };
  };

  before(async () => {
    sb = await Sandbox.create('ev');
    client = new ApiClient(`unix://${sb.socket}`);
  });
  after(async () => {
    for (const s of open) s.close();
    client?.close();
    await sb?.destroy();
  });

  test('a network and a container through their lives: every event, in order, with Docker\'s fields', async () => {
    const s = await subscribe();
    netId = (await sb.berthOk('network', 'create', 'evnet')).trim();
    await sb.berthOk('run', '-d', '--name', 'evc', '--network', 'evnet', '--', BUSYBOX, 'sleep', '3600');
    cid = (await sb.inspect('evc')).Id;
    await sb.berthOk('network', 'disconnect', 'evnet', 'evc');
    await sb.berthOk('rm', '-f', 'evc');
    await sb.berthOk('network', 'rm', 'evnet');
    assert.ok(await eventually(() => s.lines.some((m) => m.Action === 'destroy' && m.Actor.ID === netId), 5000), 'network destroy arrived');
    s.close();
    await s.done;

    const name = (id: string) => (id === netId ? 'NET' : id === cid ? 'CTR' : id);
    // Docker's order for a run: create, the network connects of its start, start.
    assert.deepEqual(
      s.lines.map((m) => `${m.Type} ${m.Action} ${name(m.Actor.ID)}`),
      ['network create NET', 'container create CTR', 'network connect NET', 'container start CTR', 'network disconnect NET', 'container die CTR', 'container destroy CTR', 'network destroy NET'],
    );
    const [create, ccreate, connect, start, disconnect, die, destroy, ndestroy] = s.lines as [Msg, Msg, Msg, Msg, Msg, Msg, Msg, Msg];
    assert.deepEqual(create.Actor.Attributes, { name: 'evnet', type: 'bridge' });
    assert.deepEqual(ndestroy.Actor.Attributes, { name: 'evnet', type: 'bridge' });
    for (const m of [connect, disconnect]) assert.deepEqual(m.Actor.Attributes, { container: cid, containerName: 'evc', name: 'evnet', type: 'bridge' });
    for (const m of [ccreate, start, destroy]) assert.deepEqual(m.Actor.Attributes, { name: 'evc' });
    assert.equal(die.Actor.Attributes.name, 'evc');
    assert.match(die.Actor.Attributes.exitCode ?? '', /^\d+$/);
    for (const m of s.lines) {
      assert.equal(m.scope, 'local');
      assert.equal(BigInt(m.time), BigInt(String(m.timeNano)) / 1_000_000_000n);
      assert.ok(Math.abs(m.timeNano / 1e6 - Date.now()) < 120_000, 'a time of now');
      // The legacy fields Docker (API < 1.52) sends for container events only; berth's containers have no image, so no `from`.
      if (m.Type === 'container') {
        assert.equal(m.status, m.Action);
        assert.equal(m.id, m.Actor.ID);
      } else assert.ok(!('status' in m) && !('id' in m));
      assert.ok(!('from' in m));
    }
    for (let i = 1; i < s.lines.length; i++) assert.ok(s.lines[i]!.timeNano >= s.lines[i - 1]!.timeNano, 'times never go back');
    lifecycle = s.lines;
  });

  test('since and until replay exactly the past events between them, and the answer ends', async () => {
    assert.ok(lifecycle.length > 0, 'needs the first test');
    const first = lifecycle[0]!;
    const last = lifecycle.at(-1)!;
    const replay = await call(sb.socket, 'GET', `/events?since=${seconds(first)}&until=${seconds(last)}`);
    assert.equal(replay.status, 200);
    assert.match(String(replay.headers['content-type']), /^application\/json/);
    assert.deepEqual(replay.text.trim().split('\n').map((l) => JSON.parse(l) as Msg), lifecycle);
    // RFC 3339 bounds too, and bounds are inclusive: a nanosecond later drops the first event.
    const rfc = (m: Msg) => new Date(Math.round(m.timeNano / 1e6)).toISOString();
    const byDate = await call(sb.socket, 'GET', `/v1.41/events?since=${rfc(first)}&until=${rfc(last)}`);
    assert.equal(byDate.text.trim().split('\n').length, lifecycle.length);
    const after = await call(sb.socket, 'GET', `/events?since=${toUnixSeconds(BigInt(String(first.timeNano)) + 1n)}&until=${seconds(last)}`);
    assert.deepEqual(after.text.trim().split('\n').map((l) => (JSON.parse(l) as Msg).timeNano), lifecycle.slice(1).map((m) => m.timeNano));
    // A filter applies to the replay as well.
    const onlyNetwork = await call(sb.socket, 'GET', `/events?since=${seconds(first)}&until=${seconds(last)}&${q({ type: ['network'], event: ['connect'] })}`);
    assert.deepEqual(onlyNetwork.text.trim().split('\n').map((l) => (JSON.parse(l) as Msg).Action), ['connect']);
  });

  test('berth events prints docker events\' lines, or JSON with --format json', async () => {
    const [first, last] = [lifecycle[0]!, lifecycle.at(-1)!];
    const out = (await sb.berthOk('events', '--since', seconds(first), '--until', seconds(last))).trim().split('\n');
    assert.equal(out.length, lifecycle.length);
    const connectLine = out.find((l) => l.includes(' network connect '));
    assert.match(connectLine ?? '', new RegExp(`^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{9}(Z|[+-]\\d{2}:\\d{2}) network connect ${netId} \\(container=${cid}, containerName=evc, name=evnet, type=bridge\\)$`));
    assert.match(out.find((l) => l.includes(' container die ')) ?? '', new RegExp(` container die ${cid} \\(exitCode=\\d+, name=evc\\)$`));
    const json = (await sb.berthOk('events', '--since', seconds(first), '--until', seconds(last), '--format', 'json', '--filter', 'type=container')).trim().split('\n');
    assert.deepEqual(json.map((l) => JSON.parse(l) as Msg), lifecycle.filter((m) => m.Type === 'container'));
  });

  test('berth events with a future --until shows the live events and exits by itself', async () => {
    // A wide window: on a loaded machine starting two CLIs and creating a network takes seconds.
    const WINDOW_MS = 8000;
    const started = Date.now();
    const watching = sb.berth('events', '--since', String(started / 1000), '--until', String((started + WINDOW_MS) / 1000), '--filter', 'type=network');
    await new Promise((r) => setTimeout(r, 300));
    const lateId = (await sb.berthOk('network', 'create', 'evlate')).trim();
    assert.ok(Date.now() - started < WINDOW_MS, 'the network was made inside the window');
    const r = await watching;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - started >= WINDOW_MS - 100 && Date.now() - started < WINDOW_MS + 15_000, `exited after until (${Date.now() - started} ms)`);
    assert.match(r.stdout, new RegExp(` network create ${lateId} \\(name=evlate, type=bridge\\)\\n$`));
    await sb.berthOk('network', 'rm', 'evlate');
  });

  test('filters: a filtered-out event never arrives, while the matching one in the same stream does', async () => {
    await sb.berthOk('network', 'create', 'fnet-a');
    await sb.berthOk('network', 'create', 'fnet-b');
    const connects = await subscribe(q({ type: ['network'], event: ['connect'], network: ['fnet-a'] }));
    const ofContainer = await subscribe(q({ container: ['fc'] }));
    await sb.berthOk('run', '-d', '--name', 'fother', '--network', 'fnet-a', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'fc', '--network', 'fnet-b', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('network', 'connect', 'fnet-a', 'fc');
    const fc = (await sb.inspect('fc')).Id;
    const fother = (await sb.inspect('fother')).Id;
    const isLast = (m: Msg) => m.Action === 'connect' && m.Actor.Attributes.container === fc && m.Actor.Attributes.name === 'fnet-a';
    // The positive control: the last action's event reaches both streams; everything before it was delivered already.
    assert.ok(await eventually(() => connects.lines.some(isLast) && ofContainer.lines.some(isLast), 5000), 'the matching connect arrived');
    const show = (m: Msg) => `${m.Type} ${m.Action} ${m.Actor.Attributes.name}${m.Actor.Attributes.container ? ` ${m.Actor.Attributes.container === fc ? 'fc' : 'other'}` : ''}`;
    // fother's connect to fnet-a is a connect to fnet-a too: it must be there (container filter absent here).
    assert.deepEqual(connects.lines.map(show), ['network connect fnet-a other', 'network connect fnet-a fc']);
    assert.equal(connects.lines[0]!.Actor.Attributes.container, fother);
    assert.deepEqual(ofContainer.lines.map(show), ['container create fc', 'network connect fnet-b fc', 'container start fc', 'network connect fnet-a fc']);
    await sb.berthOk('rm', '-f', 'fc', 'fother');
  });

  test('bad filters and times: a 400 with Docker\'s message, and berth events exits 1 with it', async () => {
    const refused = async (query: string, pattern: RegExp) => {
      const r = await call(sb.socket, 'GET', `/events?${query}`);
      assert.equal(r.status, 400, `${query}: ${r.text}`);
      assert.match((r.json as { message: string }).message, pattern);
    };
    await refused(`filters=${encodeURIComponent('{"type":')}`, /^invalid filters: \{"type": is not JSON/);
    await refused(q({ bogus: ['x'] }), /^invalid filter 'bogus'$/);
    await refused(q({ type: ['netwrok'] }), /^invalid filter 'type=netwrok'/);
    await refused('since=yesterday', /^invalid since "yesterday"/);
    await refused('since=20&until=10', /^`since` time \(20\) cannot be after `until` time \(10\)$/);
    // The positive control: the same request with a valid filter streams (and ends, until being past).
    const good = await call(sb.socket, 'GET', `/events?since=1&until=2&${q({ type: ['network'] })}`);
    assert.equal(good.status, 200);

    const bad = await sb.berth('events', '--filter', 'bogus=1');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^Error response from daemon: invalid filter 'bogus'$/m);
    const noEquals = await sb.berth('events', '--filter', 'network');
    assert.equal(noEquals.code, 1);
    assert.match(noEquals.stderr, /invalid filter "network": expected key=value/);
    const badTime = await sb.berth('events', '--since', 'last tuesday');
    assert.equal(badTime.code, 1);
    assert.match(badTime.stderr, /invalid --since "last tuesday": give a duration/);
    const badFormat = await sb.berth('events', '--format', '{{.ID}}');
    assert.equal(badFormat.code, 1);
    assert.match(badFormat.stderr, /unsupported --format/);
  });
});
