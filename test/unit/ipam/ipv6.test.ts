import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalIpv6,
  cidrs6Overlap,
  formatIpv6,
  ipv6Bytes,
  ipv6FromBytes,
  parseCidr6,
  parseIpv6,
  pickSubnet6,
  reverseName6,
  ulaPrefixOf,
} from '../../../src/ipam/ipv6.js';
import { allocate6, checkRequested6, validatePool6 } from '../../../src/ipam/pool6.js';

test('IPv6 text round-trips to the RFC 5952 canonical form', () => {
  const cases: [string, string][] = [
    ['fd00:0:0:0:0:0:0:1', 'fd00::1'],
    ['FD00::0001', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::', 'fe80::'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
  ];
  for (const [text, want] of cases) assert.equal(canonicalIpv6(text), want, text);
});

test('malformed IPv6 is refused with the field named', () => {
  for (const bad of ['fd00:::1', 'fd00::1::2', '1:2:3:4:5:6:7:8:9', 'fd00::g', '10.0.0.1', '', 'fe80::1%eth0']) {
    assert.throws(() => parseIpv6(bad, '--ip6'), (e: Error) => e.message.includes('--ip6') && e.message.includes(JSON.stringify(bad)), bad);
  }
});

test('an IPv6 CIDR with host bits set is refused with the network it probably meant', () => {
  assert.equal(parseCidr6('FD00:1::/64').text, 'fd00:1::/64');
  assert.throws(() => parseCidr6('fd00:1::5/64'), /host bits are set; did you mean fd00:1::\/64\?/);
  assert.throws(() => parseCidr6('fd00:1::/129'), /not an IPv6 CIDR/);
  assert.throws(() => parseCidr6('10.0.0.0/8'), /not an IPv6 CIDR/);
});

test('overlap is symmetric and exact at the edges', () => {
  const a = parseCidr6('fd00:1::/48');
  assert.ok(cidrs6Overlap(a, parseCidr6('fd00:1:0:ffff::/64')));
  assert.ok(cidrs6Overlap(parseCidr6('fd00:1:0:ffff::/64'), a));
  assert.ok(!cidrs6Overlap(a, parseCidr6('fd00:2::/64')));
});

test('the ULA /48 derives from the host id (Docker 27), and is fd-prefixed and stable', () => {
  const a = ulaPrefixOf('host-a');
  assert.equal(a.prefix, 48);
  assert.match(a.text, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/48$/);
  assert.equal(ulaPrefixOf('host-a').text, a.text);
  assert.notEqual(ulaPrefixOf('host-b').text, a.text);
});

test('the first free /64 is picked, skipping taken ones', () => {
  const base = parseCidr6('fd12:3456:789a::/48');
  assert.equal(pickSubnet6(base, []).text, 'fd12:3456:789a::/64');
  assert.equal(pickSubnet6(base, [parseCidr6('fd12:3456:789a::/64'), parseCidr6('fd12:3456:789a:1::/64')]).text, 'fd12:3456:789a:2::/64');
});

test('reverse names have 32 nibbles under ip6.arpa; bytes round-trip', () => {
  const ip = parseIpv6('2001:db8::567:89ab');
  assert.equal(reverseName6(ip), 'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
  assert.equal(ipv6FromBytes(ipv6Bytes(ip)), ip);
  assert.equal(ipv6Bytes(ip).toString('hex'), '20010db80000000000000000056789ab');
});

test('pool: gateway ::1, containers from ::2, lowest free reused, last address usable', () => {
  const pool = validatePool6(parseCidr6('fd00:9::/126'));
  assert.equal(formatIpv6(pool.gateway), 'fd00:9::1');
  assert.equal(formatIpv6(allocate6(pool, new Set(), 'n')), 'fd00:9::2');
  assert.equal(formatIpv6(allocate6(pool, new Set([parseIpv6('fd00:9::2')]), 'n')), 'fd00:9::3');
  assert.throws(() => allocate6(pool, new Set([parseIpv6('fd00:9::2'), parseIpv6('fd00:9::3')]), 'n'), /network "n" is full/);
});

test('pool: bad gateway, range and size are refused with what to do', () => {
  const subnet = parseCidr6('fd00:9::/64');
  assert.throws(() => validatePool6(parseCidr6('fd00:9::/127')), /too small/);
  assert.throws(() => validatePool6(subnet, parseIpv6('fd00:8::1')), /gateway must be inside fd00:9::\/64/);
  assert.throws(() => validatePool6(subnet, parseIpv6('fd00:9::')), /anycast.*use fd00:9::1/);
  assert.throws(() => validatePool6(subnet, undefined, parseCidr6('fd00:8::/80')), /--ip-range must be inside/);
  const ranged = validatePool6(subnet, undefined, parseCidr6('fd00:9::100/120'));
  assert.equal(formatIpv6(allocate6(ranged, new Set(), 'n')), 'fd00:9::100');
});

test('a requested --ip6 must lie in the subnet and be free', () => {
  const pool = validatePool6(parseCidr6('fd00:9::/64'));
  assert.throws(() => checkRequested6(pool, parseIpv6('fd00:8::5'), new Set(), 'n'), /does not belong to network "n"'s IPv6 subnet fd00:9::\/64/);
  assert.throws(() => checkRequested6(pool, parseIpv6('fd00:9::1'), new Set(), 'n'), /gateway/);
  assert.throws(() => checkRequested6(pool, parseIpv6('fd00:9::5'), new Set([parseIpv6('fd00:9::5')]), 'n'), /already in use/);
  assert.doesNotThrow(() => checkRequested6(pool, parseIpv6('fd00:9::5'), new Set(), 'n'));
});
