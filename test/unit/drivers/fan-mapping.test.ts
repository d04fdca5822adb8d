/**
 * The fan's address mapping: the examples of fanctl(8) and fanatic(8), the round trip host →
 * slice → host for every host of a /16, and each refusal with what it names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fanDeviceMac, fanMap, fanVni, hostOfSlice, hostPartOf, pickHostAddress, sliceOf, underlayHostOf } from '../../../src/drivers/fan/fan-mapping.js';
import { formatIpv4, parseCidr, parseIpv4 } from '../../../src/ipam/ipv4.js';

const ip = (text: string) => parseIpv4(text);

test("fanctl(8)'s example: host 172.16.3.4 of 172.16.0.0/16 owns 250.3.4.0/24, and 250.3.4.15 goes to 172.16.3.4", () => {
  const map = fanMap('172.16.0.0/16', '250.0.0.0/8');
  assert.equal(map.slicePrefix, 24);
  const { subnet, gateway } = sliceOf(map, ip('172.16.3.4'));
  assert.equal(subnet.text, '250.3.4.0/24');
  assert.equal(formatIpv4(gateway), '250.3.4.1');
  assert.equal(formatIpv4(underlayHostOf(map, ip('250.3.4.15'))!), '172.16.3.4');
  assert.equal(formatIpv4(hostOfSlice(map, subnet)), '172.16.3.4');
});

test("fanatic's rule for other prefixes: slice = overlay prefix + (32 − underlay prefix)", () => {
  const wide = fanMap('10.1.2.0/24', '250.0.0.0/8');
  assert.equal(wide.slicePrefix, 16);
  assert.equal(sliceOf(wide, ip('10.1.2.7')).subnet.text, '250.7.0.0/16');
  assert.equal(formatIpv4(underlayHostOf(wide, ip('250.7.200.3'))!), '10.1.2.7');
  const narrow = fanMap('192.168.0.0/16', '10.64.0.0/12');
  assert.equal(narrow.slicePrefix, 28);
  assert.equal(sliceOf(narrow, ip('192.168.1.2')).subnet.text, '10.64.16.32/28');
  assert.equal(formatIpv4(underlayHostOf(narrow, ip('10.64.16.45'))!), '192.168.1.2');
});

test('every host of a /16 maps to its own slice and back, and the slice names the host', () => {
  const map = fanMap('192.168.0.0/16', '250.0.0.0/8');
  const slices = new Set<string>();
  for (let part = 1; part < 0xffff; part += 37) {
    const host = ip('192.168.0.0') + part;
    const { subnet, gateway } = sliceOf(map, host);
    slices.add(subnet.text);
    assert.equal(hostOfSlice(map, subnet), host);
    for (const last of [1, 2, 128, 254]) assert.equal(underlayHostOf(map, subnet.network + last), host, `${formatIpv4(subnet.network + last)} lives on ${formatIpv4(host)}`);
    assert.equal(gateway, subnet.network + 1);
  }
  assert.equal(slices.size, Math.ceil(0xfffe / 37));
});

test('addresses outside the overlay, and slices of the underlay network or broadcast address, belong to no host', () => {
  const map = fanMap('192.168.0.0/16', '250.0.0.0/8');
  assert.equal(underlayHostOf(map, ip('10.90.12.5')), undefined);
  assert.equal(underlayHostOf(map, ip('250.0.0.5')), undefined, '192.168.0.0 is the underlay network');
  assert.equal(underlayHostOf(map, ip('250.255.255.5')), undefined, '192.168.255.255 is its broadcast');
  assert.throws(() => sliceOf(map, ip('10.0.0.1')), /10\.0\.0\.1 is not a host address of the underlay 192\.168\.0\.0\/16/);
  assert.throws(() => hostOfSlice(map, parseCidr('250.90.0.0/16')), /250\.90\.0\.0\/16 is not a host's slice of the fan 250\.0\.0\.0\/8 over 192\.168\.0\.0\/16/);
});

test('the fan device MAC is 02:fa and the host part; the VNI is the overlay’s top 24 bits', () => {
  const map = fanMap('192.168.0.0/16', '250.0.0.0/8');
  assert.equal(fanDeviceMac(hostPartOf(map, ip('192.168.90.11'))), '02:fa:00:00:5a:0b');
  assert.equal(fanDeviceMac(hostPartOf(fanMap('10.1.2.0/24', '250.0.0.0/8'), ip('10.1.2.7'))), '02:fa:00:00:00:07');
  assert.equal(fanVni(map), 0xfa0000);
  assert.equal(fanVni(fanMap('192.168.0.0/16', '10.0.0.0/8')), 0x0a0000);
  assert.notEqual(fanVni(fanMap('192.168.0.0/16', '10.0.0.0/12')), fanVni(fanMap('192.168.0.0/16', '10.16.0.0/12')));
});

test("fanctl's -u form: an underlay given as this host's address names that address", () => {
  const map = fanMap('192.168.90.12/16', '250.0.0.0/8');
  assert.equal(map.underlay.text, '192.168.0.0/16');
  assert.equal(formatIpv4(map.hostAddress!), '192.168.90.12');
  assert.equal(fanMap('192.168.0.0/16', '250.0.0.0/8').hostAddress, undefined);
});

test('refusals name what is wrong and what to give instead', () => {
  const cases: [string, string, RegExp][] = [
    ['192.168.0.0', '250.0.0.0/8', /-o underlay=192\.168\.0\.0 is not an IPv4 CIDR: .*-o underlay=192\.168\.0\.0\/16/],
    ['192.168.0.0/16', '250.0.0.1/8', /overlay .*host bits are set; did you mean 250\.0\.0\.0\/8/],
    ['192.168.0.0/16', '0.0.0.0/0', /whole address space/],
    ['192.168.0.0/16', '127.0.0.0/8', /overlaps loopback space/],
    ['192.168.0.0/16', '224.0.0.0/8', /overlaps multicast space/],
    ['192.168.0.0/16', '169.254.0.0/16', /overlaps link-local space/],
    ['10.1.0.0/16', '10.0.0.0/8', /the overlay 10\.0\.0\.0\/8 overlaps the underlay 10\.1\.0\.0\/16/],
    ['192.168.0.0/16', '250.0.0.0/16', /an underlay \/16 and an overlay \/16 leave each host a \/32 .*at most a \/30/],
    ['10.0.0.0/8', '250.0.0.0/8', /an underlay \/8 and an overlay \/8 leave each host a \/32/],
    ['192.168.0.0/30', '250.0.0.0/25', /smaller than a \/24/],
  ];
  for (const [underlay, overlay, message] of cases) assert.throws(() => fanMap(underlay, overlay), message, `${underlay} ${overlay}`);
});

test("the host's underlay address: the only one it has there, or the one named; none or several is refused, listing them", () => {
  const eth0 = { address: '192.168.90.11', prefix: 24, ifname: 'eth0' };
  const eth1 = { address: '192.168.91.11', prefix: 24, ifname: 'eth1' };
  const lan = { address: '10.0.0.5', prefix: 24, ifname: 'wlan0' };
  const under = fanMap('192.168.0.0/16', '250.0.0.0/8');
  assert.equal(pickHostAddress(under, [lan, eth0]), eth0);
  assert.throws(() => pickHostAddress(fanMap('172.16.0.0/16', '250.0.0.0/8'), [lan, eth0]), /no address in the underlay 172\.16\.0\.0\/16 \(its IPv4 addresses: 10\.0\.0\.5\/24 on wlan0, 192\.168\.90\.11\/24 on eth0\)/);
  assert.throws(() => pickHostAddress(under, [eth0, eth1]), /several addresses in the underlay 192\.168\.0\.0\/16 \(192\.168\.90\.11 on eth0, 192\.168\.91\.11 on eth1\): .*-o underlay=192\.168\.90\.11\/16/);
  assert.equal(pickHostAddress(fanMap('192.168.91.11/16', '250.0.0.0/8'), [eth0, eth1]), eth1);
  assert.throws(() => pickHostAddress(fanMap('192.168.7.7/16', '250.0.0.0/8'), [eth0, eth1]), /names 192\.168\.7\.7, which is not an address of this host/);
});
