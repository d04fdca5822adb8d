/** Flannel's keys and JSON, subnet arithmetic, subnet.env, the subnet choice, VtepMACs and host-gw's adjacency check (pure). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../../../src/cluster/host-subnets/flannel-keys.js';
import { chooseSubnet } from '../../../../src/cluster/host-subnets/subnet-lease.js';
import { vtepMacOf, vxlanEntryOf } from '../../../../src/cluster/host-subnets/vxlan-backend.js';
import { segmentOf } from '../../../../src/cluster/host-subnets/host-gw-backend.js';
import { parseBackendType } from '../../../../src/cluster/host-subnets/backends.js';
import { parseCidr } from '../../../../src/ipam/ipv4.js';
import type { KeyValue } from '../../../../src/cluster/etcd.js';

test('keys are Flannel’s: /coreos.com/network/config and subnets/10.5.34.0-24', () => {
  assert.equal(F.CONFIG_KEY, '/coreos.com/network/config');
  assert.equal(F.subnetKey('10.5.34.0/24'), '/coreos.com/network/subnets/10.5.34.0-24');
  assert.equal(F.subnetOfKey('/coreos.com/network/subnets/10.5.34.0-24'), '10.5.34.0/24');
  assert.equal(F.subnetOfKey('/coreos.com/network/subnets/10.5.34.0-24&fd00::-64'), undefined, 'a dual-stack key is not read as IPv4');
  assert.equal(F.subnetOfKey('/coreos.com/network/config'), undefined);
  assert.equal(F.subnetOfKey('/coreos.com/network/subnets/10.5.34.7-24'), undefined, 'host bits set');
});

test('config and lease JSON are byte for byte what Flannel writes, and read back', () => {
  assert.equal(F.configJson({ network: '10.5.0.0/16', subnetLen: 24, backendType: 'vxlan' }), '{"Network":"10.5.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}');
  assert.equal(
    F.leaseJson({ publicIp: '192.168.90.11', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:aa:bb:cc:dd:ee' } }),
    '{"PublicIP":"192.168.90.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:ee"}}',
  );
  assert.equal(F.leaseJson({ publicIp: '192.168.90.11', backendType: 'host-gw', backendData: null }), '{"PublicIP":"192.168.90.11","PublicIPv6":null,"BackendType":"host-gw","BackendData":null}');
  assert.deepEqual(F.parseLease('/coreos.com/network/subnets/10.5.34.0-24', '{"PublicIP":"192.168.90.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:ee"}}'), {
    subnet: '10.5.34.0/24',
    publicIp: '192.168.90.11',
    backendType: 'vxlan',
    backendData: { VNI: 1, VtepMAC: '02:aa:bb:cc:dd:ee' },
  });
  assert.equal(F.parseLease('/coreos.com/network/subnets/10.5.34.0-24', 'not json'), undefined);
  // Flannel's defaults when SubnetLen or Backend is left out.
  assert.deepEqual(F.parseConfig('{"Network":"10.5.0.0/16"}'), { network: '10.5.0.0/16', subnetLen: 24, backendType: 'udp' });
  assert.deepEqual(F.parseConfig('{"Network":"10.5.0.0/23"}').subnetLen, 25);
  assert.throws(() => F.parseConfig('{"Net":1}'), /has no Network/);
});

test('the cluster CIDR must hold a subnet besides the first; leasable subnets run from the second to the last', () => {
  assert.throws(() => F.checkClusterCidr('10.5.0.0/24', 24), /--cluster-cidr 10\.5\.0\.0\/24 is too small for --host-subnet-size 24/);
  assert.throws(() => F.checkClusterCidr('10.5.0.0/25', 24), /too small/);
  assert.throws(() => F.checkClusterCidr('10.5.0.1/16', 24), /host bits are set/);
  assert.throws(() => F.checkClusterCidr('10.5.0.0/16', 31), /--host-subnet-size 31 is out of range/);
  const cidr = F.checkClusterCidr('10.6.0.0/22', 24);
  assert.deepEqual(F.leasableSubnets(cidr, 24).map((c) => c.text), ['10.6.1.0/24', '10.6.2.0/24', '10.6.3.0/24']);
  assert.equal(F.leasableSubnets(F.checkClusterCidr('10.5.0.0/16', 24), 24).length, 255);
  assert.deepEqual(F.freeSubnets(cidr, 24, new Set(['10.6.2.0/24']), [parseCidr('10.6.3.128/25')]).map((c) => c.text), ['10.6.1.0/24']);
});

test('subnet.env is Flannel’s format plus what berth needs to re-claim, and reads back', () => {
  const env = { network: '10.5.0.0/16', subnet: '10.5.34.0/24', mtu: 1450, ipMasq: true, backend: 'vxlan', leaseId: '7587' };
  const text = F.formatSubnetEnv(env);
  assert.equal(text, 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.34.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\nBERTH_BACKEND=vxlan\nBERTH_LEASE_ID=7587\n');
  assert.deepEqual(F.parseSubnetEnv(text), env);
  assert.equal(F.parseSubnetEnv('FLANNEL_SUBNET=10.5.34.1/24\n'), undefined, 'Flannel’s own file lacks the lease: a fresh claim');
});

const kv = (subnet: string, publicIp: string, lease = '99'): KeyValue => ({ key: F.subnetKey(subnet), value: F.leaseJson({ publicIp, backendType: 'vxlan', backendData: null }), createRevision: 5, modRevision: 6, lease });

test('the subnet choice: the remembered one if free or ours, else one leased to this PublicIP, else a random free one; full names it', () => {
  const cidr = parseCidr('10.6.0.0/22');
  const remembered = { network: '10.6.0.0/22', subnet: '10.6.2.0/24', mtu: 1450, ipMasq: true, backend: 'vxlan', leaseId: '1' };
  assert.deepEqual(chooseSubnet([], cidr, 24, '192.168.90.11', remembered), { subnet: '10.6.2.0/24' });
  const ours = kv('10.6.2.0/24', '192.168.90.11');
  assert.deepEqual(chooseSubnet([ours], cidr, 24, '192.168.90.11', remembered), { subnet: '10.6.2.0/24', ours });
  // Taken by another host after ours expired: another free one.
  assert.notEqual(chooseSubnet([kv('10.6.2.0/24', '192.168.90.12')], cidr, 24, '192.168.90.11', remembered).subnet, '10.6.2.0/24');
  // subnet.env lost: the key of this PublicIP is found.
  const mine = kv('10.6.3.0/24', '192.168.90.11');
  assert.deepEqual(chooseSubnet([mine], cidr, 24, '192.168.90.11', undefined), { subnet: '10.6.3.0/24', ours: mine });
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) seen.add(chooseSubnet([], cidr, 24, '192.168.90.11', undefined).subnet);
  assert.deepEqual([...seen].sort(), ['10.6.1.0/24', '10.6.2.0/24', '10.6.3.0/24'], 'random among the free ones, never the first');
  const full = ['10.6.1.0/24', '10.6.2.0/24', '10.6.3.0/24'].map((s, i) => kv(s, `192.168.90.${12 + i}`));
  assert.throws(() => chooseSubnet(full, cidr, 24, '192.168.90.11', undefined), /the cluster CIDR 10\.6\.0\.0\/22 is full: all 3 of its \/24 host subnets are leased \(by 192\.168\.90\.12, 192\.168\.90\.13, 192\.168\.90\.14\)/);
});

test('a VtepMAC derives from the PublicIP: stable, unicast, locally administered', () => {
  const mac = vtepMacOf('192.168.90.11');
  assert.equal(mac, vtepMacOf('192.168.90.11'));
  assert.notEqual(mac, vtepMacOf('192.168.90.12'));
  const first = parseInt(mac.slice(0, 2), 16);
  assert.equal(first & 1, 0, 'unicast');
  assert.equal(first & 2, 2, 'locally administered');
});

test('a vxlan peer needs a VtepMAC and VNI 1; another backend’s lease is refused naming the host', () => {
  assert.deepEqual(vxlanEntryOf({ subnet: '10.5.34.0/24', publicIp: '192.168.90.12', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:AA:bb:cc:dd:ee' } }), {
    subnet: '10.5.34.0/24',
    gateway: '10.5.34.0',
    mac: '02:aa:bb:cc:dd:ee',
    vtep: '192.168.90.12',
  });
  assert.throws(() => vxlanEntryOf({ subnet: '10.5.34.0/24', publicIp: '192.168.90.12', backendType: 'host-gw', backendData: null }), /host 192\.168\.90\.12 \(subnet 10\.5\.34\.0\/24\) uses backend host-gw, not vxlan/);
  assert.throws(() => vxlanEntryOf({ subnet: '10.5.34.0/24', publicIp: '192.168.90.12', backendType: 'vxlan', backendData: {} }), /published no usable VtepMAC/);
  assert.throws(() => vxlanEntryOf({ subnet: '10.5.34.0/24', publicIp: '192.168.90.12', backendType: 'vxlan', backendData: { VNI: 7, VtepMAC: '02:aa:bb:cc:dd:ee' } }), /uses VNI 7, not 1/);
});

test('host-gw reaches only peers on a directly connected prefix of the underlay', () => {
  const prefixes = [{ address: '192.168.90.11', prefix: 24 }, { address: '10.0.0.1', prefix: 32 }];
  assert.equal(segmentOf(prefixes, '192.168.90.12'), '192.168.90.0/24');
  assert.equal(segmentOf(prefixes, '192.168.91.12'), undefined);
  assert.equal(segmentOf(prefixes, '10.0.0.1'), undefined, 'a /32 connects no segment');
});

test('--backend names the backends there are', () => {
  assert.equal(parseBackendType('host-gw'), 'host-gw');
  assert.throws(() => parseBackendType('ipip'), /--backend "ipip" is not a host-subnet backend: use one of vxlan, host-gw, udp/);
});
