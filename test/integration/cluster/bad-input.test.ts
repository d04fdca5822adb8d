/**
 * Issue 12, bad input: cluster flags and overlay options that are wrong get a clear error naming
 * what is wrong, a non-zero exit, and leave nothing behind on any host or in etcd. Each refusal
 * has a positive control through the same path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { BERTH, Sandbox, eventually, run } from '../../helpers/sandbox.js';
import { Cluster } from '../../helpers/cluster.js';

describe('cluster bad input', () => {
  let c: Cluster;
  let single: Sandbox;
  before(async () => {
    c = await Cluster.create({ hosts: 2, members: 1 });
    single = await Sandbox.create('ns');
    await c.hosts[0]!.berthOk('network', 'create', '-d', 'overlay', '--subnet', '10.91.0.0/24', 'taken');
    assert.ok(await eventually(async () => (await c.hosts[1]!.berth('network', 'inspect', 'taken')).code === 0, 5000));
  });
  const roots: string[] = [];
  after(async () => {
    // A daemon that got as far as its run directory mounted it (the test's own roots, not a sandbox's).
    for (const root of roots) await run('umount', ['-l', path.join(root, 'run')]);
    await single?.destroy();
    await c?.destroy();
  });

  const h = (i: number) => c.hosts[i]!;
  /** A daemon on a fresh root in host 1's namespace, with these flags; it must exit on its own. */
  const daemonWith = (flags: string[]) => {
    const root = path.join(h(1).root, `bad-${Math.random().toString(16).slice(2)}`);
    roots.push(root);
    return run('nsenter', [`--net=${h(1).hostNs}`, '--', process.execPath, BERTH, 'daemon', '--root', root, '--host', `unix://${root}.sock`, ...flags], { timeoutMs: 10_000 });
  };

  /** Nothing of `name` on any host, nor in etcd. */
  const leftNothing = async (name: string) => {
    for (const host of c.hosts) assert.equal((await host.berth('network', 'inspect', name)).code, 1, `no network ${name} on ${host.name}`);
    assert.deepEqual(await c.etcdList(`/berth/v1/networks/${name}`), []);
  };

  test('a malformed --cluster-store, an unreachable one, a foreign --advertise-addr: the daemon exits naming it', async () => {
    const malformed = await daemonWith(['--cluster-store', 'redis://1.2.3.4', '--advertise-addr', c.address(1)]);
    assert.notEqual(malformed.code, 0);
    assert.match(malformed.stderr, /--cluster-store "redis:\/\/1\.2\.3\.4" is not etcd:\/\/IP:PORT/);
    const started = Date.now();
    // Nobody answers at .99 on the underlay: the start-up check gives up at its deadline, no hang.
    const unreachable = await daemonWith(['--cluster-store', 'etcd://192.168.90.99:2379', '--advertise-addr', c.address(1)]);
    assert.notEqual(unreachable.code, 0);
    assert.ok(Date.now() - started < 8000, `gave up after ${Date.now() - started} ms`);
    assert.match(unreachable.stderr, /cannot reach the cluster store etcd:\/\/192\.168\.90\.99:2379: etcd \(the cluster store\) did not answer/);
    const foreign = await daemonWith(['--cluster-store', c.store, '--advertise-addr', '192.168.90.200']);
    assert.notEqual(foreign.code, 0);
    assert.match(foreign.stderr, /--advertise-addr 192\.168\.90\.200 is not an address of this host/);
    const noAdvertise = await daemonWith(['--cluster-store', c.store]);
    assert.match(noAdvertise.stderr, /--cluster-store needs --advertise-addr/);
    // Positive control: the same flags with this host's address start a daemon (it serves until the time bound).
    roots.push(path.join(h(1).root, 'good'));
    const good = await run('nsenter', [`--net=${h(1).hostNs}`, '--', process.execPath, BERTH, 'daemon', '--root', path.join(h(1).root, 'good'), '--host', `unix://${h(1).root}/good.sock`, '--cluster-store', c.store, '--advertise-addr', 'eth0'], { timeoutMs: 4000 });
    assert.match(good.stderr, /daemon ready/, good.stderr);
  });

  test('-d overlay on a daemon without a cluster store is refused, naming the flag', async () => {
    const r = await single.berth('network', 'create', '-d', 'overlay', 'lonely');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /-d overlay needs a cluster store: start the daemon with --cluster-store/);
    assert.equal((await single.berth('network', 'inspect', 'lonely')).code, 1);
    await single.berthOk('network', 'create', 'lonely');
  });

  test('a VNI taken or out of range, an overlapping subnet, a taken name, an MTU above the underlay, encryption: refused, nothing made', async () => {
    const cases: [string[], RegExp][] = [
      [['-o', 'com.docker.network.driver.overlay.vxlanid_list=4096'], /VNI 4096 is taken by cluster network taken/],
      [['-o', 'com.docker.network.driver.overlay.vxlanid_list=0'], /vxlanid_list=0 is out of range: a VNI is a whole number from 1 to 16777215/],
      [['-o', 'com.docker.network.driver.overlay.vxlanid_list=16777216'], /is out of range/],
      [['-o', 'com.docker.network.driver.overlay.vxlanid_list=x1'], /is out of range/],
      [['--subnet', '10.91.0.128/25'], /10\.91\.0\.128\/25 overlaps (cluster )?network taken \(10\.91\.0\.0\/24\)/],
      [['-o', 'com.docker.network.driver.mtu=1451'], /mtu=1451 is above what the underlay carries: eth0 has MTU 1500, and VXLAN needs 50 bytes of it, so at most 1450/],
      [['-o', 'encrypted=maybe'], /-o encrypted=maybe: give it no value \(as Docker\), or true or false/],
      [['-o', 'encrypted', '-o', 'com.docker.network.driver.mtu=1400'], /mtu=1400 is above what the underlay carries: .* and WireGuard 60, so at most 1390/],
      [['-o', 'flavour=x'], /option flavour is unknown to the overlay driver/],
    ];
    for (const [args, message] of cases) {
      // Not a name of hex digits: `network inspect` takes those as an id prefix too, and a
      // network whose id happens to start with them would answer.
      const r = await h(1).berth('network', 'create', '-d', 'overlay', ...args, 'refused');
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, message, args.join(' '));
      await leftNothing('refused');
    }
    const name = await h(1).berth('network', 'create', '-d', 'overlay', 'taken');
    assert.match(name.stderr, /network with name taken already exists/);
    // Positive control: a free VNI, a clear subnet and the largest MTU go through the same path.
    await h(1).berthOk('network', 'create', '-d', 'overlay', '--subnet', '10.92.0.0/24', '-o', 'com.docker.network.driver.overlay.vxlanid_list=5000', '-o', 'com.docker.network.driver.mtu=1450', 'good');
    assert.ok(await eventually(async () => (await h(0).berth('network', 'inspect', 'good')).code === 0, 5000), 'host 0 lists it');
    const [net] = JSON.parse(await h(0).berthOk('network', 'inspect', 'good'));
    assert.equal(net.Options['com.docker.network.driver.overlay.vxlanid_list'], '5000');
  });

  test('a network with endpoints on another host cannot be removed; once they go it can, everywhere', async () => {
    await h(1).berthOk('run', '-d', '--name', 'holder', '--network', 'good', '--', '/bin/busybox', 'sleep', '3600');
    const r = await h(0).berth('network', 'rm', 'good');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /network good id \S+ has active endpoints in the cluster \(containers: holder on /);
    await h(1).berthOk('rm', '-f', 'holder');
    assert.ok(await eventually(async () => (await h(0).berth('network', 'rm', 'good')).code === 0, 5000), 'removable once the container left');
    assert.ok(await eventually(async () => (await h(1).berth('network', 'inspect', 'good')).code === 1, 5000), 'gone from host 1');
    assert.equal((await h(1).inHost('ip', ['link', 'show', 'type', 'vxlan'])).stdout.includes('vxlan id 5000'), false);
  });
});
