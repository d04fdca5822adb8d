/**
 * A bounded, deterministic fuzzer: valid packets mutated in the ways broken or hostile clients and
 * upstreams mangle them, plus pure noise. Set DNS_FUZZ_SEED to replay a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket from 'dns-packet';
import { MemoryDirectory } from '../../../src/dns/directory.js';
import { DnsResolver } from '../../../src/dns/resolver.js';
import { MAX_UDP_BYTES, buildReply, decodeQuery, frame, type Decoded, type LocalRecord } from '../../../src/dns/packet.js';
import { LOOPBACK, addressesOf, makeQuery, respond, sleep, tcpQuery, udpQuery } from './dns-client.js';

const SEED = Number(process.env.DNS_FUZZ_SEED ?? 0x5eed1e55);
const ROUNDS = 20_000;

/** xorshift32: small, fast and reproducible. */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}
type Rand = ReturnType<typeof prng>;

const CORPUS = [
  makeQuery('web1'),
  makeQuery('www', 'AAAA', { edns: 4096 }),
  makeQuery('3.0.1.10.in-addr.arpa', 'PTR'),
  makeQuery('a.rather.long.name.under.example.test', 'MX', { edns: 1232 }),
  makeQuery('x', 'TXT'),
  respond(dnsPacket.decode(makeQuery('example.test')), { addresses: ['192.0.2.1', '192.0.2.2'] }),
];

/** A, PTR, AAAA, MX, TXT, ANY. */
const QUERY_TYPES = [1, 12, 28, 15, 16, 255];

function isLetter(byte: number): boolean {
  return (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
}

function randomBytes(rand: Rand, length: number): Buffer {
  return Buffer.from(Array.from({ length }, () => rand(256)));
}

/** One mutated packet: a corpus entry changed in one of several ways, or noise. */
function mutant(rand: Rand): Buffer {
  const base = Buffer.from(CORPUS[rand(CORPUS.length)]!);
  switch (rand(10)) {
    case 0: // bit flips
      for (let i = rand(8) + 1; i > 0; i--) base[rand(base.length)]! ^= 1 << rand(8);
      return base;
    case 1: // random bytes overwritten
      for (let i = rand(6) + 1; i > 0; i--) base[rand(base.length)] = rand(256);
      return base;
    case 2: // truncated
      return base.subarray(0, rand(base.length));
    case 3: // garbage appended
      return Buffer.concat([base, randomBytes(rand, rand(600))]);
    case 4: // forged section counts
      base.writeUInt16BE(rand(4) === 0 ? rand(0x10000) : rand(4), 4 + 2 * rand(4));
      return base;
    case 5: // a compression pointer dropped somewhere, possibly forward or looping
      if (base.length > 14) base.writeUInt16BE(0xc000 | rand(base.length + 4), 12 + rand(base.length - 13));
      return base;
    case 6: // oversized
      return Buffer.concat([base, Buffer.alloc(MAX_UDP_BYTES + rand(100))]);
    case 7: // a label length pointing past the end
      if (base.length > 12) base[12] = 0x3f;
      return base;
    case 8: {
      // Still a valid query, with a random id, query type and name case.
      if (base.readUInt16BE(2) & 0x8000) return base;
      base.writeUInt16BE(rand(0x10000), 0);
      const nameEnd = base.indexOf(0, 12); // corpus names hold no zero byte before their end
      for (let i = 13; i < nameEnd; i++) if (rand(2) === 0 && isLetter(base[i]!)) base[i]! ^= 0x20;
      base.writeUInt16BE(rand(3) === 0 ? rand(0x10000) : QUERY_TYPES[rand(QUERY_TYPES.length)]!, nameEnd + 1);
      return base;
    }
    default: // noise
      return randomBytes(rand, rand(64) === 0 ? rand(5000) : rand(600));
  }
}

const RECORDS: LocalRecord[] = [
  { type: 'A', address: '10.1.0.2' },
  { type: 'PTR', target: 'web1.net-a' },
];

function checkDecoded(packet: Buffer, rand: Rand): Decoded['kind'] {
  const d = decodeQuery(packet, MAX_UDP_BYTES);
  if (d.kind === 'drop') {
    assert.ok(packet.length < 12 || (packet.readUInt16BE(2) & 0x8000) !== 0, `dropped a packet with a readable query header: ${d.reason}`);
    return d.kind;
  }
  if (d.kind === 'error') {
    assert.equal(d.reply.length, 12);
    assert.equal(d.reply.readUInt16BE(0), packet.readUInt16BE(0));
    assert.ok(d.reply.readUInt16BE(2) & 0x8000);
    return d.kind;
  }
  const q = d.query;
  assert.equal(q.id, packet.readUInt16BE(0));
  assert.deepEqual(q.question, packet.subarray(12, 12 + q.question.length));
  assert.ok(q.udpLimit >= 512 && q.udpLimit <= MAX_UDP_BYTES);
  const limit = 512 + rand(4000);
  const { bytes } = buildReply(q, 0, RECORDS.slice(0, rand(3)), limit);
  assert.ok(bytes.length <= limit);
  const reply = dnsPacket.decode(bytes);
  assert.equal(reply.id, q.id);
  assert.equal(reply.questions![0]!.name, q.name, 'the reply echoes the question');
  return d.kind;
}

test(`decoder: ${ROUNDS} mutated and random packets never throw and always give a sane result (seed ${SEED})`, () => {
  const rand = prng(SEED);
  const seen: Record<Decoded['kind'], number> = { query: 0, error: 0, drop: 0 };
  const start = performance.now();
  for (let i = 0; i < ROUNDS; i++) {
    const packet = mutant(rand);
    try {
      seen[checkDecoded(packet, rand)]++;
    } catch (err) {
      assert.fail(`round ${i}, packet ${packet.toString('hex')}: ${(err as Error).message}`);
    }
  }
  assert.ok(performance.now() - start < 20_000, 'decoding stays cheap');
  for (const [kind, count] of Object.entries(seen)) assert.ok(count > ROUNDS / 50, `only ${count} packets ended as ${kind}: the fuzzer misses a path`);
});

test(`live resolver: ${ROUNDS} mutated packets over UDP and TCP, mangled upstream answers, then still answering`, async (t) => {
  const rand = prng(SEED ^ 0xa5a5a5a5);
  // An upstream that answers every forwarded query with a mangled copy of it, or not at all.
  const upstream = createSocket('udp4');
  t.after(() => upstream.close());
  await new Promise<void>((r) => upstream.bind(0, LOOPBACK, () => r()));
  upstream.on('message', (msg, from) => {
    if (rand(4) === 0 || msg.length < 12) return;
    const answer = Buffer.from(msg);
    answer.writeUInt16BE(answer.readUInt16BE(2) | 0x8000 | rand(16), 2);
    for (let i = rand(3); i > 0; i--) answer[rand(answer.length)] = rand(256);
    upstream.send(answer, from.port, from.address);
  });

  const dir = new MemoryDirectory();
  dir.setNetwork('net-a', { internal: false, records: [{ ip: '10.1.0.2', names: ['web1'] }] });
  dir.setHostUpstreams([{ address: LOOPBACK, port: upstream.address().port }]);
  const resolver = new DnsResolver({ directory: dir, forwardTimeoutMs: 50, maxInFlight: 256 });
  t.after(() => resolver.close());
  const ports = await resolver.listen('net-a', LOOPBACK, 0);

  const client = createSocket('udp4');
  t.after(() => client.close());
  client.on('message', () => {});
  await new Promise<void>((r) => client.bind(0, LOOPBACK, () => r()));
  for (let i = 0; i < ROUNDS; i++) {
    client.send(mutant(rand), ports.udpPort, LOOPBACK);
    if (i % 100 === 99) await sleep(2); // let the resolver drain rather than overflow the socket buffer
  }

  const tcp = connect({ host: LOOPBACK, port: ports.tcpPort });
  t.after(() => tcp.destroy());
  tcp.on('error', () => {});
  tcp.on('data', () => {});
  await new Promise<void>((r) => tcp.once('connect', () => r()));
  for (let i = 0; i < 2000; i++) tcp.write(rand(10) === 0 ? randomBytes(rand, rand(100)) : frame(mutant(rand)));

  await sleep(200);
  assert.ok(resolver.counters.queries > ROUNDS / 2, `the resolver saw ${resolver.counters.queries} packets`);
  assert.deepEqual(addressesOf(await udpQuery(ports.udpPort, makeQuery('web1'))), ['10.1.0.2']);
  assert.deepEqual(addressesOf(await tcpQuery(ports.tcpPort, makeQuery('web1'))), ['10.1.0.2']);
});
