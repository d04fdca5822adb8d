/**
 * macvlan networks with real packets: containers on a simulated LAN (a switch namespace, LAN hosts,
 * the sandbox host's NICs as switch ports), every mode, the host shim on and off, internal
 * networks, connect/disconnect, repair of a deleted child, and each bad input.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, Sandbox, eventually, run } from '../../helpers/sandbox.js';
import { cniPlugin } from '../../helpers/cni.js';
import { Lan, type LanHost } from '../../helpers/lan.js';

describe('macvlan networks', () => {
  let sb: Sandbox;
  let lan: Lan;
  let peer: LanHost;
  let www: string;

  const ping = async (ns: string, ip: string) => (await sb.inNs(ns, BUSYBOX, ['ping', '-c', '1', '-W', '2', ip])).code === 0;
  const ipOf = async (name: string, net: string) => (await sb.inspect(name)).NetworkSettings.Networks[net]!.IPAddress;
  const ns = (name: string) => sb.netnsOf(name);
  /** Removes a test's containers and network whatever happened, so the next test gets the LAN's subnet. */
  const cleanup = async (net: string, ...containers: string[]) => {
    if (containers.length) await sb.berth('rm', '-f', ...containers);
    await sb.berth('network', 'rm', net);
  };
  const serve = (name: string, net: string, extra: string[] = []) =>
    sb.berthOk('run', '-d', '--name', name, '--network', net, ...extra, '--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', www);

  before(async () => {
    sb = await Sandbox.create('v');
    www = path.join(sb.root, 'www');
    fs.mkdirSync(www);
    fs.writeFileSync(path.join(www, 'index.html'), 'on the lan\n');
    lan = await Lan.create(sb, 'l', '192.168.77');
    // The sandbox host sits on the LAN with .2; the LAN's router is .1, a LAN peer .10.
    await lan.addNic('lan0', 2);
    await lan.addHost('rt', 1);
    peer = await lan.addHost('pe', 10, 1);
    await lan.addNic('lan1');
    await lan.addNic('lan2');
    await lan.addNic('lan3');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('bridge mode: LAN peers reach containers at their own addresses, containers reach each other, the host does not', async (t) => {
    t.after(() => sb.berth('rm', '-f', 'mvc', 'mvd'));
    await sb.berthOk('network', 'create', '-d', 'macvlan', '--subnet', lan.subnet, '--gateway', '192.168.77.1', '--ip-range', '192.168.77.128/25', '--aux-address', 'printer=192.168.77.129', '-o', 'parent=lan0', 'mv');
    await serve('mva', 'mv');
    await sb.berthOk('run', '-d', '--name', 'mvb', '--network', 'mv', 'sleep', '600');
    const a = await ipOf('mva', 'mv');
    assert.equal(a, '192.168.77.128', 'from the --ip-range');
    assert.equal(await ipOf('mvb', 'mv'), '192.168.77.130', 'the aux address is skipped');
    assert.match((await sb.inNs(await ns('mva'), 'ip', ['-d', 'link', 'show', 'eth0'])).stdout, /macvlan mode bridge/);
    assert.ok(await eventually(async () => (await sb.inNs(peer.nsPath, 'curl', ['-s', '--max-time', '3', `http://${a}/`])).stdout === 'on the lan\n', 5000), 'a LAN peer reaches the container directly');
    assert.ok(await ping(await ns('mvb'), a), 'containers on one parent reach each other');
    assert.ok(await ping(await ns('mva'), '192.168.77.1'), 'the LAN router answers');
    assert.match((await sb.inNs(await ns('mva'), 'ip', ['route', 'show', 'default'])).stdout, /via 192\.168\.77\.1 dev eth0/);
    // No NAT: the container sees the LAN peer's own address.
    assert.match((await sb.inNs(await ns('mva'), 'ip', ['neigh', 'show'])).stdout, /192\.168\.77\.10 /);
    assert.equal(await ping(sb.hostNs, a), false, 'the host cannot reach its own macvlan container (kernel behaviour; see host_access)');
    // Names resolve although the host is out of reach: a resolver inside each container, as Docker's.
    const mvbNs = await ns('mvb');
    assert.equal((await sb.inNs(mvbNs, 'dig', ['@127.0.0.11', '+tries=1', '+time=3', '+short', 'mva'])).stdout.trim(), a, 'mvb resolves mva');
    assert.match(fs.readFileSync(path.join(sb.root, 'state', 'run', 'containers', (await sb.inspect('mvb')).Id, 'resolv.conf'), 'utf8'), /nameserver 127\.0\.0\.11/);
    assert.equal((await sb.inNs(mvbNs, 'dig', ['@127.0.0.11', '+tries=1', '+time=3', '+short', 'nosuchname'])).stdout.trim(), '', 'control: an unknown name gets no address');
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'mv'));
    assert.equal(net.Driver, 'macvlan');
    assert.deepEqual(net.Options, { parent: 'lan0', macvlan_mode: 'bridge' });
    assert.deepEqual(net.IPAM.Config, [{ Subnet: lan.subnet, Gateway: '192.168.77.1', IPRange: '192.168.77.128/25', AuxiliaryAddresses: { printer: '192.168.77.129', 'berth-host-192.168.77.2': '192.168.77.2' } }], "the host's own address on the parent is reserved");
    const ipTaken = await sb.berth('run', '-d', '--name', 'mvc', '--network', 'mv', '--ip', '192.168.77.129', 'sleep', '1');
    assert.notEqual(ipTaken.code, 0);
    assert.match(ipTaken.stderr, /auxiliary address "printer"/);
    const published = await sb.berth('run', '-d', '--name', 'mvd', '--network', 'mv', '-p', '8080:80', 'sleep', '1');
    assert.notEqual(published.code, 0);
    assert.match(published.stderr, /does not publish ports.*berth\.host_access=true/);
  });

  test('connect and disconnect a running container; a deleted child is restored by the reconciler, and after a restart', async (t) => {
    t.after(() => cleanup('mv', 'mva', 'mvb', 'hop'));
    await sb.berthOk('run', '-d', '--name', 'hop', 'sleep', '600');
    await sb.berthOk('network', 'connect', 'mv', 'hop');
    const hopNs = await ns('hop');
    assert.match((await sb.inNs(hopNs, 'ip', ['-d', 'link', 'show', 'eth1'])).stdout, /macvlan/);
    const hopIp = await ipOf('hop', 'mv');
    assert.ok(await ping(peer.nsPath, hopIp), 'the LAN reaches the connected interface');
    assert.match((await sb.inNs(hopNs, 'ip', ['route', 'show', 'default'])).stdout, /dev eth0/, 'the default route stays on the first network');
    await sb.berthOk('network', 'disconnect', 'mv', 'hop');
    assert.ok(await eventually(async () => (await sb.inNs(hopNs, 'ip', ['link', 'show', 'eth1'])).code !== 0, 3000), 'eth1 is gone');

    const a = await ipOf('mva', 'mv');
    assert.equal((await sb.inNs(await ns('mva'), 'ip', ['link', 'del', 'eth0'])).code, 0);
    assert.equal(await ping(peer.nsPath, a), false, 'broken: the child is gone');
    const report = JSON.parse(await sb.berthOk('system', 'reconcile'));
    assert.ok(report.portsReattached.includes('mva:eth0'), JSON.stringify(report));
    assert.ok(await ping(peer.nsPath, a), 'restored, with its address');
    assert.match((await sb.inNs(await ns('mva'), 'ip', ['route', 'show', 'default'])).stdout, /via 192\.168\.77\.1/, 'and its default route');

    await sb.stopDaemon();
    await sb.startDaemon();
    assert.ok(await ping(peer.nsPath, a), 'still reachable after a daemon restart');
    assert.equal((await sb.inNs(await ns('mvb'), 'dig', ['@127.0.0.11', '+tries=2', '+time=2', '+short', 'mva'])).stdout.trim(), a, 'names resolve after a restart (the resolver is back inside the container)');
    await sb.berthOk('rm', '-f', 'mva', 'mvb', 'hop');
    await sb.berthOk('network', 'rm', 'mv');
    assert.equal((await sb.inHost('ip', ['link', 'show', 'lan0'])).code, 0, "the host's parent is never removed");
  });

  test('a container removed and another started at once take the same address and MAC without a clash', async (t) => {
    t.after(() => cleanup('mvq', 'q'));
    await sb.berthOk('network', 'create', '-d', 'macvlan', '--subnet', lan.subnet, '--gateway', '192.168.77.1', '--ip-range', '192.168.77.160/28', '-o', 'parent=lan0', 'mvq');
    const macs = new Set<string>();
    // Bounded: ten back-to-back cycles (a leftover child in the dropped namespace failed 1 in 2).
    for (let i = 0; i < 10; i++) {
      await sb.berthOk('run', '-d', '--name', 'q', '--network', 'mvq', 'sleep', '600');
      macs.add((await sb.inspect('q')).NetworkSettings.Networks.mvq!.MacAddress);
      await sb.berthOk('rm', '-f', 'q');
    }
    assert.equal(macs.size, 1, 'the same address each time, so the same MAC');
  });

  test('private mode: containers on one parent cannot reach each other, but the LAN reaches them', async (t) => {
    t.after(() => cleanup('mvp', 'pa', 'pb'));
    await sb.berthOk('network', 'create', '-d', 'macvlan', '--subnet', '192.168.77.0/25', '--gateway', '192.168.77.1', '-o', 'parent=lan1', '-o', 'macvlan_mode=private', 'mvp');
    await sb.berthOk('run', '-d', '--name', 'pa', '--network', 'mvp', 'sleep', '600');
    await sb.berthOk('run', '-d', '--name', 'pb', '--network', 'mvp', 'sleep', '600');
    const pa = await ipOf('pa', 'mvp');
    assert.equal(pa, '192.168.77.3', "no --ip-range: the host's own .2 on the LAN is skipped");
    assert.ok(await ping(peer.nsPath, pa), 'positive control: the LAN reaches pa');
    assert.equal(await ping(await ns('pb'), pa), false, 'pb cannot reach pa');
    await sb.berthOk('rm', '-f', 'pa', 'pb');
    await sb.berthOk('network', 'rm', 'mvp');
  });

  test('vepa mode: container-to-container traffic goes out to the switch and back only if it hairpins', async (t) => {
    t.after(() => cleanup('mvv', 'va', 'vb'));
    const port = await lan.addNic('lan4');
    await sb.berthOk('network', 'create', '-d', 'macvlan', '--subnet', '192.168.77.0/25', '--gateway', '192.168.77.1', '-o', 'parent=lan4', '-o', 'macvlan_mode=vepa', 'mvv');
    await sb.berthOk('run', '-d', '--name', 'va', '--network', 'mvv', 'sleep', '600');
    await sb.berthOk('run', '-d', '--name', 'vb', '--network', 'mvv', 'sleep', '600');
    const va = await ipOf('va', 'mvv');
    assert.ok(await ping(peer.nsPath, va), 'the LAN reaches va');
    assert.equal(await ping(await ns('vb'), va), false, 'a switch without hairpin does not send the frame back');
    await lan.hairpin(port, true);
    // vb's neighbour entry for va failed above; the kernel retries ARP on the next packets.
    assert.ok(await eventually(async () => ping(await ns('vb'), va), 10_000, 200), 'with hairpin on the switch port, vb reaches va through the switch');
    await sb.berthOk('rm', '-f', 'va', 'vb');
    await sb.berthOk('network', 'rm', 'mvv');
  });

  test('passthru mode gives the parent to one container; nothing else may share that parent', async (t) => {
    t.after(() => cleanup('mvt', 'ta', 'tb'));
    await sb.berthOk('network', 'create', '-d', 'macvlan', '--subnet', '192.168.77.0/25', '--gateway', '192.168.77.1', '-o', 'parent=lan2', '-o', 'macvlan_mode=passthru', 'mvt');
    await sb.berthOk('run', '-d', '--name', 'ta', '--network', 'mvt', 'sleep', '600');
    assert.ok(await ping(peer.nsPath, await ipOf('ta', 'mvt')), 'the LAN reaches the passthru container');
    const parentMac = /link\/ether (\S+)/.exec((await sb.inHost('ip', ['-o', 'link', 'show', 'lan2'])).stdout)?.[1];
    assert.equal((await sb.inspect('ta')).NetworkSettings.Networks.mvt!.MacAddress, parentMac, "inspect shows the MAC the child really has: its parent's");
    const second = await sb.berth('run', '-d', '--name', 'tb', '--network', 'mvt', 'sleep', '600');
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, /passthru mode.*ta has it/);
    const shared = await sb.berth('network', 'create', '-d', 'macvlan', '--subnet', '10.9.0.0/24', '-o', 'parent=lan2', 'mvt2');
    assert.notEqual(shared.code, 0);
    assert.match(shared.stderr, /parent lan2 is already used by macvlan network mvt in passthru mode/);
    await sb.berthOk('rm', '-f', 'ta');
    await sb.berthOk('network', 'rm', 'mvt');
  });

  test('host_access: the host, its published ports and the embedded DNS reach the containers through a shim', async (t) => {
    t.after(() => cleanup('mvh', 'ha', 'hb'));
    await sb.berthOk('network', 'create', '-d', 'macvlan', '--subnet', '192.168.77.0/25', '--gateway', '192.168.77.1', '-o', 'parent=lan3', '-o', 'berth.host_access=true', 'mvh');
    await serve('ha', 'mvh', ['-p', '8088:80', '--network-alias', 'web']);
    await sb.berthOk('run', '-d', '--name', 'hb', '--network', 'mvh', 'sleep', '600');
    const ha = await ipOf('ha', 'mvh');
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'mvh'));
    const shim = net.IPAM.Config[0].AuxiliaryAddresses['berth-host'];
    assert.equal(shim, '192.168.77.126', "the shim takes the subnet's highest free address, reserved as an aux address");
    assert.ok(await ping(sb.hostNs, ha), 'the host reaches the container');
    assert.ok(await eventually(async () => (await sb.inNs(peer.nsPath, 'curl', ['-s', '--max-time', '3', 'http://192.168.77.2:8088/'])).stdout === 'on the lan\n', 5000), "a published port on the host's LAN address reaches it");
    const dig = (await sb.inNs(await ns('hb'), 'dig', [`@${shim}`, '+tries=1', '+time=3', '+short', 'web'])).stdout.trim();
    assert.equal(dig, ha, 'names resolve through the resolver on the shim');
    assert.match(fs.readFileSync(path.join(sb.root, 'state', 'run', 'containers', (await sb.inspect('hb')).Id, 'resolv.conf'), 'utf8'), new RegExp(`nameserver ${shim.replace(/\./g, '\\.')}`));
    const other = (await sb.inNs(peer.nsPath, 'dig', [`@${shim}`, '+tries=1', '+time=2', '+short', 'web'])).stdout.trim();
    assert.notEqual(other, ha, 'a LAN peer gets no answer from the resolver');
    await sb.berthOk('rm', '-f', 'ha', 'hb');
    await sb.berthOk('network', 'rm', 'mvh');
    assert.doesNotMatch((await sb.inHost('ip', ['-o', 'link'])).stdout, /bms/, 'the shim went with the network');
  });

  test('--internal without a parent: containers reach only each other, through a parent of berth\'s own', async (t) => {
    t.after(async () => {
      await cleanup('mvi2', 'ic');
      await cleanup('mvi', 'ia', 'ib');
    });
    await sb.berthOk('network', 'create', '-d', 'macvlan', '--internal', '--subnet', '10.88.0.0/24', 'mvi');
    await sb.berthOk('run', '-d', '--name', 'ia', '--network', 'mvi', 'sleep', '600');
    await sb.berthOk('run', '-d', '--name', 'ib', '--network', 'mvi', 'sleep', '600');
    assert.ok(await ping(await ns('ib'), await ipOf('ia', 'mvi')), 'they reach each other');
    assert.equal((await sb.inNs(await ns('ia'), 'ip', ['route', 'show', 'default'])).stdout.trim(), '', 'no default route');
    assert.match((await sb.inHost('ip', ['-o', 'link'])).stdout, /bmv[0-9a-f]{9}/, "berth's own parent");
    // The resolver inside ia answers for each of its in-sandbox networks, as Docker's 127.0.0.11.
    await sb.berthOk('network', 'create', '-d', 'macvlan', '--internal', '--subnet', '10.89.0.0/24', 'mvi2');
    await sb.berthOk('run', '-d', '--name', 'ic', '--network', 'mvi2', 'sleep', '600');
    const dig = async (name: string) => (await sb.inNs(await ns('ia'), 'dig', ['@127.0.0.11', '+tries=1', '+time=3', '+short', name])).stdout.trim();
    assert.equal(await dig('ic'), '', 'control: before ia joins mvi2, its resolver does not know ic');
    await sb.berthOk('network', 'connect', 'mvi2', 'ia');
    assert.equal(await dig('ic'), await ipOf('ic', 'mvi2'), 'after connect it does');
    assert.equal(await dig('ib'), await ipOf('ib', 'mvi'), 'and still the first network\'s names');
    await sb.berthOk('rm', '-f', 'ia', 'ib', 'ic');
    await sb.berthOk('network', 'rm', 'mvi', 'mvi2');
    assert.doesNotMatch((await sb.inHost('ip', ['-o', 'link'])).stdout, /bm[vp][0-9a-f]{9}/, 'and it went with the network');
  });

  test('doors: the docker CLI creates and inspects a macvlan network; the CNI plugin attaches to it', async (t) => {
    t.after(() => cleanup('dmv'));
    const docker = (...args: string[]) => run('docker', args, { env: { ...process.env, DOCKER_HOST: `unix://${sb.socket}` }, timeoutMs: 30_000 });
    const made = await docker('network', 'create', '-d', 'macvlan', '--subnet', lan.subnet, '--gateway', '192.168.77.1', '--ip-range', '192.168.77.192/26', '-o', 'parent=lan0', '-o', 'macvlan_mode=bridge', 'dmv');
    assert.equal(made.code, 0, made.stderr);
    const [net] = JSON.parse((await docker('network', 'inspect', 'dmv')).stdout);
    assert.equal(net.Driver, 'macvlan');
    assert.deepEqual(net.Options, { parent: 'lan0', macvlan_mode: 'bridge' });
    assert.match((await docker('network', 'ls', '--filter', 'driver=macvlan')).stdout, /dmv +macvlan +local/);
    const bad = await docker('network', 'create', '-d', 'macvlan', '--subnet', '10.93.0.0/24', '-o', 'parent=nosuch0', 'dbad');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /parent interface nosuch0 not found/);

    const netns = await sb.makeNetns('cnimv');
    const cni = (command: string) =>
      run('nsenter', [`--net=${sb.hostNs}`, '--', cniPlugin()], {
        env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: 'mvcni', CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' },
        input: JSON.stringify({ cniVersion: '1.1.0', name: 'dmv', type: 'berth', host: `unix://${sb.socket}` }),
      });
    const add = await cni('ADD');
    assert.equal(add.code, 0, add.stdout);
    const result = JSON.parse(add.stdout);
    const ip = result.ips[0].address.split('/')[0];
    assert.match(ip, /^192\.168\.77\.(19[2-9]|2\d\d)$/);
    assert.equal(result.interfaces.length, 1, 'only the sandbox interface: a macvlan child has no host end');
    assert.deepEqual(result.dns.nameservers, ['127.0.0.11'], 'the resolver inside the attachment\'s namespace');
    assert.match((await sb.inNs(netns, 'ss', ['-Hlun', 'sport = :53'])).stdout, /127\.0\.0\.11:53/, 'listening there, although lo is still down');
    await sb.inNs(netns, 'ip', ['link', 'set', 'lo', 'up']); // what the runtime's loopback plugin does
    assert.equal((await sb.inNs(netns, 'dig', ['@127.0.0.11', '+tries=1', '+time=3', '+short', 'dmv-nothing'])).code, 0, 'and it answers once lo is up');
    assert.ok(await ping(peer.nsPath, ip), 'the LAN reaches the CNI attachment');
    assert.equal((await cni('DEL')).code, 0);
    assert.equal((await sb.inNs(netns, 'ip', ['link', 'show', 'eth0'])).code, 1, 'DEL removed the child');
  });

  test('bad input: a clear error, a non-zero exit and nothing half-made', async () => {
    await sb.inHost('ip', ['link', 'add', 'downnic', 'type', 'veth', 'peer', 'name', 'downnicp']);
    const cases: [string, string[], RegExp][] = [
      ['no parent', ['--subnet', '10.90.0.0/24'], /needs a parent interface: -o parent=IFACE/],
      ['parent not found', ['--subnet', '10.90.0.0/24', '-o', 'parent=nosuch0'], /parent interface nosuch0 not found/],
      ['parent down', ['--subnet', '10.90.0.0/24', '-o', 'parent=downnic'], /parent interface downnic is down/],
      ['bad mode', ['--subnet', '10.90.0.0/24', '-o', 'parent=lan0', '-o', 'macvlan_mode=fast'], /invalid macvlan mode "fast": use private, vepa, bridge, passthru/],
      ['unknown option', ['--subnet', '10.90.0.0/24', '-o', 'parent=lan0', '-o', 'colour=blue'], /option colour is unknown to the macvlan driver/],
      ['vlan id out of range', ['--subnet', '10.90.0.0/24', '-o', 'parent=lan0.5000'], /VLAN id 5000 of parent lan0\.5000 is out of range: use 1 to 4094/],
      ['name too long', ['--subnet', '10.90.0.0/24', '-o', 'parent=averyveryverylongname'], /not a valid interface name: at most 15 characters/],
      ['host access in private mode', ['--subnet', '10.90.0.0/24', '-o', 'parent=lan0', '-o', 'macvlan_mode=private', '-o', 'berth.host_access=true'], /needs macvlan_mode bridge/],
      ['aux outside the subnet', ['--subnet', '10.90.0.0/24', '--aux-address', 'x=10.91.0.5', '-o', 'parent=lan0'], /aux-address x=10\.91\.0\.5: it must be inside 10\.90\.0\.0\/24/],
      ['internal with a parent', ['--internal', '--subnet', '10.90.0.0/24', '-o', 'parent=lan0'], /drop -o parent=lan0/],
    ];
    // 802.1Q: refused with the missing kernel feature where the kernel has none (this one), made and
    // removed with the network where it has it.
    const probe = await sb.inHost('ip', ['link', 'add', 'link', 'lan0', 'name', 'lan0.7', 'type', 'vlan', 'id', '7']);
    const hasVlan = probe.code === 0;
    if (hasVlan) await sb.inHost('ip', ['link', 'del', 'lan0.7']);
    else cases.push(['no 802.1Q in this kernel', ['--subnet', '10.90.0.0/24', '-o', 'parent=lan0.100'], /no 802\.1Q VLAN support \(CONFIG_VLAN_8021Q, module 8021q\)/]);
    const before = (await sb.inHost('ip', ['-o', 'link'])).stdout.split('\n').length;
    for (const [what, args, msg] of cases) {
      const r = await sb.berth('network', 'create', '-d', 'macvlan', ...args, 'badnet');
      assert.notEqual(r.code, 0, what);
      assert.match(r.stderr, msg, what);
    }
    assert.doesNotMatch(await sb.berthOk('network', 'ls'), /badnet/, 'no network was left');
    assert.equal((await sb.inHost('ip', ['-o', 'link'])).stdout.split('\n').length, before, 'no link was left (no lan0.100)');
    // Positive control through the same command: the same create with a good parent works.
    await sb.berthOk('network', 'create', '-d', 'macvlan', '--subnet', '10.90.0.0/24', '-o', 'parent=lan0', 'goodnet');
    await sb.berthOk('network', 'rm', 'goodnet');
    if (hasVlan) {
      await sb.berthOk('network', 'create', '-d', 'macvlan', '--subnet', '10.90.0.0/24', '-o', 'parent=lan0.100', 'vlannet');
      assert.match((await sb.inHost('ip', ['-d', 'link', 'show', 'lan0.100'])).stdout, /vlan protocol 802\.1Q id 100/);
      await sb.berthOk('network', 'rm', 'vlannet');
      assert.equal((await sb.inHost('ip', ['link', 'show', 'lan0.100'])).code, 1, 'the sub-interface berth made went with the network');
    }
  });
});
