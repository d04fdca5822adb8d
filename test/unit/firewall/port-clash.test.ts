import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BindingIndex, bindingsClash, type HostBinding } from '../../../src/firewall/port-clash.js';

const b = (hostIp: string, hostPort = 8080, protocol: 'tcp' | 'udp' = 'tcp'): HostBinding => ({ protocol, hostIp, hostPort });

test('two bindings clash on the same port when the address is the same or either is the wildcard', () => {
  assert.equal(bindingsClash(b('0.0.0.0'), b('0.0.0.0')), true);
  assert.equal(bindingsClash(b('0.0.0.0'), b('127.0.0.1')), true);
  assert.equal(bindingsClash(b('127.0.0.1'), b('0.0.0.0')), true);
  assert.equal(bindingsClash(b('10.0.0.1'), b('10.0.0.1')), true);
  assert.equal(bindingsClash(b('10.0.0.1'), b('127.0.0.1')), false, 'two specific addresses share a port');
  assert.equal(bindingsClash(b('0.0.0.0', 8080), b('0.0.0.0', 8081)), false);
  assert.equal(bindingsClash(b('0.0.0.0', 8080, 'tcp'), b('0.0.0.0', 8080, 'udp')), false);
});

test('the index finds the first clashing binding', () => {
  const index = new BindingIndex<HostBinding & { owner: string }>();
  index.add({ ...b('127.0.0.1', 32768), owner: 'loc' });
  assert.equal(index.clashWith(b('0.0.0.0', 32768))?.owner, 'loc');
  assert.equal(index.clashWith(b('10.1.1.1', 32768)), undefined);
  assert.equal(index.clashWith(b('0.0.0.0', 32769)), undefined);
});
