/** The rtnetlink codec against hand-checked byte layouts (linux/rtnetlink.h, linux/if_link.h). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nl from '../../../src/kernel/netlink/codec.js';

/** Walks top-level attributes of a request body after its fixed header. */
function attrs(body: Buffer, fixedLen: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = fixedLen;
  while (off + 4 <= body.length) {
    const len = body.readUInt16LE(off);
    out.set(body.readUInt16LE(off + 2) & 0x3fff, body.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

test('a message header carries length, type, flags and sequence', () => {
  const req = nl.setLinkUp({ index: 7 });
  const msg = nl.encodeMessage(req, 42);
  assert.equal(msg.readUInt32LE(0), 16 + 16, 'header + ifinfomsg, no attributes when addressed by index');
  assert.equal(msg.readUInt16LE(4), nl.RTM_NEWLINK);
  assert.equal(msg.readUInt16LE(6) & nl.NLM_F_REQUEST, nl.NLM_F_REQUEST);
  assert.equal(msg.readUInt32LE(8), 42);
  assert.equal(msg.readInt32LE(16 + 4), 7, 'ifi_index');
  assert.equal(msg.readUInt32LE(16 + 8), nl.IFF_UP, 'ifi_flags');
  assert.equal(msg.readUInt32LE(16 + 12), nl.IFF_UP, 'ifi_change');
});

test('a veth request nests the peer (with its namespace fd and MAC) inside IFLA_LINKINFO', () => {
  const req = nl.newVeth({ name: 'bv123', masterIndex: 3, up: true, mtu: 1400, peerName: 'eth0', peerNetnsFd: 9, peerMac: '02:42:ac:11:00:02' });
  assert.equal(req.flags & (nl.NLM_F_CREATE | nl.NLM_F_EXCL), nl.NLM_F_CREATE | nl.NLM_F_EXCL);
  const top = attrs(req.body, 16);
  assert.equal(top.get(3)!.toString(), 'bv123\0', 'IFLA_IFNAME');
  assert.equal(top.get(10)!.readUInt32LE(0), 3, 'IFLA_MASTER');
  assert.equal(top.get(4)!.readUInt32LE(0), 1400, 'IFLA_MTU');
  const linkinfo = attrs(top.get(18)!, 0);
  assert.equal(linkinfo.get(1)!.toString(), 'veth\0', 'IFLA_INFO_KIND');
  const peer = attrs(linkinfo.get(2)!, 0).get(1)!; // IFLA_INFO_DATA → VETH_INFO_PEER
  const peerAttrs = attrs(peer, 16);
  assert.equal(peerAttrs.get(3)!.toString(), 'eth0\0');
  assert.equal(peerAttrs.get(28)!.readUInt32LE(0), 9, 'IFLA_NET_NS_FD');
  assert.deepEqual([...peerAttrs.get(1)!], [0x02, 0x42, 0xac, 0x11, 0x00, 0x02], 'IFLA_ADDRESS');
});

test('an address request has ifaddrmsg and IFA_LOCAL/IFA_ADDRESS/IFA_BROADCAST', () => {
  const req = nl.newAddress(5, '172.17.0.2', 16, '172.17.255.255');
  assert.equal(req.body.readUInt8(0), 2, 'AF_INET');
  assert.equal(req.body.readUInt8(1), 16, 'prefix');
  assert.equal(req.body.readUInt32LE(4), 5, 'index');
  const a = attrs(req.body, 8);
  assert.deepEqual([...a.get(2)!], [172, 17, 0, 2]);
  assert.deepEqual([...a.get(1)!], [172, 17, 0, 2]);
  assert.deepEqual([...a.get(4)!], [172, 17, 255, 255]);
});

test('a default route goes to the main table with a gateway and an output interface', () => {
  const req = nl.newDefaultRoute('10.0.0.1', 4);
  assert.equal(req.body.readUInt8(1), 0, 'dst_len 0');
  assert.equal(req.body.readUInt8(4), 254, 'RT_TABLE_MAIN');
  const a = attrs(req.body, 12);
  assert.deepEqual([...a.get(5)!], [10, 0, 0, 1], 'RTA_GATEWAY');
  assert.equal(a.get(4)!.readUInt32LE(0), 4, 'RTA_OIF');
});

test('replies are split, and an error carries the kernel extended message', () => {
  const ack = Buffer.alloc(36);
  ack.writeUInt32LE(36, 0);
  ack.writeUInt16LE(nl.NLMSG_ERROR, 4);
  ack.writeUInt32LE(1, 8);
  const err = Buffer.alloc(16 + 4 + 16 + 12);
  err.writeUInt32LE(err.length, 0);
  err.writeUInt16LE(nl.NLMSG_ERROR, 4);
  err.writeUInt16LE(0x200, 6); // NLM_F_ACK_TLVS
  err.writeUInt32LE(2, 8);
  err.writeInt32LE(-17, 16); // -EEXIST
  err.writeUInt16LE(10, 36); // NLMSGERR_ATTR_MSG, "exists\0"
  err.writeUInt16LE(1, 38);
  err.write('exists\0', 40);
  const both = Buffer.concat([ack, err]);
  const msgs = [...nl.splitMessages(both, both.length)];
  assert.equal(msgs.length, 2);
  assert.deepEqual(nl.parseError(msgs[0]!), { errno: 0 });
  assert.deepEqual(nl.parseError(msgs[1]!), { errno: 17, detail: 'exists' });
});

test('a link reply is parsed into name, flags, master, kind and alias', () => {
  const body = Buffer.concat([
    Buffer.from([0, 0, 1, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
    tlv(3, Buffer.from('berth0\0')),
    tlv(10, u32(2)),
    tlv(20, Buffer.from('berth:network:abc\0')),
    tlv(18, tlv(1, Buffer.from('bridge\0'))),
  ]);
  const link = nl.parseLink(body);
  assert.equal(link.index, 9);
  assert.equal(link.name, 'berth0');
  assert.equal(link.up, true);
  assert.equal(link.master, 2);
  assert.equal(link.kind, 'bridge');
  assert.equal(link.alias, 'berth:network:abc');
});

test('malformed input: bad addresses are refused, truncated replies yield nothing', () => {
  assert.throws(() => nl.ipv4Bytes('300.1.1.1'), /not an IPv4 address/);
  assert.throws(() => nl.macBytes('02:42'), /not a MAC address/);
  const short = Buffer.from([40, 0, 0, 0, 16, 0]);
  assert.equal([...nl.splitMessages(short, short.length)].length, 0);
});

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

function tlv(type: number, value: Buffer): Buffer {
  const len = 4 + value.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  value.copy(b, 4);
  return b;
}

test('IPv6 addresses, routes and neighbours are encoded with AF_INET6 and 16-byte attributes', () => {
  const addr = nl.newAddress(7, 'fd60::2', 64);
  assert.equal(addr.body.readUInt8(0), 10, 'ifa_family AF_INET6');
  assert.equal(addr.body.readUInt8(1), 64, 'prefix length');
  assert.equal(addr.body.readUInt8(2) & 0x02, 0x02, 'IFA_F_NODAD: no duplicate address detection wait');
  const attrs = nl.parseAttrs(addr.body.subarray(8));
  assert.equal(attrs.get(1)?.toString('hex'), 'fd600000000000000000000000000002', 'IFA_ADDRESS');
  assert.equal(attrs.get(4), undefined, 'no broadcast for IPv6');
  const route = nl.newDefaultRoute('fd60::1', 3);
  assert.equal(route.body.readUInt8(0), 10);
  assert.equal(nl.parseAttrs(route.body.subarray(12)).get(5)?.length, 16, 'RTA_GATEWAY is 16 bytes');
  const neigh = nl.newNeighbour(3, 'fd60::1', '02:42:0a:3c:00:01');
  assert.equal(neigh.body.readUInt8(0), 10);
  assert.equal(nl.newAddress(7, '10.0.0.2', 24, '10.0.0.255').body.readUInt8(0), 2, 'IPv4 stays AF_INET');
});

test('IPv6 replies parse to canonical text; dumps ask for one family', () => {
  const body = Buffer.concat([Buffer.from([10, 64, 0, 0, 0, 0, 0, 0]), Buffer.from('1400010020010db8000000000000000000000001', 'hex')]);
  body.writeUInt32LE(9, 4);
  assert.deepEqual(nl.parseAddress(body), { index: 9, address: '2001:db8::1', prefix: 64 });
  const route = Buffer.alloc(12);
  route.writeUInt8(10, 0);
  route.writeUInt8(254, 4);
  assert.equal(nl.parseRoute(route)?.dst, '::', 'a default IPv6 route');
  assert.equal(nl.dumpAddresses(nl.FAMILY_INET6).body.readUInt8(0), 10);
  assert.equal(nl.dumpRoutes().body.readUInt8(0), 2, 'IPv4 unless asked');
});
