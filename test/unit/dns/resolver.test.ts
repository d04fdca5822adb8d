import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { MemoryDirectory, type NetworkRecords } from '../../../src/dns/directory.js';
import { DnsResolver, type DnsResolverOptions, type ListenResult } from '../../../src/dns/resolver.js';
import { frame } from '../../../src/dns/packet.js';
import {
  LOOPBACK,
  addressesOf,
  closedPort,
  decode,
  makeQuery,
  rcodeOf,
  respond,
  sleep,
  startDeadUpstream,
  startFakeUpstream,
  tcpExchange,
  tcpQuery,
  udpQuery,
  type Behaviour,
  type FakeUpstream,
} from './dns-client.js';

const NOERROR = 0;
const FORMERR = 1;
const SERVFAIL = 2;
const NXDOMAIN = 3;
const REFUSED = 5;

const NET_A: NetworkRecords = {
  internal: false,
  records: [
    { ip: '10.1.0.2', names: ['web1', 'web1.net-a', 'abcdef123456', 'www'] },
    { ip: '10.1.0.3', names: ['web2', 'web2.net-a', 'www'] },
  ],
};
const NET_B: NetworkRecords = { internal: false, records: [{ ip: '10.2.0.2', names: ['bonly'] }] };

interface Fixture {
  dir: MemoryDirectory;
  resolver: DnsResolver;
  ports: ListenResult;
}

/** A resolver serving net-a on 127.0.0.1, closed when the test ends whatever happens. */
async function fixture(t: TestContext, options: Partial<DnsResolverOptions> = {}): Promise<Fixture> {
  const dir = new MemoryDirectory();
  dir.setNetwork('net-a', NET_A);
  dir.setNetwork('net-b', NET_B);
  const resolver = new DnsResolver({ directory: dir, forwardTimeoutMs: 300, ...options });
  t.after(() => resolver.close());
  const ports = await resolver.listen('net-a', LOOPBACK, 0);
  return { dir, resolver, ports };
}

async function upstream(t: TestContext, behaviour: Behaviour): Promise<FakeUpstream> {
  const u = await startFakeUpstream(behaviour);
  t.after(() => u.close());
  return u;
}

const answerWith = (addresses: string[]): Behaviour => (q) => respond(q, { addresses });

test('A for a container name: its address, TTL 600, flags qr rd ra, AA off, id and question echoed', async (t) => {
  const { ports } = await fixture(t);
  const answer = await udpQuery(ports.udpPort, makeQuery('Web1', 'A', { id: 4242 }));
  const p = decode(answer);
  assert.equal(p.id, 4242);
  assert.equal(rcodeOf(answer), NOERROR);
  assert.deepEqual({ qr: p.flag_qr, rd: p.flag_rd, ra: p.flag_ra, aa: p.flag_aa, tc: p.flag_tc }, { qr: true, rd: true, ra: true, aa: false, tc: false });
  assert.equal(p.questions![0]!.name, 'Web1', 'question echoed with its case');
  assert.deepEqual(p.answers, [{ name: 'Web1', type: 'A', ttl: 600, class: 'IN', flush: false, data: '10.1.0.2' }]);
});

test('aliases, short ids, <name>.<network> and a trailing dot all resolve', async (t) => {
  const { ports } = await fixture(t);
  for (const name of ['abcdef123456', 'web2.net-a', 'WEB2.NET-A.', 'web1.']) {
    const answer = await udpQuery(ports.udpPort, makeQuery(name));
    assert.equal(rcodeOf(answer), NOERROR, name);
    assert.equal(addressesOf(answer).length, 1, name);
  }
});

test('a shared alias returns every address, in both orders within 50 queries', async (t) => {
  const { ports } = await fixture(t);
  const orders = new Set<string>();
  for (let i = 0; i < 50 && orders.size < 2; i++) {
    const addresses = addressesOf(await udpQuery(ports.udpPort, makeQuery('www')));
    assert.deepEqual([...addresses].sort(), ['10.1.0.2', '10.1.0.3']);
    orders.add(addresses.join(','));
  }
  assert.equal(orders.size, 2, 'answers are shuffled');
});

test('AAAA and MX for a container name: NOERROR with no records', async (t) => {
  const { ports } = await fixture(t);
  for (const type of ['AAAA', 'MX'] as const) {
    const answer = await udpQuery(ports.udpPort, makeQuery('web1', type));
    assert.equal(rcodeOf(answer), NOERROR, type);
    assert.equal(decode(answer).answers!.length, 0, type);
  }
});

test('PTR of a container address answers its name', async (t) => {
  const { ports } = await fixture(t);
  const p = decode(await udpQuery(ports.udpPort, makeQuery('3.0.1.10.in-addr.arpa', 'PTR')));
  assert.deepEqual(p.answers!.map((a) => (a.type === 'PTR' ? [a.type, a.data, a.ttl] : [a.type])), [['PTR', 'web2', 600]]);
});

test('directory changes are visible to the very next query', async (t) => {
  const { dir, ports } = await fixture(t);
  assert.equal(rcodeOf(await udpQuery(ports.udpPort, makeQuery('newbie'))), SERVFAIL, 'unknown, nowhere to forward');
  dir.setNetwork('net-a', { internal: false, records: [...NET_A.records, { ip: '10.1.0.9', names: ['newbie'] }] });
  assert.deepEqual(addressesOf(await udpQuery(ports.udpPort, makeQuery('newbie'))), ['10.1.0.9']);
  dir.setNetwork('net-a', NET_A);
  assert.equal(rcodeOf(await udpQuery(ports.udpPort, makeQuery('newbie'))), SERVFAIL);
});

test('unknown names are forwarded under an id of the resolver\'s own, and the answer comes back with the client id', async (t) => {
  const { dir, ports, resolver } = await fixture(t);
  const up = await upstream(t, answerWith(['192.0.2.7']));
  dir.setHostUpstreams([{ address: LOOPBACK, port: up.port }]);
  const ids = new Set<number>();
  for (let i = 0; i < 8; i++) {
    const answer = await udpQuery(ports.udpPort, makeQuery(`n${i}.example.test`, 'A', { id: 777 }));
    assert.equal(decode(answer).id, 777);
    assert.deepEqual(addressesOf(answer), ['192.0.2.7']);
  }
  for (const r of up.received) ids.add(r.id);
  assert.equal(up.received.length, 8);
  assert.ok(ids.size >= 6, `upstream ids are random, not the client's: ${[...ids].join(',')}`);
  assert.equal(resolver.counters.forwarded, 8);
});

test('a forwarded answer is kept for its TTL: the next query is answered without the upstream, TTL lowered', async (t) => {
  const { dir, ports, resolver } = await fixture(t);
  const up = await upstream(t, answerWith(['192.0.2.7']));
  dir.setHostUpstreams([{ address: LOOPBACK, port: up.port }]);
  const first = await udpQuery(ports.udpPort, makeQuery('cached.example.test', 'A', { id: 1 }));
  const second = await udpQuery(ports.udpPort, makeQuery('CACHED.example.test', 'A', { id: 2 }));
  assert.equal(up.received.length, 1, 'asked upstream once');
  assert.equal(resolver.counters.cacheHits, 1);
  assert.equal(decode(second).id, 2);
  assert.deepEqual(addressesOf(second), addressesOf(first));
  assert.equal(decode(second).questions?.[0]?.name, 'CACHED.example.test', "the client's own question bytes");
  const ttl = (p: Buffer) => (decode(p).answers?.[0] as { ttl?: number } | undefined)?.ttl ?? -1;
  assert.ok(ttl(second) <= ttl(first) && ttl(second) > 0, `${ttl(second)} <= ${ttl(first)}`);
});

test('NXDOMAIN is final: passed through unchanged, the next upstream is not asked', async (t) => {
  const { dir, ports } = await fixture(t);
  const first = await upstream(t, (q) => respond(q, { rcode: NXDOMAIN }));
  const second = await upstream(t, answerWith(['192.0.2.8']));
  dir.setHostUpstreams([{ address: LOOPBACK, port: first.port }, { address: LOOPBACK, port: second.port }]);
  const query = makeQuery('nope.test');
  const answer = await udpQuery(ports.udpPort, query);
  assert.equal(rcodeOf(answer), NXDOMAIN);
  assert.deepEqual(answer, respond(decode(query), { rcode: NXDOMAIN }), 'byte for byte what the upstream sent');
  assert.equal(second.received.length, 0);
});

test('SERVFAIL and REFUSED fail over to the next upstream', async (t) => {
  const { dir, ports } = await fixture(t);
  const servfail = await upstream(t, (q) => respond(q, { rcode: SERVFAIL }));
  const refused = await upstream(t, (q) => respond(q, { rcode: REFUSED }));
  const good = await upstream(t, answerWith(['192.0.2.9']));
  dir.setHostUpstreams([servfail.port, refused.port, good.port].map((port) => ({ address: LOOPBACK, port })));
  assert.deepEqual(addressesOf(await udpQuery(ports.udpPort, makeQuery('example.test'))), ['192.0.2.9']);
  assert.equal(servfail.received.length + refused.received.length + good.received.length, 3);
});

test('a silent upstream times out and fails over; all failing gives SERVFAIL', async (t) => {
  const { dir, ports, resolver } = await fixture(t, { forwardTimeoutMs: 150 });
  const dead = await startDeadUpstream();
  t.after(() => dead.close());
  const good = await upstream(t, answerWith(['192.0.2.10']));
  dir.setHostUpstreams([{ address: LOOPBACK, port: dead.port }, { address: LOOPBACK, port: good.port }]);
  const start = performance.now();
  assert.deepEqual(addressesOf(await udpQuery(ports.udpPort, makeQuery('example.test'))), ['192.0.2.10']);
  assert.ok(performance.now() - start >= 140, 'waited for the dead upstream first');

  dir.setHostUpstreams([{ address: LOOPBACK, port: dead.port }]);
  assert.equal(rcodeOf(await udpQuery(ports.udpPort, makeQuery('example.test'))), SERVFAIL);
  assert.equal(resolver.counters.failures, 1);
});

test('an unreachable upstream port fails over at once, without waiting for the timeout', async (t) => {
  const { dir, ports } = await fixture(t, { forwardTimeoutMs: 1500 });
  const good = await upstream(t, answerWith(['192.0.2.11']));
  dir.setHostUpstreams([{ address: LOOPBACK, port: await closedPort() }, { address: LOOPBACK, port: good.port }]);
  const start = performance.now();
  assert.deepEqual(addressesOf(await udpQuery(ports.udpPort, makeQuery('example.test'))), ['192.0.2.11']);
  assert.ok(performance.now() - start < 1000, 'ICMP port unreachable ended the first attempt');
});

test('container names are answered while a forward to a dead upstream is pending', async (t) => {
  const { dir, ports } = await fixture(t, { forwardTimeoutMs: 800 });
  const dead = await startDeadUpstream();
  t.after(() => dead.close());
  dir.setHostUpstreams([{ address: LOOPBACK, port: dead.port }]);
  const events: string[] = [];
  const start = performance.now();
  const forwarded = udpQuery(ports.udpPort, makeQuery('slow.test'), 3000).then((a) => {
    events.push('forward');
    return a;
  });
  await sleep(20); // the forward is now waiting on the dead upstream
  const local = await udpQuery(ports.udpPort, makeQuery('web1'));
  events.push('local');
  const localMs = performance.now() - start;
  assert.deepEqual(addressesOf(local), ['10.1.0.2']);
  assert.ok(localMs < 800, `local answer took ${localMs.toFixed(0)} ms, the forward timeout is 800 ms`);
  assert.equal(rcodeOf(await forwarded), SERVFAIL);
  assert.deepEqual(events, ['local', 'forward']);
});

test('a truncated UDP answer from upstream is retried over TCP', async (t) => {
  const { dir, ports } = await fixture(t);
  const many = Array.from({ length: 60 }, (_, i) => `192.0.2.${i + 1}`);
  const up = await upstream(t, (q, transport) => (transport === 'udp' ? respond(q, { truncated: true }) : respond(q, { addresses: many })));
  dir.setHostUpstreams([{ address: LOOPBACK, port: up.port }]);

  const big = await udpQuery(ports.udpPort, makeQuery('big.test', 'A', { edns: 4096 }));
  assert.deepEqual(addressesOf(big), many, 'the full answer from the TCP retry fits the client EDNS size');
  assert.deepEqual(up.received.map((r) => r.transport), ['udp', 'tcp']);

  const small = await udpQuery(ports.udpPort, makeQuery('big.test'));
  assert.equal(decode(small).flag_tc, true, 'too big for a 512-byte client: TC set');
  assert.ok(small.length <= 512);
  assert.deepEqual(addressesOf(await tcpQuery(ports.tcpPort, makeQuery('big.test'))), many, 'the client retry over TCP gets it all');
  assert.equal(up.received.at(-1)!.transport, 'tcp', 'a TCP client is forwarded over TCP');
});

test('upstream answers with a wrong id or question are ignored', async (t) => {
  const { dir, ports } = await fixture(t);
  // A hand-driven upstream: for each query, two decoys first, then the real answer.
  const socket = createSocket('udp4');
  t.after(() => socket.close());
  await new Promise<void>((r) => socket.bind(0, LOOPBACK, () => r()));
  socket.on('message', (msg, from) => {
    const q = decode(msg);
    const wrongId = respond(q, { id: (q.id! + 1) & 0xffff, addresses: ['198.51.100.1'] });
    const wrongName = respond(q, { name: 'evil.test', addresses: ['198.51.100.2'] });
    for (const reply of [wrongId, wrongName, respond(q, { addresses: ['192.0.2.12'] })]) socket.send(reply, from.port, from.address);
  });
  dir.setHostUpstreams([{ address: LOOPBACK, port: socket.address().port }]);
  assert.deepEqual(addressesOf(await udpQuery(ports.udpPort, makeQuery('example.test'))), ['192.0.2.12']);
});

test('scoping: a name of network B is not answered on network A, it is forwarded', async (t) => {
  const { dir, ports, resolver } = await fixture(t);
  const portsB = await resolver.listen('net-b', LOOPBACK, 0);
  const up = await upstream(t, (q) => respond(q, { rcode: NXDOMAIN }));
  dir.setHostUpstreams([{ address: LOOPBACK, port: up.port }]);
  assert.equal(rcodeOf(await udpQuery(ports.udpPort, makeQuery('bonly'))), NXDOMAIN);
  assert.deepEqual(up.received.map((r) => r.name), ['bonly']);
  assert.deepEqual(addressesOf(await udpQuery(portsB.udpPort, makeQuery('bonly'))), ['10.2.0.2']);
  assert.equal(rcodeOf(await udpQuery(portsB.udpPort, makeQuery('web1'))), NXDOMAIN, 'and the other way round');
});

test("a container on two networks gets both networks' names from either resolver, as from Docker's", async (t) => {
  const { dir, ports } = await fixture(t);
  const up = await upstream(t, (q) => respond(q, { rcode: NXDOMAIN }));
  dir.setHostUpstreams([{ address: LOOPBACK, port: up.port }]);
  // The client (127.0.0.1 here) is a container on net-a that also joined net-b.
  dir.upsertRecord('net-a', 'client', { ip: LOOPBACK, names: ['client'] });
  dir.upsertRecord('net-b', 'client', { ip: '10.2.0.9', names: ['client'] });
  assert.deepEqual(addressesOf(await udpQuery(ports.udpPort, makeQuery('bonly'))), ['10.2.0.2'], "net-b's name, answered by net-a's resolver");
  assert.equal(up.received.length, 0, 'answered locally, not forwarded');
  // Once it leaves net-b, the same query is forwarded like any unknown name.
  dir.removeRecord('net-b', 'client');
  assert.equal(rcodeOf(await udpQuery(ports.udpPort, makeQuery('bonly'))), NXDOMAIN);
  assert.deepEqual(up.received.map((r) => r.name), ['bonly']);
});

test('internal networks never forward: SERVFAIL', async (t) => {
  const { dir, ports } = await fixture(t);
  const up = await upstream(t, answerWith(['192.0.2.13']));
  dir.setHostUpstreams([{ address: LOOPBACK, port: up.port }]);
  dir.setNetwork('net-a', { ...NET_A, internal: true });
  assert.equal(rcodeOf(await udpQuery(ports.udpPort, makeQuery('example.test'))), SERVFAIL);
  assert.deepEqual(addressesOf(await udpQuery(ports.udpPort, makeQuery('web1'))), ['10.1.0.2'], 'names still resolve');
  assert.equal(up.received.length, 0);
});

test("a container's own --dns servers are used instead of the host's", async (t) => {
  const { dir, ports } = await fixture(t);
  const host = await upstream(t, answerWith(['192.0.2.14']));
  const own = await upstream(t, answerWith(['192.0.2.15']));
  dir.setHostUpstreams([{ address: LOOPBACK, port: host.port }]);
  // The query comes from 127.0.0.1, so that is the "container" given its own servers.
  dir.setNetwork('net-a', { internal: false, records: [...NET_A.records, { ip: LOOPBACK, names: ['me'], upstreams: [{ address: LOOPBACK, port: own.port }] }] });
  assert.deepEqual(addressesOf(await udpQuery(ports.udpPort, makeQuery('example.test'))), ['192.0.2.15']);
  assert.equal(host.received.length, 0);
});

test('the resolver never forwards to itself', async (t) => {
  const { dir, ports } = await fixture(t);
  dir.setHostUpstreams([{ address: LOOPBACK, port: ports.udpPort }]);
  assert.equal(rcodeOf(await udpQuery(ports.udpPort, makeQuery('loop.test'))), SERVFAIL);
});

test('forwards in flight are capped: past the cap, REFUSED at once', async (t) => {
  const { dir, ports, resolver } = await fixture(t, { forwardTimeoutMs: 500, maxInFlight: 2 });
  const dead = await startDeadUpstream();
  t.after(() => dead.close());
  dir.setHostUpstreams([{ address: LOOPBACK, port: dead.port }]);
  const pending = [udpQuery(ports.udpPort, makeQuery('a.test')), udpQuery(ports.udpPort, makeQuery('b.test'))];
  await sleep(30);
  const start = performance.now();
  assert.equal(rcodeOf(await udpQuery(ports.udpPort, makeQuery('c.test'))), REFUSED);
  assert.ok(performance.now() - start < 300);
  assert.deepEqual((await Promise.all(pending)).map(rcodeOf), [SERVFAIL, SERVFAIL]);
  assert.equal(resolver.counters.refused, 1);
});

test('local answers over 512 bytes are truncated on UDP, complete with EDNS or over TCP', async (t) => {
  const { dir, ports } = await fixture(t);
  const records = Array.from({ length: 60 }, (_, i) => ({ ip: `10.1.1.${i + 1}`, names: ['crowd'] }));
  dir.setNetwork('net-a', { internal: false, records });

  const plain = await udpQuery(ports.udpPort, makeQuery('crowd'));
  assert.ok(plain.length <= 512, `${plain.length} bytes`);
  assert.equal(decode(plain).flag_tc, true);
  assert.ok(addressesOf(plain).length > 0 && addressesOf(plain).length < 60, 'keeps the records that fit');

  const edns = await udpQuery(ports.udpPort, makeQuery('crowd', 'A', { edns: 1232 }));
  assert.equal(decode(edns).flag_tc, false);
  assert.equal(addressesOf(edns).length, 60);
  assert.equal(decode(edns).additionals!.filter((a) => a.type === 'OPT').length, 1, 'an EDNS query gets an OPT back');

  const small = await udpQuery(ports.udpPort, makeQuery('crowd', 'A', { edns: 600 }));
  assert.ok(small.length <= 600 && decode(small).flag_tc);

  const tcp = await tcpQuery(ports.tcpPort, makeQuery('crowd'));
  assert.equal(decode(tcp).flag_tc, false);
  assert.equal(addressesOf(tcp).length, 60);
});

test('TCP: several queries on one connection, sent a byte at a time', async (t) => {
  const { ports } = await fixture(t);
  const queries = [makeQuery('web1', 'A', { id: 1 }), makeQuery('web2', 'A', { id: 2 }), makeQuery('www', 'AAAA', { id: 3 })];
  const bytes = Buffer.concat(queries.map(frame));
  const chunks = Array.from(bytes, (b) => Buffer.from([b]));
  const answers = await tcpExchange(ports.tcpPort, chunks, 3, 5000);
  const byId = new Map(answers.map((a) => [decode(a).id, a]));
  assert.deepEqual(addressesOf(byId.get(1)!), ['10.1.0.2']);
  assert.deepEqual(addressesOf(byId.get(2)!), ['10.1.0.3']);
  assert.equal(decode(byId.get(3)!).answers!.length, 0);
});

test('idle TCP connections are closed', async (t) => {
  const { ports } = await fixture(t, { tcpIdleMs: 150 });
  const socket = connect({ host: LOOPBACK, port: ports.tcpPort });
  t.after(() => socket.destroy());
  socket.on('error', () => {});
  const start = performance.now();
  await new Promise<void>((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error('still open after 2 s')), 2000);
    socket.on('close', () => {
      clearTimeout(guard);
      resolve();
    });
  });
  assert.ok(performance.now() - start >= 100);
});

test('malformed packets: FORMERR when the header is readable, dropped otherwise, and the resolver carries on', async (t) => {
  const { ports, resolver } = await fixture(t);
  const garbage = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x3f, 0x41]);
  const formerr = await udpQuery(ports.udpPort, garbage);
  assert.equal(formerr.readUInt16BE(0), 0x1234);
  assert.equal(rcodeOf(formerr), FORMERR);

  const oversized = Buffer.concat([makeQuery('web1', 'A', { id: 0x5678 }), Buffer.alloc(5000)]);
  assert.equal(rcodeOf(await udpQuery(ports.udpPort, oversized)), FORMERR);

  await assert.rejects(udpQuery(ports.udpPort, Buffer.from([1, 2, 3]), 150), /no UDP answer/);
  const response = makeQuery('web1', 'A', { id: 99 });
  response.writeUInt16BE(response.readUInt16BE(2) | 0x8000, 2);
  await assert.rejects(udpQuery(ports.udpPort, response, 150), /no UDP answer/, 'answers are never answered');

  const [tcpFormerr] = await tcpExchange(ports.tcpPort, [frame(Buffer.alloc(0)), frame(garbage)], 1);
  assert.equal(rcodeOf(tcpFormerr!), FORMERR);

  assert.deepEqual(addressesOf(await udpQuery(ports.udpPort, makeQuery('web1'))), ['10.1.0.2']);
  assert.equal(resolver.counters.malformed, 6);
});

test('counters', async (t) => {
  const { dir, ports, resolver } = await fixture(t);
  const up = await upstream(t, answerWith(['192.0.2.16']));
  await udpQuery(ports.udpPort, makeQuery('web1'));
  await udpQuery(ports.udpPort, makeQuery('nowhere.test'));
  dir.setHostUpstreams([{ address: LOOPBACK, port: up.port }]);
  await udpQuery(ports.udpPort, makeQuery('example.test'));
  assert.deepEqual(resolver.counters, { queries: 3, answeredLocally: 1, forwarded: 1, failures: 1, malformed: 0, refused: 0, truncated: 0, cacheHits: 0 });
});

test('listen/unlisten: one listener per network, the port goes away, close() ends pending forwards', async (t) => {
  const { dir, ports, resolver } = await fixture(t, { forwardTimeoutMs: 5000 });
  await assert.rejects(resolver.listen('net-a', LOOPBACK, 0), { name: 'BerthError', kind: 'conflict' });
  await assert.rejects(resolver.listen('net-c', 'not-an-ip', 0), { kind: 'invalid' });
  await assert.rejects(resolver.listen('net-c', LOOPBACK, ports.udpPort), { kind: 'unavailable' }, 'port in use');

  const b = await resolver.listen('net-b', LOOPBACK, 0);
  await resolver.unlisten('net-b');
  await assert.rejects(udpQuery(b.udpPort, makeQuery('bonly'), 150));
  await resolver.listen('net-b', LOOPBACK, 0);

  const dead = await startDeadUpstream();
  t.after(() => dead.close());
  dir.setHostUpstreams([{ address: LOOPBACK, port: dead.port }]);
  const pending = udpQuery(ports.udpPort, makeQuery('slow.test'), 300).catch(() => 'no answer');
  await sleep(30);
  const start = performance.now();
  await resolver.close();
  assert.ok(performance.now() - start < 1000, 'close() did not wait for the 5 s forward timeout');
  assert.equal(await pending, 'no answer');
  await assert.rejects(resolver.listen('net-a', LOOPBACK, 0), { kind: 'unavailable' });
});

/** Polls `check` every 10 ms for up to 2 s. */
async function eventually(check: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (check()) return true;
    await sleep(10);
  }
  return check();
}

test('the batch thread and the event loop answer UDP alike, byte for byte, and count alike', async (t) => {
  const batched = await fixture(t);
  const plain = await fixture(t, { batchedUdp: false });
  const queries: [string, 'A' | 'AAAA' | 'PTR' | 'MX', { edns?: number }][] = [
    ['WeB1', 'A', {}],
    ['web2.net-a', 'AAAA', {}],
    ['abcdef123456', 'MX', { edns: 1232 }],
    ['2.0.1.10.in-addr.arpa', 'PTR', {}],
  ];
  for (const [name, type, opts] of queries) {
    const query = makeQuery(name, type, { id: 7, ...opts });
    assert.deepEqual(await udpQuery(batched.ports.udpPort, query), await udpQuery(plain.ports.udpPort, query), `${type} ${name}`);
  }
  const counted = (f: Fixture) => ({ ...f.resolver.counters });
  assert.ok(await eventually(() => batched.resolver.counters.queries === queries.length), 'the batch thread reported its tally');
  assert.deepEqual(counted(batched), counted(plain));
  assert.equal(counted(batched).answeredLocally, queries.length);
});

test('a directory change is seen by the batch thread for the very next query, and a removed listener frees its port', async (t) => {
  const { dir, resolver, ports } = await fixture(t);
  assert.equal(rcodeOf(await udpQuery(ports.udpPort, makeQuery('newcomer'))), SERVFAIL, 'control: not a container name (no upstream)');
  dir.upsertRecord('net-a', 'n1', { ip: '10.1.0.9', names: ['newcomer'] });
  assert.deepEqual(addressesOf(await udpQuery(ports.udpPort, makeQuery('newcomer'))), ['10.1.0.9']);
  dir.removeRecord('net-a', 'n1');
  assert.equal(rcodeOf(await udpQuery(ports.udpPort, makeQuery('newcomer'))), SERVFAIL, 'gone again');
  await resolver.unlisten('net-a');
  const again = createSocket('udp4');
  t.after(() => again.close());
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.bind({ address: LOOPBACK, port: ports.udpPort, exclusive: true }, () => resolve());
  });
});
