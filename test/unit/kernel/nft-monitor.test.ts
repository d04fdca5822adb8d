import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNftEvents } from '../../../src/kernel/nft-monitor.js';
import { touchesBerth } from '../../../src/engine/firewall-watch.js';

/** One nfnetlink message: header, nfgenmsg (family), then attributes. */
function message(msg: number, family: number, attrs: [number, Buffer][]): Buffer {
  const body = Buffer.concat([
    Buffer.from([family, 0, 0, 0]),
    ...attrs.map(([type, value]) => {
      const len = 4 + value.length;
      const b = Buffer.alloc((len + 3) & ~3);
      b.writeUInt16LE(len, 0);
      b.writeUInt16LE(type, 2);
      value.copy(b, 4);
      return b;
    }),
  ]);
  const head = Buffer.alloc(16);
  head.writeUInt32LE(16 + body.length, 0);
  head.writeUInt16LE((10 << 8) | msg, 4);
  return Buffer.concat([head, body]);
}
const str = (s: string) => Buffer.from(`${s}\0`);
const be32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

test('table, rule and generation notifications are parsed', () => {
  const buf = Buffer.concat([
    message(2, 2, [[1, str('berth')]]),
    message(6, 2, [[1, str('berth')], [2, str('user-forward')]]),
    message(15, 0, [[1, be32(7)], [2, be32(4242)], [3, str('nft')]]),
  ]);
  assert.deepEqual(parseNftEvents(buf, buf.length), [
    { kind: 'change', family: 2, table: 'berth', msg: 2, chain: undefined },
    { kind: 'change', family: 2, table: 'berth', msg: 6, chain: 'user-forward' },
    { kind: 'generation', pid: 4242, process: 'nft' },
  ]);
  assert.deepEqual(parseNftEvents(buf, 10), [], 'a cut buffer yields nothing rather than garbage');
});

test("only changes to berth's own tables, outside the user's chain, count", () => {
  const t = (changes: { family: number; table: string; msg: number; chain?: string }[]) => ({ pid: 1, process: 'nft', overflow: false, changes: changes.map((c) => ({ kind: 'change' as const, ...c })) });
  assert.equal(touchesBerth(t([{ family: 2, table: 'berth', msg: 2 }])), true, 'ip berth deleted');
  assert.equal(touchesBerth(t([{ family: 7, table: 'berth', msg: 14 }])), true, 'bridge berth elements deleted');
  assert.equal(touchesBerth(t([{ family: 2, table: 'filter', msg: 6 }])), false, "someone else's table");
  assert.equal(touchesBerth(t([{ family: 10, table: 'berth', msg: 2 }])), true, 'ip6 berth (the IPv6 twin) deleted');
  assert.equal(touchesBerth(t([{ family: 10, table: 'berth', msg: 6, chain: 'user-forward' }])), false, "the user's IPv6 chain");
  assert.equal(touchesBerth(t([{ family: 1, table: 'berth', msg: 2 }])), false, 'an inet table that happens to be called berth');
  assert.equal(touchesBerth(t([{ family: 2, table: 'berth', msg: 6, chain: 'user-forward' }])), false, "the user's chain");
  assert.equal(touchesBerth({ pid: 0, process: '', overflow: true, changes: [] }), true, 'lost notifications');
});
