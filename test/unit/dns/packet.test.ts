import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReader, answersQuery, buildReply, decodeQuery, frame, reverseAddress, truncateForwarded, type Query } from '../../../src/dns/packet.js';
import { decode, makeQuery, respond } from './dns-client.js';

function query(name: string, edns?: number): Query {
  const d = decodeQuery(makeQuery(name, 'A', { id: 7, edns }), 4096);
  assert.equal(d.kind, 'query');
  return (d as { query: Query }).query;
}

test('decodeQuery: EDNS size is clamped to 512..4096', () => {
  assert.equal(query('a').udpLimit, 512);
  assert.equal(query('a', 100).udpLimit, 512);
  assert.equal(query('a', 1232).udpLimit, 1232);
  assert.equal(query('a', 65000).udpLimit, 4096);
});

test('decodeQuery: a non-QUERY opcode is NOTIMP, two questions FORMERR', () => {
  const update = makeQuery('a');
  update.writeUInt16BE(update.readUInt16BE(2) | (5 << 11), 2);
  const notimp = decodeQuery(update, 4096);
  assert.ok(notimp.kind === 'error' && notimp.rcode === 4);
  const two = makeQuery('a');
  two.writeUInt16BE(2, 4);
  const formerr = decodeQuery(two, 4096);
  assert.ok(formerr.kind === 'error' && formerr.rcode === 1);
});

test('buildReply: keeps what fits and sets TC; the question is echoed byte for byte', () => {
  const q = query('MiXeD.Case');
  const records = Array.from({ length: 100 }, (_, i) => ({ type: 'A' as const, address: `10.0.${i >> 8}.${i & 255}` }));
  const { bytes, truncated } = buildReply(q, 0, records, 512);
  assert.ok(truncated && bytes.length <= 512);
  const p = decode(bytes);
  assert.equal(p.flag_tc, true);
  assert.equal(p.questions![0]!.name, 'MiXeD.Case');
  assert.equal(p.answers!.length, Math.floor((512 - 12 - q.question.length) / 16));
});

test('answersQuery: id, QR and question must all match', () => {
  const raw = makeQuery('example.test', 'A', { id: 9 });
  const q = decodeQuery(raw, 4096);
  assert.equal(q.kind, 'query');
  const qq = (q as { query: Query }).query;
  const packet = decode(raw);
  assert.equal(answersQuery(respond(packet), qq), true);
  assert.equal(answersQuery(respond(packet, { name: 'EXAMPLE.test' }), qq), true, 'case-insensitive');
  assert.equal(answersQuery(respond(packet, { id: 10 }), qq), false);
  assert.equal(answersQuery(respond(packet, { name: 'other.test' }), qq), false);
  assert.equal(answersQuery(raw, qq), false, 'a query is not an answer');
  assert.equal(answersQuery(raw.subarray(0, 5), qq), false);
});

test('truncateForwarded: header and question, TC set, rcode kept', () => {
  const q = query('big.test');
  const t = decode(truncateForwarded(respond(decode(q.raw), { addresses: ['192.0.2.1'], rcode: 3 }), q));
  assert.equal(t.flag_tc, true);
  assert.equal(t.answers!.length, 0);
  assert.equal(t.questions![0]!.name, 'big.test');
});

test('reverseAddress', () => {
  assert.equal(reverseAddress('4.3.2.1.in-addr.arpa'), '1.2.3.4');
  assert.equal(reverseAddress('4.3.2.1.IN-ADDR.ARPA.'), '1.2.3.4');
  for (const bad of ['4.3.2.in-addr.arpa', '256.3.2.1.in-addr.arpa', '04.3.2.1.in-addr.arpa', '4.3.2.1.in-addr.arpa.evil', 'web1']) {
    assert.equal(reverseAddress(bad), undefined, bad);
  }
});

test('FrameReader: any chunking gives the same messages', () => {
  const messages = [Buffer.from('abc'), Buffer.alloc(0), Buffer.alloc(300, 7)];
  const stream = Buffer.concat(messages.map(frame));
  for (const size of [1, 2, 3, 7, stream.length]) {
    const reader = new FrameReader();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += size) out.push(...reader.push(stream.subarray(i, i + size)));
    assert.deepEqual(out, messages, `chunks of ${size}`);
  }
});
