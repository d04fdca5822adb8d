/**
 * ipvlan networks. Where the kernel has ipvlan: l2 and l3 with real packets on a simulated LAN.
 * Where it has not (this machine's kernel): `network create -d ipvlan` is refused, naming the
 * missing feature, with nothing half-made. The suite that cannot run is reported as skipped with
 * its reason. Option checks run everywhere (they come before the kernel).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { BUSYBOX, Sandbox } from '../../helpers/sandbox.js';
import { Lan, type LanHost } from '../../helpers/lan.js';

/** Whether this kernel makes ipvlan links, asked in a scratch namespace of this test's own. */
function kernelHasIpvlan(): boolean {
  const ns = `ipvprobe${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1']);
    execFileSync('ip', ['-n', ns, 'link', 'add', 'link', 'p0', 'name', 'c0', 'type', 'ipvlan', 'mode', 'l3'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

const HAS_IPVLAN = kernelHasIpvlan();

describe('ipvlan networks', () => {
  let sb: Sandbox;
  let lan: Lan;
  let peer: LanHost;
  const ping = async (ns: string, ip: string) => (await sb.inNs(ns, BUSYBOX, ['ping', '-c', '1', '-W', '2', ip])).code === 0;
  const ipOf = async (name: string, net: string) => (await sb.inspect(name)).NetworkSettings.Networks[net]!.IPAddress;

  before(async () => {
    sb = await Sandbox.create('i');
    lan = await Lan.create(sb, 'l', '192.168.78');
    await lan.addNic('lan0', 2);
    await lan.addHost('rt', 1);
    peer = await lan.addHost('pe', 10, 1);
  });
  after(async () => {
    await sb?.destroy();
  });

  test('bad options are refused before the kernel is asked, with nothing half-made', async () => {
    for (const [args, msg] of [
      [['-o', 'ipvlan_mode=l4'], /invalid ipvlan mode "l4": use l2, l3, l3s/],
      [['-o', 'ipvlan_flag=open'], /invalid ipvlan flag "open": use bridge, private, vepa/],
      [['-o', 'macvlan_mode=bridge'], /option macvlan_mode is unknown to the ipvlan driver/],
    ] as const) {
      const r = await sb.berth('network', 'create', '-d', 'ipvlan', '--subnet', '192.168.78.0/24', '-o', 'parent=lan0', ...args, 'badipv');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, msg);
    }
    assert.doesNotMatch(await sb.berthOk('network', 'ls'), /badipv/);
  });

  test('on a kernel without ipvlan, network create names the missing feature and leaves nothing', { skip: HAS_IPVLAN ? 'this kernel has ipvlan: the refusal cannot be shown here' : false }, async () => {
    const links = (await sb.inHost('ip', ['-o', 'link'])).stdout.split('\n').length;
    const r = await sb.berth('network', 'create', '-d', 'ipvlan', '--subnet', '192.168.78.0/24', '-o', 'parent=lan0', '-o', 'ipvlan_mode=l3', 'ipv');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /this kernel has no ipvlan support \(CONFIG_IPVLAN, module ipvlan\)/);
    assert.doesNotMatch(await sb.berthOk('network', 'ls'), /ipv/);
    assert.equal((await sb.inHost('ip', ['-o', 'link'])).stdout.split('\n').length, links, 'no probe link or parent left');
    // Positive control through the same path: the same LAN and parent take a macvlan network.
    await sb.berthOk('network', 'create', '-d', 'macvlan', '--subnet', '192.168.78.0/24', '-o', 'parent=lan0', 'mvctl');
    await sb.berthOk('network', 'rm', 'mvctl');
  });

  describe('with real packets', { skip: HAS_IPVLAN ? false : 'this kernel has no ipvlan (CONFIG_IPVLAN): ipvlan traffic cannot be tested here' }, () => {
    test('l2: LAN peers and other containers reach the container; its default route is the LAN gateway', async () => {
      await sb.berthOk('network', 'create', '-d', 'ipvlan', '--subnet', '192.168.78.0/24', '--gateway', '192.168.78.1', '--ip-range', '192.168.78.128/25', '-o', 'parent=lan0', 'ipl2');
      await sb.berthOk('run', '-d', '--name', 'la', '--network', 'ipl2', 'sleep', '600');
      await sb.berthOk('run', '-d', '--name', 'lb', '--network', 'ipl2', 'sleep', '600');
      const la = await ipOf('la', 'ipl2');
      assert.ok(await ping(peer.nsPath, la));
      assert.ok(await ping(await sb.netnsOf('lb'), la));
      assert.match((await sb.inNs(await sb.netnsOf('la'), 'ip', ['route', 'show', 'default'])).stdout, /via 192\.168\.78\.1/);
      assert.match((await sb.inNs(await sb.netnsOf('la'), 'ip', ['-d', 'link', 'show', 'eth0'])).stdout, /ipvlan {2}mode l2 bridge/);
      await sb.berthOk('rm', '-f', 'la', 'lb');
      await sb.berthOk('network', 'rm', 'ipl2');
    });

    test('l3: no gateway, the default route goes out of the device, and the LAN reaches the container through the host', async () => {
      await sb.berthOk('network', 'create', '-d', 'ipvlan', '--subnet', '10.78.0.0/24', '-o', 'parent=lan0', '-o', 'ipvlan_mode=l3', 'ipl3');
      await sb.berthOk('run', '-d', '--name', 'ta', '--network', 'ipl3', 'sleep', '600');
      const ta = await ipOf('ta', 'ipl3');
      assert.match((await sb.inNs(await sb.netnsOf('ta'), 'ip', ['route', 'show', 'default'])).stdout, /default dev eth0/);
      await sb.inNs(peer.nsPath, 'ip', ['route', 'add', '10.78.0.0/24', 'via', '192.168.78.2']);
      assert.ok(await ping(peer.nsPath, ta), 'the LAN routes to the container via the host');
      await sb.berthOk('rm', '-f', 'ta');
      await sb.berthOk('network', 'rm', 'ipl3');
    });
  });
});
