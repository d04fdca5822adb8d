import { test } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket from 'dns-packet';
import { AnswerCache, ttlLayout } from '../../../src/dns/answer-cache.js';
import { decodeQuery, type Query } from '../../../src/dns/packet.js';

function query(name: string, id = 1): Query {
  const raw = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
  const d = decodeQuery(raw, 512);
  assert.equal(d.kind, 'query');
  return (d as { query: Query }).query;
}

function answer(q: Query, opts: { rcode?: string; answers?: { ttl: number; data: string }[]; soa?: { ttl: number; minimum: number }; tc?: boolean } = {}): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (opts.tc ? dnsPacket.TRUNCATED_RESPONSE : 0),
    rcode: opts.rcode ?? 'NOERROR',
    questions: [{ type: 'A', name: q.name }],
    answers: (opts.answers ?? []).map((a) => ({ type: 'A', name: q.name, ttl: a.ttl, data: a.data })),
    authorities: opts.soa
      ? [{ type: 'SOA', name: 'test', ttl: opts.soa.ttl, data: { mname: 'ns.test', rname: 'h.test', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: opts.soa.minimum } }]
      : [],
  } as dnsPacket.Packet);
}

test('an answer keeps for its shortest TTL; a negative one for min(SOA TTL, SOA minimum)', () => {
  const q = query('a.test');
  assert.equal(ttlLayout(answer(q, { answers: [{ ttl: 30, data: '192.0.2.1' }, { ttl: 10, data: '192.0.2.2' }] }))?.keepSeconds, 10);
  assert.equal(ttlLayout(answer(q, { rcode: 'NXDOMAIN', soa: { ttl: 300, minimum: 60 } }))?.keepSeconds, 60);
  assert.equal(ttlLayout(answer(q, { soa: { ttl: 20, minimum: 60 } }))?.keepSeconds, 20, 'no data: negative TTL too');
  assert.equal(ttlLayout(answer(q, { rcode: 'NXDOMAIN' })), undefined, 'negative without SOA: not kept');
  assert.equal(ttlLayout(answer(q, { rcode: 'SERVFAIL' })), undefined);
  assert.equal(ttlLayout(answer(q, { answers: [{ ttl: 30, data: '192.0.2.1' }], tc: true })), undefined, 'truncated');
  assert.equal(ttlLayout(answer(q, { answers: [{ ttl: 0, data: '192.0.2.1' }] })), undefined, 'TTL 0');
});

test('a hit has the client id and question, and TTLs lowered by the time spent; it expires on time', () => {
  let now = 1_000_000;
  const cache = new AnswerCache({ now: () => now });
  const first = query('Host.test', 7);
  cache.put('up', first, answer(first, { answers: [{ ttl: 30, data: '192.0.2.1' }] }));
  now += 12_500;
  const second = query('host.TEST', 99);
  const hit = cache.get('up', second)!;
  const p = dnsPacket.decode(hit);
  assert.equal(p.id, 99);
  assert.equal(p.questions?.[0]?.name, 'host.TEST');
  assert.equal((p.answers?.[0] as { ttl: number }).ttl, 18);
  assert.equal(cache.get('other-upstreams', second), undefined, 'scoped by upstreams');
  now += 18_000;
  assert.equal(cache.get('up', second), undefined, 'expired');
  assert.equal(cache.size, 0);
});

test('least recently used entries are evicted first', () => {
  const cache = new AnswerCache({ maxEntries: 2 });
  const names = ['a.test', 'b.test', 'c.test'].map((n) => query(n));
  cache.put('s', names[0]!, answer(names[0]!, { answers: [{ ttl: 60, data: '192.0.2.1' }] }));
  cache.put('s', names[1]!, answer(names[1]!, { answers: [{ ttl: 60, data: '192.0.2.2' }] }));
  assert.ok(cache.get('s', names[0]!), 'touch a');
  cache.put('s', names[2]!, answer(names[2]!, { answers: [{ ttl: 60, data: '192.0.2.3' }] }));
  assert.ok(cache.get('s', names[0]!));
  assert.equal(cache.get('s', names[1]!), undefined, 'b was least recently used');
  assert.ok(cache.get('s', names[2]!));
});

test('malformed answers are not kept and never throw', () => {
  const cache = new AnswerCache();
  const q = query('x.test');
  const good = answer(q, { answers: [{ ttl: 60, data: '192.0.2.1' }] });
  for (let cut = 0; cut < good.length; cut++) cache.put('s', q, good.subarray(0, cut));
  assert.equal(cache.get('s', q), undefined);
});
