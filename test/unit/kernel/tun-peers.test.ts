/** The udp backend's forwarding decisions (pure): longest match by subnet, the no-relay and anti-spoofing checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerTable, ipv4Ends } from '../../../src/kernel/tun-peers.js';
import { parseIpv4 } from '../../../src/ipam/ipv4.js';

const ip = (s: string) => parseIpv4(s);

function packet(src: string, dst: string, version = 4): Buffer {
  const p = Buffer.alloc(28);
  p[0] = (version << 4) | 5;
  p.writeUInt32BE(ip(src), 12);
  p.writeUInt32BE(ip(dst), 16);
  return p;
}

const table = () => {
  const t = new PeerTable({ network: ip('10.5.1.0'), prefix: 24 });
  t.set({ subnet: ip('10.5.2.0'), publicIp: ip('192.168.90.12') });
  t.set({ subnet: ip('10.5.3.0'), publicIp: ip('192.168.90.13') });
  return t;
};

test('a packet goes to the peer leasing its destination’s subnet; an unleased subnet is dropped as noPeer', () => {
  const t = table();
  assert.deepEqual(t.outbound(packet('10.5.1.2', '10.5.3.200'), 28), { subnet: ip('10.5.3.0'), publicIp: ip('192.168.90.13') });
  assert.equal(t.outbound(packet('10.5.1.2', '10.5.9.2'), 28), 'noPeer');
});

test('not IPv4, or shorter than a header: malformed, both ways', () => {
  const t = table();
  assert.equal(t.outbound(packet('10.5.1.2', '10.5.2.2', 6), 28), 'malformed');
  assert.equal(t.outbound(packet('10.5.1.2', '10.5.2.2'), 19), 'malformed');
  assert.equal(t.inbound(ip('192.168.90.12'), packet('10.5.2.2', '10.5.1.2', 6), 28), 'malformed');
  assert.equal(ipv4Ends(packet('1.2.3.4', '5.6.7.8'), 20)?.dst, ip('5.6.7.8'));
});

test('a datagram is accepted only from a peer, with an inner source in that peer’s subnet, for this host’s subnet', () => {
  const t = table();
  // Positive control first: the same packet from its own host.
  assert.equal(t.inbound(ip('192.168.90.12'), packet('10.5.2.2', '10.5.1.2'), 28), null);
  assert.equal(t.inbound(ip('192.168.90.99'), packet('10.5.2.2', '10.5.1.2'), 28), 'unknownSender');
  assert.equal(t.inbound(ip('192.168.90.13'), packet('10.5.2.2', '10.5.1.2'), 28), 'spoofed');
  assert.equal(t.inbound(ip('192.168.90.12'), packet('10.5.2.2', '10.5.3.2'), 28), 'notLocal');
});

test('a host that moves to a new lease or address replaces its entry; delete is idempotent', () => {
  const t = table();
  t.set({ subnet: ip('10.5.4.0'), publicIp: ip('192.168.90.12') });
  assert.equal(t.has(ip('10.5.2.0')), false, 'the old lease of that address is gone');
  assert.equal(t.inbound(ip('192.168.90.12'), packet('10.5.4.2', '10.5.1.2'), 28), null);
  t.set({ subnet: ip('10.5.4.0'), publicIp: ip('192.168.90.14') });
  assert.equal(t.inbound(ip('192.168.90.12'), packet('10.5.4.2', '10.5.1.2'), 28), 'unknownSender');
  assert.equal(t.delete(ip('10.5.4.0')), true);
  assert.equal(t.delete(ip('10.5.4.0')), false);
  assert.equal(t.size, 1);
});
