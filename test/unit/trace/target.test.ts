import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDestinationSpec, parseEnd, parseTraceRequest } from '../../../src/trace/target.js';

describe('trace targets', () => {
  test('an end is host, an IP address, or a container name or id', () => {
    assert.deepEqual(parseEnd('host', 'source'), { kind: 'host' });
    assert.deepEqual(parseEnd('172.18.0.2', 'source'), { kind: 'ip', ip: '172.18.0.2' });
    assert.deepEqual(parseEnd('[FD00::2]', 'source'), { kind: 'ip', ip: 'fd00::2' });
    assert.deepEqual(parseEnd('web-1', 'source'), { kind: 'container', ref: 'web-1' });
    assert.deepEqual(parseEnd('123456', 'source'), { kind: 'container', ref: '123456' }, 'an all-digit id prefix');
  });

  test('malformed ends are refused, naming what is wrong', () => {
    assert.throws(() => parseEnd('1.2.3', 'destination'), /destination 1\.2\.3 is not a valid IP address/);
    assert.throws(() => parseEnd('300.1.1.1', 'source'), /not a valid IP address/);
    assert.throws(() => parseEnd('fd00::zz', 'source'), /not a valid IP address/);
    assert.throws(() => parseEnd('we b', 'source'), /neither host, an IP address, nor a valid container name/);
    assert.throws(() => parseEnd('', 'source'), /the source is empty/);
  });

  test('DST[:PORT[/PROTO]]', () => {
    assert.deepEqual(parseDestinationSpec('web'), { to: 'web' });
    assert.deepEqual(parseDestinationSpec('web:80'), { to: 'web', port: 80, protocol: 'tcp' });
    assert.deepEqual(parseDestinationSpec('10.0.0.1:53/udp'), { to: '10.0.0.1', port: 53, protocol: 'udp' });
    assert.deepEqual(parseDestinationSpec('[fd00::2]:443'), { to: 'fd00::2', port: 443, protocol: 'tcp' });
    assert.deepEqual(parseDestinationSpec('fd00::2'), { to: 'fd00::2' }, 'a bare IPv6 address has no port');
    assert.throws(() => parseDestinationSpec('web:'), /gives no port/);
    assert.throws(() => parseDestinationSpec('web:0'), /port 0 is not a port number/);
    assert.throws(() => parseDestinationSpec('web:65536'), /from 1 to 65535/);
    assert.throws(() => parseDestinationSpec('web:http'), /port http is not a port number/);
    assert.throws(() => parseDestinationSpec('web:80/sctp'), /protocol sctp is not supported/);
    assert.throws(() => parseDestinationSpec('web:80/icmp'), /icmp has no ports/);
  });

  test('the API body: a port needs tcp or udp, tcp or udp needs a port', () => {
    assert.deepEqual(parseTraceRequest({ from: 'a', to: 'b' }), { from: { kind: 'container', ref: 'a' }, to: { kind: 'container', ref: 'b' }, protocol: 'icmp' });
    assert.equal(parseTraceRequest({ from: 'a', to: 'b', port: 80 }).protocol, 'tcp');
    assert.throws(() => parseTraceRequest({ from: 'a', to: 'b', protocol: 'udp' }), /udp needs a port/);
    assert.throws(() => parseTraceRequest({ from: 'a', to: 'b', port: 80, protocol: 'icmp' }), /icmp has no ports/);
    assert.throws(() => parseTraceRequest({ from: 'a', to: 'b', port: 70000 }), /not a port number/);
  });
});
