/** How berth recognises its own bridges: the alias it sets, or the MAC it derives from that alias. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bridgeMac, isOwnBridge } from '../../../src/kernel/own-bridge.js';

const MARK = 'berth:1a2b3c4d:network:5e6f';

test('a bridge MAC is 02:42: plus four bytes, the same for the same network, different for another', () => {
  assert.match(bridgeMac(MARK), /^02:42(:[0-9a-f]{2}){4}$/);
  assert.equal(bridgeMac(MARK), bridgeMac(MARK));
  assert.notEqual(bridgeMac(MARK), bridgeMac('berth:1a2b3c4d:network:5e70'));
  assert.notEqual(bridgeMac(MARK), bridgeMac('berth:ffffffff:network:5e6f'), 'another daemon, same id');
});

test('a bridge is berth’s when it carries the mark, or carries no alias and the derived MAC', () => {
  assert.ok(isOwnBridge({ kind: 'bridge', alias: MARK, mac: '02:42:00:00:00:01' }, MARK));
  assert.ok(isOwnBridge({ kind: 'bridge', mac: bridgeMac(MARK) }, MARK), 'a crash before the alias was set');
  assert.ok(!isOwnBridge({ kind: 'bridge', mac: '52:54:00:12:34:56' }, MARK), "the host's bridge");
  assert.ok(!isOwnBridge({ kind: 'bridge', alias: 'uplink', mac: bridgeMac(MARK) }, MARK), 'someone else’s alias wins over the MAC');
  assert.ok(!isOwnBridge({ kind: 'bridge', alias: 'berth:1a2b3c4d:network:other' }, MARK), 'another network of the same daemon');
  assert.ok(!isOwnBridge({ kind: 'veth', alias: MARK }, MARK));
});
