import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ADDRESS_POOLS, DEFAULT_BRIDGE_SUBNET, pickDefaultSubnet } from '../../../src/ipam/default-pools.js';
import { cidrsOverlap, parseCidr } from '../../../src/ipam/ipv4.js';

const texts = (cidrs: readonly { text: string }[]) => cidrs.map((c) => c.text);

test('the pools are Docker\'s, in Docker\'s order', () => {
  const pools = texts(DEFAULT_ADDRESS_POOLS);
  assert.equal(pools.length, 30);
  assert.deepEqual(pools.slice(0, 3), ['172.18.0.0/16', '172.19.0.0/16', '172.20.0.0/16']);
  assert.deepEqual(pools.slice(13, 17), ['172.31.0.0/16', '192.168.0.0/20', '192.168.16.0/20', '192.168.32.0/20']);
  assert.equal(pools.at(-1), '192.168.240.0/20');
});

test('the default bridge subnet is kept out of the pools', () => {
  assert.equal(DEFAULT_BRIDGE_SUBNET.text, '172.17.0.0/16');
  assert.ok(DEFAULT_ADDRESS_POOLS.every((pool) => !cidrsOverlap(pool, DEFAULT_BRIDGE_SUBNET)));
});

test('the pool list cannot be changed by a caller', () => {
  assert.ok(Object.isFrozen(DEFAULT_ADDRESS_POOLS));
});

test('the first user network gets 172.18.0.0/16', () => {
  assert.equal(pickDefaultSubnet([]).text, '172.18.0.0/16');
  assert.equal(pickDefaultSubnet([DEFAULT_BRIDGE_SUBNET]).text, '172.18.0.0/16');
});

test('pools taken by networks or overlapping host routes are skipped', () => {
  const taken = [parseCidr('172.18.0.0/16'), parseCidr('172.19.0.0/24')];
  assert.equal(pickDefaultSubnet(taken).text, '172.20.0.0/16');
});

test('a host route covering several pools skips them all', () => {
  assert.equal(pickDefaultSubnet([parseCidr('172.16.0.0/12')]).text, '192.168.0.0/20');
});

test('after 172.31.0.0/16 comes 192.168.0.0/20', () => {
  const all172 = DEFAULT_ADDRESS_POOLS.filter((p) => p.text.startsWith('172.'));
  assert.equal(pickDefaultSubnet(all172).text, '192.168.0.0/20');
  assert.equal(pickDefaultSubnet([...all172, parseCidr('192.168.1.0/24')]).text, '192.168.16.0/20');
});

test('a default route does not block every pool', () => {
  assert.equal(pickDefaultSubnet([parseCidr('0.0.0.0/0')]).text, '172.18.0.0/16');
});

test('running out of pools asks for --subnet', () => {
  assert.throws(() => pickDefaultSubnet([parseCidr('172.16.0.0/12'), parseCidr('192.168.0.0/16')]), {
    name: 'BerthError',
    kind: 'conflict',
    message: 'all default address pools are in use or overlap host routes: pass --subnet',
  });
  assert.throws(() => pickDefaultSubnet(DEFAULT_ADDRESS_POOLS), { kind: 'conflict' });
});
