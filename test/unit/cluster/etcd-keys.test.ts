/** The cluster store's address parsing, prefix ranges and key layout (pure). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClusterStore, prefixEnd } from '../../../src/cluster/etcd.js';
import * as K from '../../../src/cluster/keys.js';

test('etcd:// lists members; TLS turns it to https; a malformed one names the form', () => {
  assert.deepEqual(parseClusterStore('etcd://10.0.0.5:2379,10.0.0.6:2379', false), ['http://10.0.0.5:2379', 'http://10.0.0.6:2379']);
  assert.deepEqual(parseClusterStore('etcd://10.0.0.5:2379', true), ['https://10.0.0.5:2379']);
  assert.deepEqual(parseClusterStore('https://etcd.local:2379', false), ['https://etcd.local:2379']);
  assert.throws(() => parseClusterStore('consul://x:1', false), /is not etcd:\/\/IP:PORT/);
  assert.throws(() => parseClusterStore('etcd://10.0.0.5', false), /member "10.0.0.5" is not HOST:PORT/);
  assert.throws(() => parseClusterStore('etcd://10.0.0.5:99999', false), /is not HOST:PORT/);
});

test('a prefix range ends just past every key that starts with it', () => {
  assert.equal(Buffer.from(prefixEnd('/berth/v1/'), 'base64').toString(), '/berth/v10');
  assert.deepEqual([...Buffer.from(prefixEnd('a\xff'), 'base64')], [0x61, 0xc3, 0xc0]);
});

test('keys parse back to what they name', () => {
  assert.deepEqual(K.parseKey(K.hostKey('ab')), { kind: 'host', hostId: 'ab' });
  assert.deepEqual(K.parseKey(K.networkKey('ov')), { kind: 'network', name: 'ov' });
  assert.deepEqual(K.parseKey(K.ipamKey('n1', '10.0.0.2')), { kind: 'ipam', networkId: 'n1', ip: '10.0.0.2' });
  assert.deepEqual(K.parseKey(K.endpointKey('n1', 'e1')), { kind: 'endpoint', networkId: 'n1', endpointId: 'e1' });
  assert.deepEqual(K.parseKey(K.NETWORKS_GUARD), { kind: 'other' });
  assert.deepEqual(K.parseKey(K.tunnelKey('10.254.0.1')), { kind: 'other' });
});
