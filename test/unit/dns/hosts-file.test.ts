import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseExtraHost, renderHostsFile } from '../../../src/dns/hosts-file.js';

const DEFAULTS =
  '127.0.0.1\tlocalhost\n' +
  '::1\tlocalhost ip6-localhost ip6-loopback\n' +
  'fe00::0\tip6-localnet\n' +
  'ff00::0\tip6-mcastprefix\n' +
  'ff02::1\tip6-allnodes\n' +
  'ff02::2\tip6-allrouters\n';

test('one network: the defaults, then <ip>\\t<hostname>, exactly like Docker', () => {
  assert.equal(renderHostsFile({ hostname: 'cd49fc327dcd', addresses: ['172.17.0.4'] }), `${DEFAULTS}172.17.0.4\tcd49fc327dcd\n`);
});

test('two networks: one line per address; none: the defaults only', () => {
  assert.equal(renderHostsFile({ hostname: 'web', addresses: ['172.19.0.2', '172.20.0.2'] }), `${DEFAULTS}172.19.0.2\tweb\n172.20.0.2\tweb\n`);
  assert.equal(renderHostsFile({ hostname: 'web', addresses: [] }), DEFAULTS);
});

test('--add-host entries come in order before the container lines; --domainname adds the FQDN', () => {
  const extraHosts = [parseExtraHost('db:10.0.0.5'), parseExtraHost('v6host:2001:db8::1')];
  assert.equal(
    renderHostsFile({ hostname: 'web', domainname: 'example.test', addresses: ['172.19.0.2'], extraHosts }),
    `${DEFAULTS}10.0.0.5\tdb\n2001:db8::1\tv6host\n172.19.0.2\tweb.example.test web\n`,
  );
});

test('parseExtraHost: NAME:IP, brackets, host-gateway', () => {
  assert.deepEqual(parseExtraHost('db:10.0.0.5'), { name: 'db', ip: '10.0.0.5' });
  assert.deepEqual(parseExtraHost('v6:[::1]'), { name: 'v6', ip: '::1' });
  assert.deepEqual(parseExtraHost('gw:host-gateway', '172.17.0.1'), { name: 'gw', ip: '172.17.0.1' });
});

test('parseExtraHost: bad specs are invalid and named in the message', () => {
  const cases: [string, RegExp][] = [
    ['db', /"db": expected NAME:IP/],
    [':10.0.0.5', /expected NAME:IP/],
    ['db:', /expected NAME:IP/],
    ['db:not-an-ip', /"db:not-an-ip": "not-an-ip" is not an IP address/],
    ['db:10.0.0.256', /is not an IP address/],
    ['a b:10.0.0.5', /contains whitespace/],
    ['gw:host-gateway', /no host-gateway address/],
  ];
  for (const [spec, message] of cases) assert.throws(() => parseExtraHost(spec), { name: 'BerthError', kind: 'invalid', message }, spec);
});
