/** The ADD result's shape per version: one `ips` entry and one default route per family, prevResult kept. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildResult, type Attachment } from '../../../src/cni/protocol.js';

const v4: Attachment = {
  hostLink: 'bv-1234',
  ifname: 'eth0',
  mac: '02:42:0a:3c:00:02',
  netns: '/run/netns/c1',
  ip4: { address: '10.60.0.2', prefix: 24, gateway: '10.60.0.1' },
  dns: { nameservers: ['10.60.0.1'] },
};
const dual: Attachment = { ...v4, ip6: { address: 'fd60::2', prefix: 64, gateway: 'fd60::1' } };

test('IPv4 only: one address and one default route, as before', () => {
  const r = buildResult('1.1.0', v4);
  assert.deepEqual(r.interfaces, [{ name: 'bv-1234' }, { name: 'eth0', mac: v4.mac, sandbox: v4.netns }]);
  assert.deepEqual(r.ips, [{ address: '10.60.0.2/24', gateway: '10.60.0.1', interface: 1 }]);
  assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0', gw: '10.60.0.1' }]);
});

test('dual stack (1.0.0, 1.1.0): both addresses on the sandbox interface, a default route per family, no version field', () => {
  for (const version of ['1.0.0', '1.1.0']) {
    const r = buildResult(version, dual);
    assert.equal(r.cniVersion, version);
    assert.deepEqual(r.ips, [
      { address: '10.60.0.2/24', gateway: '10.60.0.1', interface: 1 },
      { address: 'fd60::2/64', gateway: 'fd60::1', interface: 1 },
    ]);
    assert.deepEqual(r.routes, [
      { dst: '0.0.0.0/0', gw: '10.60.0.1' },
      { dst: '::/0', gw: 'fd60::1' },
    ]);
  }
});

test('IPv6 only: one IPv6 address and its default route', () => {
  const { ip4: _, ...rest } = dual;
  const r = buildResult('1.1.0', rest);
  assert.deepEqual(r.ips, [{ address: 'fd60::2/64', gateway: 'fd60::1', interface: 1 }]);
  assert.deepEqual(r.routes, [{ dst: '::/0', gw: 'fd60::1' }]);
});

test('dual stack (0.4.0): each address names its family', () => {
  const r = buildResult('0.4.0', dual);
  assert.deepEqual(r.ips, [
    { address: '10.60.0.2/24', gateway: '10.60.0.1', interface: 1, version: '4' },
    { address: 'fd60::2/64', gateway: 'fd60::1', interface: 1, version: '6' },
  ]);
  assert.deepEqual(buildResult('0.4.0', v4).ips, [{ address: '10.60.0.2/24', gateway: '10.60.0.1', interface: 1, version: '4' }]);
});

test('a prevResult is kept and ours appended: indexes point into the merged interfaces, DNS merged', () => {
  const prev = {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'lo0' }],
    ips: [{ address: '192.0.2.5/32', interface: 0 }],
    routes: [{ dst: '198.51.100.0/24' }],
    dns: { domain: 'example.test', nameservers: ['192.0.2.53'] },
  };
  const r = buildResult('1.0.0', dual, prev);
  assert.deepEqual(r.interfaces.map((i) => i.name), ['lo0', 'bv-1234', 'eth0']);
  assert.deepEqual(r.ips.map((i) => [i.address, i.interface]), [['192.0.2.5/32', 0], ['10.60.0.2/24', 2], ['fd60::2/64', 2]]);
  assert.deepEqual(r.routes, [{ dst: '198.51.100.0/24' }, { dst: '0.0.0.0/0', gw: '10.60.0.1' }, { dst: '::/0', gw: 'fd60::1' }]);
  assert.deepEqual(r.dns, { domain: 'example.test', nameservers: ['10.60.0.1'] });
  assert.equal(prev.ips.length, 1, 'the prevResult itself is not modified');
});

test('no host link (a macvlan child): the sandbox interface is the only one added', () => {
  const r = buildResult('1.1.0', { ...dual, hostLink: null });
  assert.deepEqual(r.interfaces, [{ name: 'eth0', mac: v4.mac, sandbox: v4.netns }]);
  assert.deepEqual(r.ips.map((i) => i.interface), [0, 0]);
});
