import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  broadcastOf,
  cidrContains,
  cidrContainsCidr,
  cidrFromAddress,
  cidrSize,
  cidrsOverlap,
  firstHost,
  formatIpv4,
  isLoopback,
  lastHost,
  macFromIpv4,
  parseCidr,
  parseIpv4,
  parseMac,
} from '../../../src/ipam/ipv4.js';

const ip = (text: string) => parseIpv4(text);

test('parseIpv4 and formatIpv4 round-trip across the whole range', () => {
  for (const text of ['0.0.0.0', '10.1.0.5', '127.0.0.1', '172.17.0.2', '192.168.255.254', '255.255.255.255']) {
    assert.equal(formatIpv4(parseIpv4(text)), text);
  }
  assert.equal(parseIpv4('10.0.0.1'), 0x0a000001);
  assert.equal(parseIpv4('255.255.255.255'), 0xffffffff, 'stays unsigned above 127.x');
  assert.equal(parseIpv4('192.168.0.1'), 3232235521);
});

test('parseIpv4 rejects malformed text and names it', () => {
  for (const bad of ['', '10.0.0', '10.0.0.0.1', '256.0.0.1', '10.0.0.-1', '10.0.0.x', '010.0.0.1', ' 10.0.0.1', '10..0.1', '1e1.0.0.1']) {
    assert.throws(() => parseIpv4(bad), {
      name: 'BerthError',
      kind: 'invalid',
      message: `invalid IPv4 address "${bad}": expected four numbers 0-255 like 10.1.0.5`,
    });
  }
});

test('parseIpv4 uses the caller\'s name for the value', () => {
  assert.throws(() => parseIpv4('10.0.0.300', 'gateway'), { message: /^invalid gateway "10\.0\.0\.300"/ });
});

test('formatIpv4 refuses numbers that are not uint32 addresses', () => {
  for (const bad of [-1, 2 ** 32, 1.5, NaN]) assert.throws(() => formatIpv4(bad), { kind: 'internal' });
});

test('parseCidr gives the canonical network', () => {
  assert.deepEqual(parseCidr('10.1.0.0/16'), { network: ip('10.1.0.0'), prefix: 16, text: '10.1.0.0/16' });
  assert.deepEqual(parseCidr('0.0.0.0/0'), { network: 0, prefix: 0, text: '0.0.0.0/0' });
  assert.deepEqual(parseCidr('10.0.0.7/32'), { network: ip('10.0.0.7'), prefix: 32, text: '10.0.0.7/32' });
  assert.equal(parseCidr('255.255.255.0/24').network, 0xffffff00);
});

test('parseCidr rejects text that is not a CIDR', () => {
  for (const bad of ['10.98.0.0/33', '10.98.0.0', '10.98.0.0/', '/24', '10.98.0/24', '10.98.0.0/24/1', '10.98.0.0/-1', '10.98.0.0/08', 'x/24']) {
    assert.throws(() => parseCidr(bad), {
      kind: 'invalid',
      message: `invalid subnet "${bad}": not a CIDR (expected e.g. 10.1.0.0/16)`,
    });
  }
});

test('parseCidr rejects host bits and suggests the network', () => {
  assert.throws(() => parseCidr('10.98.0.1/24'), {
    kind: 'invalid',
    message: 'invalid subnet "10.98.0.1/24": host bits are set; did you mean 10.98.0.0/24?',
  });
  assert.throws(() => parseCidr('192.168.5.0/20', '--ip-range'), {
    message: 'invalid --ip-range "192.168.5.0/20": host bits are set; did you mean 192.168.0.0/20?',
  });
  assert.throws(() => parseCidr('1.0.0.0/0'), { message: /did you mean 0\.0\.0\.0\/0\?/ });
});

test('cidrFromAddress masks a host address down to its network', () => {
  assert.equal(cidrFromAddress(ip('192.168.1.5'), 24).text, '192.168.1.0/24');
  assert.equal(cidrFromAddress(ip('192.168.1.5'), 32).text, '192.168.1.5/32');
  assert.equal(cidrFromAddress(ip('192.168.1.5'), 0).text, '0.0.0.0/0');
  assert.throws(() => cidrFromAddress(ip('10.0.0.1'), 33), { kind: 'internal' });
});

test('cidrContains checks the network part only', () => {
  const net = parseCidr('10.1.0.0/16');
  assert.ok(cidrContains(net, ip('10.1.0.0')));
  assert.ok(cidrContains(net, ip('10.1.255.255')));
  assert.ok(!cidrContains(net, ip('10.2.0.0')));
  assert.ok(!cidrContains(net, ip('10.0.255.255')));
  assert.ok(cidrContains(parseCidr('0.0.0.0/0'), ip('203.0.113.9')));
  assert.ok(cidrContains(parseCidr('255.255.255.255/32'), 0xffffffff));
});

test('cidrContainsCidr and cidrsOverlap', () => {
  const big = parseCidr('172.19.0.0/16');
  const small = parseCidr('172.19.0.0/24');
  const other = parseCidr('172.20.0.0/16');
  assert.ok(cidrContainsCidr(big, small));
  assert.ok(!cidrContainsCidr(small, big));
  assert.ok(cidrContainsCidr(big, big));
  assert.ok(cidrsOverlap(big, small));
  assert.ok(cidrsOverlap(small, big));
  assert.ok(!cidrsOverlap(big, other));
  assert.ok(!cidrsOverlap(parseCidr('10.0.0.0/25'), parseCidr('10.0.0.128/25')), 'adjacent halves do not overlap');
});

test('broadcast, first and last host, size', () => {
  const net = parseCidr('10.0.0.0/24');
  assert.equal(formatIpv4(broadcastOf(net)), '10.0.0.255');
  assert.equal(formatIpv4(firstHost(net)), '10.0.0.1');
  assert.equal(formatIpv4(lastHost(net)), '10.0.0.254');
  assert.equal(cidrSize(net), 256);
  assert.equal(cidrSize(parseCidr('0.0.0.0/0')), 2 ** 32);
  assert.equal(formatIpv4(broadcastOf(parseCidr('0.0.0.0/0'))), '255.255.255.255');
  const p2p = parseCidr('10.0.0.0/31');
  assert.deepEqual([firstHost(p2p), lastHost(p2p)].map(formatIpv4), ['10.0.0.0', '10.0.0.1']);
  const single = parseCidr('10.0.0.9/32');
  assert.deepEqual([firstHost(single), lastHost(single), cidrSize(single)], [ip('10.0.0.9'), ip('10.0.0.9'), 1]);
});

test('macFromIpv4 derives Docker\'s MAC', () => {
  assert.equal(macFromIpv4(ip('172.17.0.2')), '02:42:ac:11:00:02');
  assert.equal(macFromIpv4(ip('172.19.0.3')), '02:42:ac:13:00:03');
  assert.equal(macFromIpv4(ip('255.255.255.254')), '02:42:ff:ff:ff:fe');
});

test('parseMac accepts unicast MACs and lower-cases them', () => {
  assert.equal(parseMac('02:42:AC:11:00:02'), '02:42:ac:11:00:02');
  assert.equal(parseMac('aa:bb:cc:dd:ee:ff'), 'aa:bb:cc:dd:ee:ff');
});

test('parseMac rejects malformed, multicast and zero MACs', () => {
  for (const bad of ['', '02:42:ac:11:00', '02:42:ac:11:00:02:03', '02-42-ac-11-00-02', '0242.ac11.0002', '02:42:ac:11:00:0g', '2:42:ac:11:00:02']) {
    assert.throws(() => parseMac(bad), {
      kind: 'invalid',
      message: `invalid MAC address "${bad}": expected six hex pairs like 02:42:ac:11:00:02`,
    });
  }
  assert.throws(() => parseMac('01:00:5e:00:00:01'), { kind: 'invalid', message: /"01:00:5e:00:00:01": it is a multicast address/ });
  assert.throws(() => parseMac('ff:ff:ff:ff:ff:ff'), { message: /multicast/ });
  assert.throws(() => parseMac('00:00:00:00:00:00'), { message: /"00:00:00:00:00:00": the all-zero address/ });
});

test('isLoopback covers 127.0.0.0/8', () => {
  assert.ok(isLoopback(ip('127.0.0.1')));
  assert.ok(isLoopback(ip('127.255.0.9')));
  assert.ok(!isLoopback(ip('128.0.0.1')));
  assert.ok(!isLoopback(ip('10.0.0.1')));
});
