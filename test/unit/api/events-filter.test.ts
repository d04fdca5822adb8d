/** Which events a filtered `GET /events` keeps (Docker's daemon/events/filter.go), and the wire shape of one event. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_FILTERS, checkEventFilters, eventMatcher } from '../../../src/engine/event-filter.js';
import type { BerthEvent } from '../../../src/engine/events.js';
import { parseEventQuery, toDockerMessage } from '../../../src/api/events-routes.js';
import { formatEvent } from '../../../src/cli/commands/events.js';
import { parseFilters } from '../../../src/api/schemas.js';
import { isBerthError } from '../../../src/errors.js';

const NET = 'a1b2c3d4e5f6'.padEnd(64, '0');
const CTR = 'f0e1d2c3b4a5'.padEnd(64, '9');
const OTHER = '0123456789ab'.padEnd(64, '7');
const at = (Type: BerthEvent['Type'], Action: BerthEvent['Action'], ID: string, Attributes: Record<string, string>): BerthEvent => ({
  Type,
  Action,
  Actor: { ID, Attributes },
  scope: 'local',
  time: 1765085401,
  timeNano: 1765085401123000000,
});
const netCreate = at('network', 'create', NET, { name: 'front', type: 'bridge' });
const connect = at('network', 'connect', NET, { container: CTR, containerName: 'web', name: 'front', type: 'bridge' });
const connectOther = at('network', 'connect', NET, { container: OTHER, containerName: 'db', name: 'front', type: 'bridge' });
const start = at('container', 'start', CTR, { name: 'web' });
const die = at('container', 'die', CTR, { name: 'web', exitCode: '137' });
const ALL = [netCreate, connect, connectOther, start, die];

const kept = (filters: Record<string, string[]>) => ALL.filter(eventMatcher(checkEventFilters(filters)));
const refused = (pattern: RegExp) => (err: unknown) => isBerthError(err) && err.httpStatus === 400 && pattern.test(err.message);

describe('event filters', () => {
  test('no filter keeps everything', () => {
    assert.deepEqual(kept({}), ALL);
  });

  test('type and event match exactly; values of one key are ORed, keys are ANDed', () => {
    assert.deepEqual(kept({ type: ['network'] }), [netCreate, connect, connectOther]);
    assert.deepEqual(kept({ type: ['container'], event: ['die'] }), [die]);
    assert.deepEqual(kept({ event: ['create', 'start'] }), [netCreate, start]);
    assert.deepEqual(kept({ event: ['conn'] }), [], 'no prefix match on actions');
    assert.deepEqual(kept({ scope: ['local'] }), ALL);
    assert.deepEqual(kept({ scope: ['swarm'] }), []);
  });

  test('network= matches the network by name or ID, or a prefix of either', () => {
    for (const ref of ['front', 'fro', NET, NET.slice(0, 12)]) assert.deepEqual(kept({ network: [ref] }), [netCreate, connect, connectOther], ref);
    assert.deepEqual(kept({ network: ['back'] }), []);
  });

  test('container= keeps the container\'s own events and its network connects, not another container\'s', () => {
    for (const ref of ['web', CTR, CTR.slice(0, 12)]) assert.deepEqual(kept({ container: [ref] }), [connect, start, die], ref);
    assert.deepEqual(kept({ container: ['db'] }), [connectOther]);
    assert.deepEqual(kept({ container: ['web'], type: ['network'], event: ['connect'], network: ['front'] }), [connect]);
  });

  test('label= matches the Actor\'s attributes; other object types never match berth\'s events', () => {
    assert.deepEqual(kept({ label: ['exitCode=137'] }), [die]);
    assert.deepEqual(kept({ label: ['exitCode'] }), [die]);
    assert.deepEqual(kept({ label: ['exitCode=0'] }), []);
    assert.deepEqual(kept({ volume: ['v1'] }), []);
    assert.deepEqual(kept({ image: ['busybox'] }), []);
  });

  test('unknown keys, malformed JSON and unknown types are refused with Docker\'s messages', () => {
    assert.throws(() => parseFilters('{"bogus":["x"]}', EVENT_FILTERS), refused(/^invalid filter 'bogus'$/));
    assert.throws(() => parseFilters('{type', EVENT_FILTERS), refused(/^invalid filters: \{type is not JSON/));
    assert.throws(() => checkEventFilters({ type: ['netwrok'] }), refused(/^invalid filter 'type=netwrok': the event types are container, image/));
    for (const key of ['container', 'event', 'image', 'label', 'network', 'type', 'volume', 'daemon', 'plugin', 'node', 'service', 'secret', 'config', 'scope']) {
      assert.doesNotThrow(() => parseFilters(JSON.stringify({ [key]: { x: true } }), EVENT_FILTERS), key);
    }
  });

  test('the query: times and filters together; since after until is refused as Docker refuses it', () => {
    const q = parseEventQuery(new URLSearchParams({ since: '1765000000.5', until: '2026-12-06T05:30:01Z', filters: '{"type":{"network":true}}' }));
    assert.deepEqual(q, { since: 1765000000_500000000n, until: 1796535001_000000000n, filters: { type: ['network'] } });
    assert.throws(() => parseEventQuery(new URLSearchParams({ since: '20', until: '10' })), refused(/^`since` time \(20\) cannot be after `until` time \(10\)$/));
  });
});

describe('event wire shape', () => {
  test('container events carry Docker\'s legacy status and id; network events do not', () => {
    assert.deepEqual(toDockerMessage(die), { status: 'die', id: CTR, ...die });
    assert.deepEqual(Object.keys(toDockerMessage(die)), ['status', 'id', 'Type', 'Action', 'Actor', 'scope', 'time', 'timeNano']);
    assert.equal(toDockerMessage({ ...start, Actor: { ID: CTR, Attributes: { name: 'web', image: 'busybox' } } }).from, 'busybox');
    assert.deepEqual(toDockerMessage(connect), connect);
  });

  test('berth events prints docker events\' line: time, type, action, ID, sorted attributes', () => {
    const line = formatEvent(JSON.parse(JSON.stringify(toDockerMessage(connect))));
    assert.match(line, new RegExp(`^\\S+\\.123000000\\S* network connect ${NET} \\(container=${CTR}, containerName=web, name=front, type=bridge\\)$`));
    assert.match(formatEvent({ Type: 'container', Action: 'start', Actor: { ID: CTR, Attributes: {} }, time: 1765085401 }), new RegExp(`^\\S+\\.000000000\\S* container start ${CTR}$`));
  });
});
