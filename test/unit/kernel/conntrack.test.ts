import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bindingsToForget, flushRequests, matches, nla, parseConntrackEntry } from '../../../src/kernel/conntrack.js';

const ip = (s: string) => Buffer.from(s.split('.').map(Number));
const be16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
function tuple(type: number, src: string, dst: string, proto: number, sport: number, dport: number): Buffer {
  return nla(
    type,
    Buffer.concat([
      nla(1, Buffer.concat([nla(1, ip(src)), nla(2, ip(dst))]), true),
      nla(2, Buffer.concat([nla(1, Buffer.from([proto])), nla(2, be16(sport)), nla(3, be16(dport))]), true),
    ]),
    true,
  );
}

// A LAN client's UDP flow to published port 8700, DNAT'd to 10.180.0.2:9000.
const body = Buffer.concat([
  Buffer.from([2, 0, 0, 0]),
  tuple(1, '10.217.0.2', '10.217.0.1', 17, 40123, 8700),
  tuple(2, '10.180.0.2', '10.217.0.2', 17, 9000, 40123),
]);

test('a ctnetlink entry is decoded and its delete request carries the original tuple verbatim', () => {
  const e = parseConntrackEntry(body)!;
  assert.deepEqual(e.orig, { src: '10.217.0.2', dst: '10.217.0.1', protocol: 'udp', dport: 8700 });
  assert.deepEqual(e.reply, { src: '10.180.0.2', dst: '10.217.0.2', protocol: 'udp', dport: 40123 });
  assert.equal(e.deleteRequest.type, (1 << 8) | 2);
  assert.deepEqual(e.deleteRequest.body.subarray(4), tuple(1, '10.217.0.2', '10.217.0.1', 17, 40123, 8700));
});

test('entries match released addresses (as DNAT target too) and newly published ports', () => {
  const e = parseConntrackEntry(body)!;
  const none = { ips: new Set<string>(), bindings: [] };
  assert.equal(matches(e, none), false);
  assert.equal(matches(e, { ...none, ips: new Set(['10.180.0.2']) }), true, 'DNAT target');
  assert.equal(matches(e, { ...none, ips: new Set(['10.180.0.3']) }), false);
  assert.equal(matches(e, { ...none, bindings: [{ protocol: 'udp', hostIp: '0.0.0.0', hostPort: 8700 }] }), true);
  assert.equal(matches(e, { ...none, bindings: [{ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8700 }] }), false);
  assert.equal(matches(e, { ...none, bindings: [{ protocol: 'udp', hostIp: '127.0.0.1', hostPort: 8700 }] }), false, 'another host address');
  assert.equal(parseConntrackEntry(Buffer.from([2, 0, 0, 0])), undefined);
});

test('filtered flushes: replies from and packets from each released address, flows to each new binding', () => {
  const [replies, sent, binding] = flushRequests(['10.180.0.2'], [{ protocol: 'udp', hostIp: '0.0.0.0', hostPort: 8700 }]);
  for (const r of [replies!, sent!, binding!]) {
    assert.equal(r.type, (1 << 8) | 2, 'IPCTNL_MSG_CT_DELETE');
    assert.deepEqual([...r.body.subarray(0, 2)], [2, 1], 'AF_INET, version 1 (the family filters)');
  }
  // CTA_TUPLE_REPLY { CTA_TUPLE_IP { CTA_IP_V4_SRC 10.180.0.2 } } + CTA_FILTER { REPLY_FLAGS: IP_SRC }
  assert.deepEqual(
    replies!.body.subarray(4),
    Buffer.concat([nla(2, nla(1, nla(1, ip('10.180.0.2')), true), true), nla(25, nla(2, Buffer.from([1, 0, 0, 0])), true)]),
  );
  assert.deepEqual(sent!.body.subarray(4, 8), nla(1, nla(1, nla(1, ip('10.180.0.2')), true), true).subarray(0, 4), 'an original tuple');
  // CTA_TUPLE_ORIG { CTA_TUPLE_PROTO { NUM 17, DST_PORT 8700 } } + CTA_FILTER { ORIG_FLAGS: PROTO_NUM | PROTO_DST_PORT }
  assert.deepEqual(
    binding!.body.subarray(4),
    Buffer.concat([nla(1, nla(2, Buffer.concat([nla(1, Buffer.from([17])), nla(3, be16(8700))]), true), true), nla(25, nla(1, Buffer.from([0x28, 0, 0, 0])), true)]),
  );
  assert.equal(flushRequests([], [{ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 80 }])[0]!.body.includes(ip('127.0.0.1')), true, 'a specific host address is matched too');
});

test('a publication forgets earlier flows to its UDP ports only (a refused TCP client retries from a new port)', () => {
  const udp = { protocol: 'udp' as const, hostIp: '0.0.0.0', hostPort: 8700 };
  const udpOnAddress = { protocol: 'udp' as const, hostIp: '10.217.0.1', hostPort: 8701 };
  const tcp = { protocol: 'tcp' as const, hostIp: '0.0.0.0', hostPort: 8080 };
  assert.deepEqual(bindingsToForget([tcp, udp, udpOnAddress]), [udp, udpOnAddress]);
  assert.deepEqual(bindingsToForget([tcp]), [], 'TCP alone: no flush, no walk of the conntrack table');
});
