/** The udp backend's checks that need no kernel: its MTU, refused local setups and refused peers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPeer, createUdpBackend } from '../../../src/cluster/host-subnets/udp-backend.js';
import { parseCidr } from '../../../src/ipam/ipv4.js';
import { BerthError } from '../../../src/errors.js';

const local = { subnet: '10.5.1.0/24', clusterCidr: '10.5.0.0/16', publicIp: '192.168.90.11', underlay: { ifname: 'eth0', mtu: 1500 }, root: '/tmp/none' };
const me = { subnet: parseCidr('10.5.1.0/24'), cluster: parseCidr('10.5.0.0/16') };
const peer = { subnet: '10.5.2.0/24', publicIp: '192.168.90.12', backendType: 'udp', backendData: null };

test('the MTU is the underlay’s minus 28 (outer IPv4 and UDP headers)', () => {
  assert.equal(createUdpBackend().mtu(1500), 1472);
  assert.equal(createUdpBackend().mtu(9000), 8972);
});

test('a subnet outside the cluster CIDR, or an underlay MTU too small, is refused before anything is made', async () => {
  await assert.rejects(createUdpBackend().start({ ...local, subnet: '10.6.1.0/24' }), (e: BerthError) => e.kind === 'invalid' && /not inside the cluster CIDR 10\.5\.0\.0\/16/.test(e.message));
  await assert.rejects(createUdpBackend().start({ ...local, underlay: { ifname: 'eth0', mtu: 576 } }), (e: BerthError) => e.kind === 'invalid' && /MTU 576/.test(e.message));
});

test('peers: another backend, another prefix length, outside the cluster, or this host’s own subnet are refused', () => {
  assert.deepEqual(checkPeer(me, peer), { subnet: parseCidr('10.5.2.0/24').network, publicIp: 0xc0a85a0c });
  assert.throws(() => checkPeer(me, { ...peer, backendType: 'vxlan' }), /uses the vxlan backend and this host udp/);
  assert.throws(() => checkPeer(me, { ...peer, subnet: '10.5.2.0/25' }), /not a \/24 of the cluster CIDR/);
  assert.throws(() => checkPeer(me, { ...peer, subnet: '10.7.2.0/24' }), /not a \/24 of the cluster CIDR/);
  assert.throws(() => checkPeer(me, { ...peer, subnet: '10.5.1.0/24' }), /this host's own subnet/);
  assert.throws(() => checkPeer(me, { ...peer, publicIp: '192.168.90' }), /underlay address of peer 10\.5\.2\.0\/24/);
});

test('peers before start are refused with a reason', async () => {
  await assert.rejects(createUdpBackend().addPeer(peer), /cannot add peer 10\.5\.2\.0\/24 before it has started/);
});
