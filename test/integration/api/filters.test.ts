/** Docker's filter and version rules as the API applies them (pure: no daemon, no namespace). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { filterNetworks, parseUntil, pruneKeeps, routePath } from '../../../src/api/server.js';
import { parseFilters, NETWORK_LIST_FILTERS, NETWORK_PRUNE_FILTERS } from '../../../src/api/schemas.js';
import type { NetworkView } from '../../../src/engine/views.js';
import type { NetworkRecord } from '../../../src/store/store.js';

const view = (Name: string, Labels: Record<string, string> = {}, containers = 0): NetworkView => ({
  Name,
  Id: `${Name.padEnd(8, '0').replace(/[^0-9a-f]/g, 'a')}${'0'.repeat(56)}`,
  Created: '2026-01-01T00:00:00.000Z',
  Scope: 'local',
  Driver: Name === 'host' ? 'host' : Name === 'none' ? 'null' : 'bridge',
  EnableIPv6: false,
  IPAM: { Driver: 'default', Options: {}, Config: [] },
  Internal: false,
  Attachable: false,
  Ingress: false,
  ConfigFrom: { Network: '' },
  ConfigOnly: false,
  Containers: Object.fromEntries(Array.from({ length: containers }, (_, i) => [`c${i}`, { Name: `c${i}`, EndpointID: '', MacAddress: '', IPv4Address: '', IPv6Address: '' }])),
  Options: {},
  Labels,
});
const ALL = [view('bridge', {}, 1), view('host'), view('none'), view('web', { tier: 'front', env: 'prod' }, 2), view('db', { tier: 'back' }), view('web2', { tier: 'front' })];
const names = (f: Record<string, string[]>) => filterNetworks(ALL, f).map((n) => n.Name);

describe('network filters', () => {
  test('name and id are exact values or unanchored patterns; values of one key are alternatives', () => {
    assert.deepEqual(names({ name: ['web'] }), ['web', 'web2']);
    assert.deepEqual(names({ name: ['^web$'] }), ['web']);
    assert.deepEqual(names({ name: ['db', 'none'] }), ['none', 'db']);
    assert.deepEqual(names({ name: ['[unclosed'] }), [], 'an invalid pattern matches nothing');
    assert.deepEqual(names({ id: [ALL[4]!.Id.slice(0, 6)] }), ['db']);
  });

  test('label: every value must match; key alone or key=value', () => {
    assert.deepEqual(names({ label: ['tier'] }), ['web', 'db', 'web2']);
    assert.deepEqual(names({ label: ['tier=front', 'env=prod'] }), ['web']);
    assert.deepEqual(names({ label: ['tier=front', 'env'] }), ['web']);
    assert.deepEqual(names({ label: ['tier='] }), [], 'an empty value is a value');
  });

  test('type, dangling, driver, and several keys together', () => {
    assert.deepEqual(names({ type: ['builtin'] }), ['bridge', 'host', 'none']);
    assert.deepEqual(names({ type: ['builtin', 'custom'] }).length, 6);
    assert.deepEqual(names({ dangling: ['true'] }), ['db', 'web2']);
    assert.deepEqual(names({ dangling: ['0'] }), ['bridge', 'host', 'none', 'web']);
    assert.deepEqual(names({ driver: ['null', 'host'] }), ['host', 'none']);
    assert.deepEqual(names({ type: ['custom'], label: ['tier=front'], dangling: ['false'] }), ['web']);
    assert.throws(() => names({ type: ['x'] }), /invalid filter 'type=x'/);
    assert.throws(() => names({ dangling: ['true', 'false'] }), /more than one value/);
  });

  test('parseFilters: both JSON forms, accepted keys only', () => {
    assert.deepEqual(parseFilters('{"name":{"a":true,"b":true}}', NETWORK_LIST_FILTERS), { name: ['a', 'b'] });
    assert.deepEqual(parseFilters('{"name":["a"]}', NETWORK_LIST_FILTERS), { name: ['a'] });
    assert.deepEqual(parseFilters(null, NETWORK_LIST_FILTERS), {});
    assert.throws(() => parseFilters('{"until":{"1h":true}}', NETWORK_LIST_FILTERS), /invalid filter 'until'/);
    assert.throws(() => parseFilters('{"name":"a"}', NETWORK_LIST_FILTERS), /invalid filters/);
    assert.deepEqual(parseFilters('{"label!":{"a":true}}', NETWORK_PRUNE_FILTERS), { 'label!': ['a'] });
  });
});

describe('prune filters', () => {
  const rec = (name: string, labels: Record<string, string>, created: string) => ({ name, labels, created }) as NetworkRecord;
  const nets = [rec('old', { keep: 'yes' }, '2020-01-01T00:00:00Z'), rec('new', { tier: 'x' }, '2026-06-01T00:00:00Z'), rec('bare', {}, '2024-01-01T00:00:00Z')];
  const pruned = (f: Record<string, string[]>) => nets.filter((n) => !pruneKeeps(f)(n)).map((n) => n.name);

  test('label, label! and until', () => {
    assert.deepEqual(pruned({}), ['old', 'new', 'bare']);
    assert.deepEqual(pruned({ label: ['tier=x'] }), ['new']);
    assert.deepEqual(pruned({ 'label!': ['keep'] }), ['new', 'bare']);
    assert.deepEqual(pruned({ until: ['2025-01-01T00:00:00Z'] }), ['old', 'bare']);
    assert.deepEqual(pruned({ until: ['2025-01-01T00:00:00Z'], 'label!': ['keep=yes'] }), ['bare']);
  });

  test('until: Go durations, unix timestamps, RFC 3339', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseUntil('24h', now), now - 86_400_000);
    assert.equal(parseUntil('1h30m', now), now - 5_400_000);
    assert.equal(parseUntil('1577836800', now), Date.parse('2020-01-01T00:00:00Z'));
    assert.equal(parseUntil('1577836800.5', now), Date.parse('2020-01-01T00:00:00.500Z'));
    assert.equal(parseUntil('2020-01-01T00:00:00Z', now), Date.parse('2020-01-01T00:00:00Z'));
    for (const bad of ['', 'h', 'soon', '1d']) assert.throws(() => parseUntil(bad, now), /failed to parse value as time or duration/);
  });
});

describe('versioned paths', () => {
  test('strip a supported version, refuse others with Docker\'s messages', () => {
    assert.equal(routePath('/v1.41/networks'), '/networks');
    assert.equal(routePath('/v1.12/_ping'), '/_ping');
    assert.equal(routePath('/networks'), '/networks');
    assert.equal(routePath('/v1.41'), '/v1.41', 'no path after the version: left for the 404');
    assert.throws(() => routePath('/v1.42/networks'), /client version 1\.42 is too new\. Maximum supported API version is 1\.41/);
    assert.throws(() => routePath('/v1.9/networks'), /client version 1\.9 is too old\. Minimum supported API version is 1\.12/);
  });
});
