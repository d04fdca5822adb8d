/** Allocation from a host's share of the range (cluster IPAM): pure. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateAddressInShare } from '../../../src/ipam/allocator.js';
import { formatIpv4, parseCidr, parseIpv4 } from '../../../src/ipam/ipv4.js';

const pool = { subnet: parseCidr('10.0.0.0/24'), gateway: parseIpv4('10.0.0.1') };
const pick = (used: string[], index: number, of: number) => formatIpv4(allocateAddressInShare(pool, new Set(used.map((a) => parseIpv4(a))), index, of));

test('each of three hosts starts at its own third of the range, lowest free from there', () => {
  assert.equal(pick([], 0, 3), '10.0.0.2');
  assert.equal(pick([], 1, 3), '10.0.0.85');
  assert.equal(pick([], 2, 3), '10.0.0.170');
  assert.equal(pick(['10.0.0.85'], 1, 3), '10.0.0.86');
  // Alone, a host allocates as on a single host: lowest first.
  assert.equal(pick(['10.0.0.2'], 0, 1), '10.0.0.3');
});

test('a full share wraps round to the bottom of the range; a full range is an error', () => {
  const top = Array.from({ length: 85 }, (_, i) => `10.0.0.${170 + i}`);
  assert.equal(pick(top, 2, 3), '10.0.0.2');
  const all = Array.from({ length: 253 }, (_, i) => `10.0.0.${2 + i}`);
  assert.throws(() => pick(all, 1, 3), /no free address left in 10\.0\.0\.0\/24/);
});
