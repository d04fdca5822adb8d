import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commentUserdata, concat, groupBySet, setElementsBatch } from '../../../src/kernel/netlink/nftables.js';

test('a concatenated key puts each field in network byte order at the start of its own 32-bit register', () => {
  assert.deepEqual([...concat([{ proto: 'tcp' }, { port: 8080 }])], [6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
  assert.deepEqual([...concat([{ ipv4: '192.0.2.10' }, { proto: 'udp' }, { port: 53 }])], [192, 0, 2, 10, 17, 0, 0, 0, 0, 53, 0, 0]);
  const v6 = concat([{ ipv6: 'fd77::2' }, { port: 80 }]);
  assert.equal(v6.length, 20);
  assert.deepEqual([...v6.subarray(0, 2), ...v6.subarray(14)], [0xfd, 0x77, 0, 2, 0, 80, 0, 0]);
});

test("a comment is libnftnl's user data: type 0, length with the NUL, the text", () => {
  assert.deepEqual([...commentUserdata('container a')], [0, 12, ...Buffer.from('container a'), 0]);
  assert.throws(() => commentUserdata('x'.repeat(200)), /longer than 127 bytes/);
});

test('a batch is begin, one message per change asking for an ACK, end; numbered in order', () => {
  const { bytes, messages } = setElementsBatch(
    [
      { op: 'add', family: 'ip', table: 'berth', set: 'dnat_any', elements: [{ key: [{ proto: 'tcp' }, { port: 80 }], data: [{ ipv4: '10.0.0.2' }, { port: 80 }], comment: 'container a' }] },
      { op: 'delete', family: 'ip6', table: 'berth', set: 'port_traffic_any', elements: [{ key: [{ proto: 'tcp' }, { port: 80 }] }] },
    ],
    100,
  );
  assert.deepEqual(messages.map((m) => [m.seq, m.change.set]), [[101, 'dnat_any'], [102, 'port_traffic_any']]);
  const headers: { type: number; flags: number; seq: number; family: number; resId: number }[] = [];
  for (let off = 0; off < bytes.length; ) {
    const len = bytes.readUInt32LE(off);
    headers.push({ type: bytes.readUInt16LE(off + 4), flags: bytes.readUInt16LE(off + 6), seq: bytes.readUInt32LE(off + 8), family: bytes[off + 16]!, resId: bytes.readUInt16BE(off + 18) });
    off += (len + 3) & ~3;
  }
  assert.deepEqual(headers, [
    { type: 0x10, flags: 0x1, seq: 100, family: 0, resId: 10 },
    { type: (10 << 8) | 12, flags: 0x1 | 0x4 | 0x400, seq: 101, family: 2, resId: 0 },
    { type: (10 << 8) | 14, flags: 0x1 | 0x4, seq: 102, family: 10, resId: 0 },
    { type: 0x11, flags: 0x1, seq: 103, family: 0, resId: 10 },
  ]);
  // A delete names the key only: no value, no comment.
  assert.ok(bytes.includes(Buffer.from('container a\0')));
  assert.equal(bytes.indexOf(Buffer.from('container a\0')), bytes.lastIndexOf(Buffer.from('container a\0')));
});

test('changes are grouped one per set and operation, in first-appearance order, deletes before adds kept', () => {
  const el = (port: number) => ({ key: [{ proto: 'tcp' as const }, { port }] });
  const change = (op: 'add' | 'delete', set: string, port: number) => ({ op, family: 'ip' as const, table: 'berth', set, elements: [el(port)] });
  const grouped = groupBySet([change('delete', 'b', 1), change('delete', 'a', 1), change('add', 'a', 1), change('add', 'b', 1), change('add', 'a', 2), change('add', 'b', 2)]);
  assert.deepEqual(
    grouped.map((g) => [g.op, g.set, g.elements.map((e) => (e.key[1] as { port: number }).port)]),
    [['delete', 'b', [1]], ['delete', 'a', [1]], ['add', 'a', [1, 2]], ['add', 'b', [1, 2]]],
  );
});

test("a set's elements past what one attribute holds (16-bit length) go in several messages", () => {
  const elements = Array.from({ length: 1000 }, (_, i) => ({ key: [{ proto: 'tcp' as const }, { port: 20000 + i }], data: [{ ipv4: '10.0.0.9' }, { port: 80 }], comment: `container ${'c'.repeat(64)}` }));
  const { bytes, messages } = setElementsBatch([{ op: 'add', family: 'ip', table: 'berth', set: 'dnat_any', elements }], 7);
  assert.ok(messages.length >= 2, `${messages.length} messages`);
  assert.deepEqual(messages.map((m) => m.seq), messages.map((_, i) => 8 + i));
  for (let off = 0; off < bytes.length; ) {
    const len = bytes.readUInt32LE(off);
    assert.ok(len < 65536, `message of ${len} bytes`);
    off += (len + 3) & ~3;
  }
});
