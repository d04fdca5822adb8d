import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDirectory } from '../../../src/dns/directory.js';

const HOST = [{ address: '192.0.2.53', port: 53 }];

test('lookup: case-insensitive, trailing dot ignored, shared names collect every address once', () => {
  const dir = new MemoryDirectory();
  dir.setNetwork('n', {
    internal: false,
    records: [
      { ip: '10.0.0.2', names: ['Web1', 'www', 'www'] },
      { ip: '10.0.0.3', names: ['web2', 'WWW.'] },
    ],
  });
  assert.deepEqual(dir.lookup('n', 'web1'), ['10.0.0.2']);
  assert.deepEqual(dir.lookup('n', 'www'), ['10.0.0.2', '10.0.0.3']);
  assert.deepEqual(dir.lookup('n', 'nope'), []);
  assert.deepEqual(dir.lookup('other', 'web1'), []);
  assert.equal(dir.reverse('n', '10.0.0.2'), 'web1', 'PTR answers the first name');
  assert.equal(dir.reverse('n', '10.0.0.9'), undefined);
});

test('setNetwork replaces a network, removeNetwork forgets it', () => {
  const dir = new MemoryDirectory();
  dir.setNetwork('n', { internal: false, records: [{ ip: '10.0.0.2', names: ['a'] }] });
  dir.setNetwork('n', { internal: false, records: [{ ip: '10.0.0.3', names: ['b'] }] });
  assert.deepEqual(dir.lookup('n', 'a'), []);
  assert.deepEqual(dir.lookup('n', 'b'), ['10.0.0.3']);
  dir.removeNetwork('n');
  assert.deepEqual(dir.lookup('n', 'b'), []);
});

test('upstreams: the container’s own, else the host’s; none on internal or unknown networks', () => {
  const dir = new MemoryDirectory();
  dir.setHostUpstreams(HOST);
  const own = [{ address: '198.51.100.1', port: 5353 }];
  dir.setNetwork('n', { internal: false, records: [{ ip: '10.0.0.2', names: ['a'], upstreams: own }, { ip: '10.0.0.3', names: ['b'] }] });
  dir.setNetwork('i', { internal: true, records: [{ ip: '10.1.0.2', names: ['c'], upstreams: own }] });
  assert.deepEqual(dir.upstreams('n', '10.0.0.2'), own);
  assert.deepEqual(dir.upstreams('n', '10.0.0.3'), HOST);
  assert.deepEqual(dir.upstreams('i', '10.1.0.2'), []);
  assert.deepEqual(dir.upstreams('unknown', '10.0.0.2'), []);
});

test('bad records are rejected and leave the network as it was', () => {
  const dir = new MemoryDirectory();
  dir.setNetwork('n', { internal: false, records: [{ ip: '10.0.0.2', names: ['a'] }] });
  assert.throws(() => dir.setNetwork('n', { internal: false, records: [{ ip: 'fe80::1', names: ['b'] }] }), { kind: 'invalid', message: /not an IPv4 address/ });
  assert.throws(() => dir.setNetwork('n', { internal: false, records: [{ ip: '10.0.0.3', names: ['.'] }] }), { kind: 'invalid', message: /empty name/ });
  assert.throws(() => dir.setNetwork('n', { internal: false, records: [{ ip: '10.0.0.3', names: ['b'], upstreams: [{ address: 'x', port: 53 }] }] }), { kind: 'invalid' });
  assert.throws(() => dir.setHostUpstreams([{ address: '192.0.2.1', port: 0 }]), { kind: 'invalid', message: /port 0/ });
  assert.deepEqual(dir.lookup('n', 'a'), ['10.0.0.2']);
});

test("a hostname never takes another container's name or alias; it answers only for names nobody holds", () => {
  const d = new MemoryDirectory();
  d.setNetwork('n', { internal: false, records: [] });
  d.upsertRecord('n', 'impostor', { ip: '10.0.0.9', names: ['impostor'], weakNames: ['db', 'free-host'] });
  assert.deepEqual(d.lookup('n', 'db'), ['10.0.0.9'], 'nobody holds db yet: the hostname answers');
  d.upsertRecord('n', 'db', { ip: '10.0.0.2', names: ['db'] });
  assert.deepEqual(d.lookup('n', 'db'), ['10.0.0.2'], 'the container named db wins, whatever the order');
  assert.deepEqual(d.lookup('n', 'free-host'), ['10.0.0.9']);
  d.removeRecord('n', 'db');
  assert.deepEqual(d.lookup('n', 'db'), ['10.0.0.9']);
  d.removeRecord('n', 'impostor');
  assert.deepEqual(d.lookup('n', 'free-host'), []);
  d.setNetwork('m', { internal: false, records: [{ ip: '10.0.0.3', names: ['web'], weakNames: ['api'] }, { ip: '10.0.0.4', names: ['api'] }] });
  assert.deepEqual(d.lookup('m', 'api'), ['10.0.0.4'], 'the same rule when a network is loaded whole');
});

test("a container's other networks: found by its address on the asking network, forgotten as it leaves", () => {
  const dir = new MemoryDirectory();
  for (const n of ['a', 'b', 'c']) dir.setNetwork(n, { internal: false, records: [] });
  dir.upsertRecord('a', 'c1', { ip: '10.1.0.2', names: ['one'] });
  dir.upsertRecord('b', 'c1', { ip: '10.2.0.2', names: ['one'] });
  dir.upsertRecord('b', 'c2', { ip: '10.2.0.3', names: ['two'] });
  assert.deepEqual(dir.otherNetworksOf('a', '10.1.0.2'), ['b'], 'c1 is on a and b');
  assert.deepEqual(dir.otherNetworksOf('b', '10.2.0.3'), [], 'c2 is on b alone');
  assert.deepEqual(dir.otherNetworksOf('a', '10.1.0.9'), [], 'an address nobody holds');
  assert.deepEqual(dir.otherNetworksOf('c', '10.1.0.2'), [], 'asked on a network it is not on');
  dir.removeRecord('b', 'c1');
  assert.deepEqual(dir.otherNetworksOf('a', '10.1.0.2'), []);
  dir.upsertRecord('b', 'c1', { ip: '10.2.0.2', names: ['one'] });
  dir.removeNetwork('b');
  assert.deepEqual(dir.otherNetworksOf('a', '10.1.0.2'), [], 'gone with its network');
  dir.setNetwork('c', { internal: false, records: [] });
  dir.upsertRecord('c', 'c1', { ip: '10.3.0.2', names: ['one'] });
  dir.setNetwork('c', { internal: false, records: [] });
  assert.deepEqual(dir.otherNetworksOf('a', '10.1.0.2'), [], 'gone when its network is replaced');
});

test('a replica built from snapshot() and fed by watch() answers as the original; rejected changes are not announced', () => {
  const dir = new MemoryDirectory();
  dir.setNetwork('n', { internal: false, records: [{ ip: '10.0.0.2', names: ['base', 'shared'] }] });
  dir.setNetwork('m', { internal: true, records: [] });
  dir.upsertRecord('n', 'c1', { ip: '10.0.0.3', names: ['c1', 'shared'], weakNames: ['host1'] });
  dir.upsertRecord('m', 'c1', { ip: '10.9.0.3', names: ['c1m'] });
  const replica = new MemoryDirectory();
  for (const change of dir.snapshot()) replica.apply(change);
  const seen: string[] = [];
  dir.watch((change) => {
    seen.push(change.op);
    replica.apply(change);
  });
  dir.upsertRecord('n', 'c2', { ip: '10.0.0.4', ip6: 'fd00::4', names: ['c2'] });
  dir.upsertRecord('n', 'c1', { ip: '10.0.0.3', names: ['c1-renamed'] });
  dir.removeRecord('n', 'c2');
  dir.removeRecord('n', 'nobody');
  assert.throws(() => dir.upsertRecord('n', 'bad', { ip: 'not-an-ip', names: ['x'] }));
  assert.throws(() => dir.upsertRecord('nowhere', 'c9', { ip: '10.0.0.9', names: ['x'] }));
  dir.setNetwork('o', { internal: false, records: [{ ip: '10.1.0.2', names: ['other'] }] });
  dir.removeNetwork('o');
  dir.removeNetwork('never-there');
  assert.deepEqual(seen, ['upsertRecord', 'upsertRecord', 'removeRecord', 'setNetwork', 'removeNetwork'], 'only changes that took effect');
  for (const name of ['base', 'shared', 'c1', 'c1-renamed', 'host1', 'c2', 'c1m', 'other']) {
    for (const net of ['n', 'm', 'o']) assert.deepEqual(replica.lookup(net, name), dir.lookup(net, name), `${name} on ${net}`);
  }
  for (const ip of ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.9.0.3']) assert.equal(replica.reverse('n', ip), dir.reverse('n', ip), ip);
  assert.deepEqual(replica.otherNetworksOf('n', '10.0.0.3'), ['m']);
  assert.deepEqual(replica.otherNetworksOf('n', '10.0.0.3'), dir.otherNetworksOf('n', '10.0.0.3'));
});
