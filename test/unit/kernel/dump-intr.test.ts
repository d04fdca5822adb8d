/**
 * Netlink dumps the kernel flags NLM_F_DUMP_INTR (the table changed meanwhile) are repeated, so
 * no caller acts on a view that misses live links; a dump that never settles fails clearly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dumpConsistently, type DumpResult } from '../../../src/kernel/netlink/socket.js';
import type { Message } from '../../../src/kernel/netlink/codec.js';

const msg = (seq: number): Message => ({ type: 16, flags: 2, seq, body: Buffer.alloc(16) });

test('an interrupted dump is repeated until a consistent one', () => {
  const results: DumpResult[] = [
    { messages: [msg(1)], interrupted: true },
    { messages: [msg(2)], interrupted: true },
    { messages: [msg(3), msg(3)], interrupted: false },
  ];
  let calls = 0;
  const out = dumpConsistently(() => results[calls++]!, 'list links');
  assert.equal(calls, 3);
  assert.deepEqual(out.map((m) => m.seq), [3, 3], 'only the consistent dump is used');
});

test('a consistent first dump is used as is', () => {
  let calls = 0;
  const out = dumpConsistently(() => (calls++, { messages: [msg(7)], interrupted: false }), 'list links');
  assert.equal(calls, 1);
  assert.equal(out.length, 1);
});

test('a dump that never settles fails with the label and the reason', () => {
  let calls = 0;
  assert.throws(() => dumpConsistently(() => (calls++, { messages: [], interrupted: true }), 'list links', 4), /list links: .*4 dumps.*NLM_F_DUMP_INTR/);
  assert.equal(calls, 4);
});
