/** The event stream's times: what the daemon reads, what the CLI sends, how `docker events` prints them. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cliTimestamp, formatEventTime, parseEventTime, toUnixSeconds } from '../../../src/api/event-time.js';
import { isBerthError } from '../../../src/errors.js';

const refused = (pattern: RegExp) => (err: unknown) => isBerthError(err) && err.httpStatus === 400 && pattern.test(err.message);

describe('event times', () => {
  test('the daemon reads Unix seconds with up to nine fraction digits, as the docker CLI sends them', () => {
    assert.equal(parseEventTime('1765000000', 'since'), 1765000000_000000000n);
    assert.equal(parseEventTime('1765000000.5', 'since'), 1765000000_500000000n);
    assert.equal(parseEventTime('1765000000.123456789', 'until'), 1765000000_123456789n);
    // Digits past the nanosecond are dropped, not rounded into the next one.
    assert.equal(parseEventTime('1765000000.1234567899', 'until'), 1765000000_123456789n);
  });

  test('the daemon reads RFC 3339 with its zone, to the nanosecond', () => {
    assert.equal(parseEventTime('2026-12-06T05:30:01Z', 'since'), BigInt(Date.UTC(2026, 11, 6, 5, 30, 1)) * 1_000_000n);
    assert.equal(parseEventTime('2026-12-06T05:30:01.123456789Z', 'since'), BigInt(Date.UTC(2026, 11, 6, 5, 30, 1)) * 1_000_000n + 123_456_789n);
    assert.equal(parseEventTime('2026-12-06T07:30:01+02:00', 'since'), parseEventTime('2026-12-06T05:30:01Z', 'since'));
    assert.equal(parseEventTime('2026-12-06T00:30:01-05:00', 'since'), parseEventTime('2026-12-06T05:30:01Z', 'since'));
  });

  test('the daemon refuses anything else with a 400 that shows the accepted forms', () => {
    assert.throws(() => parseEventTime('yesterday', 'since'), refused(/^invalid since "yesterday": give Unix seconds .* or an RFC 3339 time/));
    assert.throws(() => parseEventTime('10m', 'until'), refused(/^invalid until "10m"/));
    assert.throws(() => parseEventTime('2026-12-06T05:30:01', 'since'), refused(/needs a zone/));
    assert.throws(() => parseEventTime('2026-02-30T05:30:01Z', 'since'), refused(/no such date/));
    assert.throws(() => parseEventTime('-5', 'since'), refused(/invalid since/));
  });

  test('the CLI sends durations as whole seconds before now, as Docker\'s CLI does', () => {
    const now = Date.UTC(2026, 11, 6, 5, 30, 0, 700);
    assert.equal(cliTimestamp('10m', '--since', now), String(Math.floor(now / 1000) - 600));
    assert.equal(cliTimestamp('1h30m', '--since', now), String(Math.floor(now / 1000) - 5400));
    assert.equal(cliTimestamp('1.5s', '--since', now), String(Math.floor((now - 1500) / 1000)));
  });

  test('the CLI passes Unix seconds through, and turns dates into seconds.nanoseconds', () => {
    assert.equal(cliTimestamp('1765000000', '--since'), '1765000000.000000000');
    assert.equal(cliTimestamp('1765000000.25', '--since'), '1765000000.250000000');
    assert.equal(cliTimestamp('0', '--since'), '0.000000000');
    assert.equal(cliTimestamp('2026-12-06T05:30:01.5Z', '--since'), `${Date.UTC(2026, 11, 6, 5, 30, 1) / 1000}.500000000`);
    assert.equal(cliTimestamp('2026-12-06T05:30Z', '--since'), `${Date.UTC(2026, 11, 6, 5, 30) / 1000}.000000000`);
    // Without a zone, the local one (as Docker's CLI).
    assert.equal(cliTimestamp('2026-12-06', '--until'), `${new Date(2026, 11, 6).getTime() / 1000}.000000000`);
    assert.equal(cliTimestamp('2026-12-06T05:30:01', '--until'), `${new Date(2026, 11, 6, 5, 30, 1).getTime() / 1000}.000000000`);
    assert.throws(() => cliTimestamp('last tuesday', '--since'), refused(/^invalid --since "last tuesday": give a duration/));
  });

  test('times print as Docker\'s RFC3339NanoFixed, nine fraction digits always', () => {
    const nanos = BigInt(Date.UTC(2026, 11, 6, 5, 30, 1)) * 1_000_000n + 123_000_000n;
    const printed = formatEventTime(nanos);
    assert.match(printed, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.123000000(Z|[+-]\d{2}:\d{2})$/);
    // Whatever the local zone, the printed time reads back as the same instant.
    assert.equal(parseEventTime(printed, 'since'), nanos);
    if (new Date().getTimezoneOffset() === 0) assert.equal(printed, '2026-12-06T05:30:01.123000000Z');
    assert.equal(toUnixSeconds(nanos), '1796535001.123000000');
  });
});
