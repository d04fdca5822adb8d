import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBinding, parseExposeSpec, parsePortSpec, type PortBinding } from '../../../src/ipam/port-spec.js';

const tcp = (hostPort: number, containerPort: number, hostIp = '0.0.0.0'): PortBinding => ({
  protocol: 'tcp',
  hostIp,
  hostPort,
  containerPort,
});

test('HOSTPORT:CPORT', () => {
  assert.deepEqual(parsePortSpec('8080:80'), [tcp(8080, 80)]);
});

test('IP:HOSTPORT:CPORT', () => {
  assert.deepEqual(parsePortSpec('127.0.0.1:8080:80'), [tcp(8080, 80, '127.0.0.1')]);
  // 0.0.0.0 named itself is IPv4 only; no address means every address of both families.
  assert.deepEqual(parsePortSpec('0.0.0.0:1:65535'), [{ ...tcp(1, 65535), ipv4Only: true }]);
  assert.equal(parsePortSpec('1:65535')[0]!.ipv4Only, undefined);
});

test('IP::CPORT asks for an ephemeral port on that address', () => {
  assert.deepEqual(parsePortSpec('127.0.0.1::80'), [tcp(0, 80, '127.0.0.1')]);
});

test('CPORT alone, :CPORT and ::CPORT ask for an ephemeral port on every address', () => {
  for (const spec of ['80', ':80', '::80']) assert.deepEqual(parsePortSpec(spec), [tcp(0, 80)], spec);
});

test('the protocol suffix, tcp by default, case-insensitive', () => {
  assert.deepEqual(parsePortSpec('5353:53/udp'), [{ ...tcp(5353, 53), protocol: 'udp' }]);
  assert.deepEqual(parsePortSpec('8080:80/tcp'), [tcp(8080, 80)]);
  assert.deepEqual(parsePortSpec('10.0.0.1:53:53/UDP'), [{ ...tcp(53, 53, '10.0.0.1'), protocol: 'udp' }]);
  assert.deepEqual(parsePortSpec('53/udp'), [{ ...tcp(0, 53), protocol: 'udp' }]);
});

test('equal-length ranges pair up port by port', () => {
  const bindings = parsePortSpec('8000-8009:80-89');
  assert.equal(bindings.length, 10);
  assert.deepEqual(bindings[0], tcp(8000, 80));
  assert.deepEqual(bindings[9], tcp(8009, 89));
  assert.deepEqual(parsePortSpec('127.0.0.1:8000-8001:80-81/udp'), [
    { ...tcp(8000, 80, '127.0.0.1'), protocol: 'udp' },
    { ...tcp(8001, 81, '127.0.0.1'), protocol: 'udp' },
  ]);
  assert.deepEqual(parsePortSpec('8080-8080:80'), [tcp(8080, 80)]);
});

test('a container range alone gets an ephemeral port each', () => {
  assert.deepEqual(parsePortSpec('80-82'), [tcp(0, 80), tcp(0, 81), tcp(0, 82)]);
  assert.deepEqual(parsePortSpec('127.0.0.1::80-81'), [tcp(0, 80, '127.0.0.1'), tcp(0, 81, '127.0.0.1')]);
});

test('a host range for one container port means any one free port of the range', () => {
  assert.deepEqual(parsePortSpec('8000-8009:80'), [{ ...tcp(0, 80), hostPortRange: [8000, 8009] }]);
  assert.deepEqual(parsePortSpec('127.0.0.1:8000-8009:80/udp'), [
    { protocol: 'udp', hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, hostPortRange: [8000, 8009] },
  ]);
});

test('leading zeros in ports are read as decimal, as Docker does', () => {
  assert.deepEqual(parsePortSpec('08080:080'), [tcp(8080, 80)]);
});

test('non-numeric ports are named', () => {
  assert.throws(() => parsePortSpec('8080:abc'), {
    name: 'BerthError',
    kind: 'invalid',
    message: 'invalid container port "abc" in "-p 8080:abc": expected a number 1-65535',
  });
  assert.throws(() => parsePortSpec('http:80'), {
    kind: 'invalid',
    message: 'invalid host port "http" in "-p http:80": expected a number 1-65535',
  });
  assert.throws(() => parsePortSpec('8080:'), { message: 'invalid container port "" in "-p 8080:": expected a number 1-65535' });
  assert.throws(() => parsePortSpec('8080: 80'), { message: /invalid container port " 80"/ });
});

test('ports 0 and above 65535 are rejected', () => {
  assert.throws(() => parsePortSpec('0:80'), { kind: 'invalid', message: 'invalid host port "0" in "-p 0:80": expected a number 1-65535' });
  assert.throws(() => parsePortSpec('8080:0'), { message: 'invalid container port "0" in "-p 8080:0": expected a number 1-65535' });
  assert.throws(() => parsePortSpec('65536:80'), { message: 'invalid host port "65536" in "-p 65536:80": expected a number 1-65535' });
  assert.throws(() => parsePortSpec('80:123456'), { message: /invalid container port "123456"/ });
  assert.throws(() => parsePortSpec('65530-65536:80'), { message: /invalid host port "65536" in "-p 65530-65536:80"/ });
});

test('reversed and malformed ranges are rejected', () => {
  assert.throws(() => parsePortSpec('8009-8000:80'), {
    kind: 'invalid',
    message: 'invalid host port range "8009-8000" in "-p 8009-8000:80": the start is greater than the end',
  });
  assert.throws(() => parsePortSpec('89-80'), { message: 'invalid container port range "89-80" in "-p 89-80": the start is greater than the end' });
  for (const [spec, range] of [['80-', '80-'], ['-80', '-80'], ['8000-8001-8002:80', '8000-8001-8002']]) {
    assert.throws(() => parsePortSpec(spec as string), {
      kind: 'invalid',
      message: new RegExp(`port range "${range}" in "-p ${spec}": expected START-END like 8000-8009$`),
    });
  }
});

test('host and container ranges of different lengths are rejected', () => {
  assert.throws(() => parsePortSpec('8000-8009:80-88'), {
    kind: 'invalid',
    message: 'invalid port spec "-p 8000-8009:80-88": host range 8000-8009 has 10 ports but container range 80-88 has 9',
  });
  assert.throws(() => parsePortSpec('8080:80-81'), {
    message: 'invalid port spec "-p 8080:80-81": host port 8080 has 1 port but container range 80-81 has 2',
  });
});

test('unknown protocols are rejected', () => {
  assert.throws(() => parsePortSpec('80/sctpx'), { kind: 'invalid', message: 'unknown protocol "sctpx" in "-p 80/sctpx": use tcp or udp' });
  assert.throws(() => parsePortSpec('8080:80/'), { message: 'unknown protocol "" in "-p 8080:80/": use tcp or udp' });
  assert.throws(() => parsePortSpec('80/tcp/udp'), { message: /unknown protocol "tcp\/udp"/ });
  assert.throws(() => parsePortSpec('80/sctp'), { kind: 'invalid', message: 'protocol "sctp" in "-p 80/sctp" is not supported yet: use tcp or udp' });
});

test('bad host IPs are rejected', () => {
  assert.throws(() => parsePortSpec('300.1.1.1:80:80'), {
    kind: 'invalid',
    message: 'invalid host IP "300.1.1.1" in "-p 300.1.1.1:80:80": expected an IPv4 address like 127.0.0.1',
  });
  assert.throws(() => parsePortSpec('localhost:80:80'), { message: /invalid host IP "localhost"/ });
});

test('IPv6 host addresses go in brackets and come out canonical', () => {
  assert.deepEqual(parsePortSpec('[::1]:8080:80'), [{ protocol: 'tcp', hostIp: '::1', hostPort: 8080, containerPort: 80 }]);
  assert.deepEqual(parsePortSpec('[::]:8080:80/udp'), [{ protocol: 'udp', hostIp: '::', hostPort: 8080, containerPort: 80 }]);
  assert.deepEqual(parsePortSpec('[FD00:0::1]::80'), [{ protocol: 'tcp', hostIp: 'fd00::1', hostPort: 0, containerPort: 80 }]);
  assert.equal(formatBinding({ protocol: 'tcp', hostIp: '::1', hostPort: 8080, containerPort: 80 }), '80/tcp -> [::1]:8080');
});

test('malformed IPv6 host addresses are refused clearly', () => {
  assert.throws(() => parsePortSpec('[::1:8080:80'), { kind: 'invalid', message: /brackets followed by a colon/ });
  assert.throws(() => parsePortSpec('[fd00::zz]:8080:80'), { kind: 'invalid', message: /invalid host IP "\[fd00::zz\]".*IPv6 address like \[::1\]/ });
  assert.throws(() => parsePortSpec('[::1]:1:8080:80'), { kind: 'invalid', message: /expected \[IP:\]/ });
  assert.throws(() => parsePortSpec('::1:8080:80'), { kind: 'invalid', message: /"-p ::1:8080:80"/ });
});

test('malformed specs say what is expected', () => {
  for (const spec of ['', '/tcp', '1:2:3:4']) {
    assert.throws(() => parsePortSpec(spec), {
      kind: 'invalid',
      message: new RegExp(`^invalid port spec "-p ${spec}": expected \\[IP:\\]\\[HOSTPORT:\\]CONTAINERPORT\\[/tcp\\|udp\\]`),
    });
  }
});

test('parseExposeSpec: a port or a range, tcp by default', () => {
  assert.deepEqual(parseExposeSpec('80'), [{ protocol: 'tcp', containerPort: 80 }]);
  assert.deepEqual(parseExposeSpec('80/tcp'), [{ protocol: 'tcp', containerPort: 80 }]);
  assert.deepEqual(parseExposeSpec('80-82/udp'), [
    { protocol: 'udp', containerPort: 80 },
    { protocol: 'udp', containerPort: 81 },
    { protocol: 'udp', containerPort: 82 },
  ]);
});

test('parseExposeSpec errors name the spec', () => {
  assert.throws(() => parseExposeSpec('abc'), { kind: 'invalid', message: 'invalid container port "abc" in "--expose abc": expected a number 1-65535' });
  assert.throws(() => parseExposeSpec('82-80'), { message: /"--expose 82-80": the start is greater than the end/ });
  assert.throws(() => parseExposeSpec('80/icmp'), { message: 'unknown protocol "icmp" in "--expose 80/icmp": use tcp or udp' });
  assert.throws(() => parseExposeSpec('8080:80'), { message: /invalid container port "8080:80" in "--expose 8080:80"/ });
});

test('formatBinding prints docker port lines', () => {
  assert.equal(formatBinding(tcp(8080, 80)), '80/tcp -> 0.0.0.0:8080');
  assert.equal(formatBinding({ ...tcp(5353, 53, '127.0.0.1'), protocol: 'udp' }), '53/udp -> 127.0.0.1:5353');
  assert.equal(formatBinding({ ...tcp(0, 80), hostPortRange: [8000, 8009] }), '80/tcp -> 0.0.0.0:8000-8009');
  assert.equal(formatBinding({ ...tcp(8003, 80), hostPortRange: [8000, 8009] }), '80/tcp -> 0.0.0.0:8003');
});
