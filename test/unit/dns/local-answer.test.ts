import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDirectory } from '../../../src/dns/directory.js';
import { localAnswer, outcomeOf } from '../../../src/dns/local-answer.js';
import { decodeQuery, type Query } from '../../../src/dns/packet.js';
import { makeQuery } from './dns-client.js';

function query(name: string, type: 'A' | 'AAAA' | 'PTR' | 'MX' = 'A'): Query {
  const decoded = decodeQuery(makeQuery(name, type), 4096);
  assert.equal(decoded.kind, 'query');
  return (decoded as { query: Query }).query;
}

function directory(): MemoryDirectory {
  const dir = new MemoryDirectory();
  dir.setNetwork('a', { internal: false, records: [] });
  dir.setNetwork('b', { internal: false, records: [] });
  dir.setNetwork('c', { internal: false, records: [] });
  dir.upsertRecord('a', 'client', { ip: '10.1.0.2', names: ['client'] });
  dir.upsertRecord('c', 'client', { ip: '10.3.0.2', names: ['client'] });
  dir.upsertRecord('a', 'x', { ip: '10.1.0.5', names: ['dup', 'onlya'] });
  dir.upsertRecord('b', 'y', { ip: '10.2.0.5', names: ['dup', 'onlyb'] });
  dir.upsertRecord('c', 'z', { ip: '10.3.0.5', names: ['dup', 'onlyc'] });
  return dir;
}

test('localAnswer: the listener network first, then alsoNetworks, then the client\'s other networks', () => {
  const dir = directory();
  const a = (records: unknown) => (records as { address: string }[] | undefined)?.map((r) => r.address);
  assert.deepEqual(a(localAnswer(dir, { networkId: 'a' }, query('dup'), '10.1.0.2')), ['10.1.0.5']);
  assert.deepEqual(a(localAnswer(dir, { networkId: 'a', alsoNetworks: ['b'] }, query('onlyb'), '10.1.0.2')), ['10.2.0.5']);
  assert.equal(localAnswer(dir, { networkId: 'a' }, query('onlyb'), '10.1.0.2'), undefined, 'control: b is none of the client\'s networks');
  assert.deepEqual(a(localAnswer(dir, { networkId: 'a' }, query('onlyc'), '10.1.0.2')), ['10.3.0.5'], 'the client is on c too');
  assert.equal(localAnswer(dir, { networkId: 'a' }, query('onlyc'), '10.1.0.9'), undefined, 'control: another client is not');
});

test('localAnswer: AAAA and MX of an IPv4-only name are NOERROR with no records; PTR answers the first name', () => {
  const dir = directory();
  assert.deepEqual(localAnswer(dir, { networkId: 'a' }, query('onlya', 'AAAA'), '10.1.0.2'), []);
  assert.deepEqual(localAnswer(dir, { networkId: 'a' }, query('onlya', 'MX'), '10.1.0.2'), []);
  assert.deepEqual(localAnswer(dir, { networkId: 'a' }, query('5.0.1.10.in-addr.arpa', 'PTR'), '10.1.0.2'), [{ type: 'PTR', target: 'dup' }]);
  assert.equal(localAnswer(dir, { networkId: 'a' }, query('nosuch'), '10.1.0.2'), undefined);
});

test('outcomeOf: by the reply\'s rcode; no reply is malformed', () => {
  const reply = (rcode: number) => Buffer.from([0, 1, 0x81, 0x80 | rcode]);
  assert.equal(outcomeOf(reply(0), 'local'), 'local');
  assert.equal(outcomeOf(reply(0), 'forwarded'), 'forwarded');
  assert.equal(outcomeOf(reply(1), 'local'), 'malformed');
  assert.equal(outcomeOf(reply(2), 'forwarded'), 'failed');
  assert.equal(outcomeOf(reply(3), 'forwarded'), 'nxdomain');
  assert.equal(outcomeOf(reply(4), 'local'), 'malformed');
  assert.equal(outcomeOf(reply(5), 'forwarded'), 'refused');
  assert.equal(outcomeOf(undefined, 'local'), 'malformed');
});
