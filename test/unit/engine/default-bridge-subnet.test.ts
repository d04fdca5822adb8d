/** The default `bridge` network takes 172.17.0.0/16 only if nothing on the host uses it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr } from '../../../src/ipam/ipv4.js';
import { defaultBridgeSubnet } from '../../../src/engine/networks.js';

test('172.17.0.0/16 when it is free', () => {
  assert.equal(defaultBridgeSubnet([]).text, '172.17.0.0/16');
  assert.equal(defaultBridgeSubnet([parseCidr('10.0.0.0/8'), parseCidr('0.0.0.0/0')]).text, '172.17.0.0/16', 'a default route overlaps everything and is ignored');
});

test('the first free default pool when docker0 (or a LAN) holds 172.17.0.0/16 or part of it', () => {
  assert.equal(defaultBridgeSubnet([parseCidr('172.17.0.0/16')]).text, '172.18.0.0/16');
  assert.equal(defaultBridgeSubnet([parseCidr('172.17.5.0/24'), parseCidr('172.18.0.0/16')]).text, '172.19.0.0/16');
});
