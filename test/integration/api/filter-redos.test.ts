/**
 * A client's filter pattern cannot stall the daemon (issue 10 item 7): a pattern that makes a
 * backtracking engine take exponential time is answered at once, and the daemon keeps serving
 * other requests while it is.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox } from '../../helpers/sandbox.js';
import { call } from './http.js';

// 28 a's then one other letter: JavaScript's RegExp needs about 10 s for (a+)+$ on it (doubling
// with each a), so the test stays bounded even against a backtracking daemon.
const TRAP = `${'a'.repeat(28)}x`;
const MATCHING = 'aaaa';

describe('filter patterns run in linear time', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create('r');
    await sb.berthOk('network', 'create', TRAP);
    await sb.berthOk('network', 'create', MATCHING);
  });
  after(async () => {
    await sb?.destroy();
  });

  test('(a+)+$ against a long name returns quickly and the daemon answers another request meanwhile', async () => {
    const filters = encodeURIComponent(JSON.stringify({ name: { '(a+)+$': true } }));
    const started = performance.now();
    const listing = call(sb.socket, 'GET', `/v1.41/networks?filters=${filters}`).then((r) => ({ r, ms: performance.now() - started }));
    // Sent while the listing is in flight: a blocked event loop would hold it until the listing ends.
    await new Promise((r) => setTimeout(r, 20));
    const pingStarted = performance.now();
    const ping = await call(sb.socket, 'GET', '/_ping');
    const pingMs = performance.now() - pingStarted;
    const { r, ms } = await listing;
    assert.equal(ping.status, 200);
    assert.ok(pingMs < 1000, `/_ping took ${pingMs.toFixed(0)} ms while the filter ran`);
    assert.equal(r.status, 200, r.text);
    assert.ok(ms < 2000, `the filtered listing took ${ms.toFixed(0)} ms`);
    // The pattern is still a pattern: it selects the name that matches, not the trap.
    assert.deepEqual((r.json as { Name: string }[]).map((n) => n.Name), [MATCHING]);
  });
});
