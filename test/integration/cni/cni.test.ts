/**
 * The CNI plugin driven exactly as a runtime drives it: CNI_* variables, the config on stdin,
 * the result parsed and checked against the spec's shapes; for every command and version,
 * chained with the reference plugins, with each bad-input case, and with real traffic.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { KernelFaults } from '../../helpers/kernel-faults.js';
import { BUSYBOX, Sandbox, eventually, type Peer } from '../../helpers/sandbox.js';
import { REFERENCE_PLUGINS, cniPlugin, runCni, type Invocation } from '../../helpers/cni.js';

describe('CNI plugin', () => {
  let sb: Sandbox;
  let lan: Peer;
  let upstream: Peer;
  let host: string;
  // Kernel fault injection for the rollback test (empty: no faults); see src/kernel/faults.ts.
  const faults = new KernelFaults('cni');

  const cni = (inv: Invocation) => runCni(sb, inv);

  const conf = (version: string, extra: Record<string, unknown> = {}) => ({ cniVersion: version, name: 'cninet', type: 'berth', host, ...extra });

  /** The spec's ADD result shape. */
  function checkResult(result: Record<string, unknown>, version: string, netns: string): { ip: string; gateway: string } {
    assert.equal(result.cniVersion, version);
    const interfaces = result.interfaces as { name: string; mac?: string; sandbox?: string }[];
    const ips = result.ips as { address: string; gateway: string; interface: number; version?: string }[];
    const routes = result.routes as { dst: string; gw?: string }[];
    const dns = result.dns as { nameservers: string[] };
    assert.ok(Array.isArray(interfaces) && interfaces.length >= 2);
    const inner = interfaces.find((i) => i.sandbox === netns);
    assert.ok(inner, 'an interface with the sandbox path');
    assert.equal(inner.name, 'eth0');
    assert.match(inner.mac!, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.equal(ips.length, 1);
    assert.match(ips[0]!.address, /^10\.140\.0\.\d+\/24$/);
    assert.equal(ips[0]!.gateway, '10.140.0.1');
    assert.equal(interfaces[ips[0]!.interface], inner, 'ips[].interface indexes the sandbox interface');
    if (version === '0.4.0') assert.equal(ips[0]!.version, '4');
    assert.deepEqual(routes, [{ dst: '0.0.0.0/0', gw: '10.140.0.1' }]);
    assert.deepEqual(dns.nameservers, ['10.140.0.1']);
    return { ip: ips[0]!.address.split('/')[0]!, gateway: ips[0]!.gateway };
  }

  /** The spec's ADD result shape on the dual-stack network: both families on the sandbox interface. */
  function checkDualResult(result: Record<string, unknown>, version: string, netns: string): { ip: string; ip6: string } {
    assert.equal(result.cniVersion, version);
    const interfaces = result.interfaces as { name: string; sandbox?: string }[];
    const ips = result.ips as { address: string; gateway: string; interface: number; version?: string }[];
    const inner = interfaces.findIndex((i) => i.sandbox === netns);
    assert.ok(inner >= 0, 'an interface with the sandbox path');
    assert.equal(ips.length, 2, 'one address per family');
    assert.match(ips[0]!.address, /^10\.142\.0\.\d+\/24$/);
    assert.equal(ips[0]!.gateway, '10.142.0.1');
    assert.match(ips[1]!.address, /^fd8c::[0-9a-f]+\/64$/);
    assert.equal(ips[1]!.gateway, 'fd8c::1');
    assert.deepEqual(ips.map((i) => i.interface), [inner, inner], 'both on the sandbox interface');
    assert.deepEqual(ips.map((i) => i.version), version === '0.4.0' ? ['4', '6'] : [undefined, undefined]);
    assert.deepEqual(result.routes, [{ dst: '0.0.0.0/0', gw: '10.142.0.1' }, { dst: '::/0', gw: 'fd8c::1' }]);
    return { ip: ips[0]!.address.split('/')[0]!, ip6: ips[1]!.address.split('/')[0]! };
  }
  const dualConf = (version: string, extra: Record<string, unknown> = {}) => conf(version, { network: 'cnidual', ...extra });
  const inet6Of = async (netns: string) => (await sb.inNs(netns, 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])).stdout;

  before(async () => {
    faults.arm();
    sb = await Sandbox.create('n', { startDaemon: false });
    faults.unsetEnv();
    host = `unix://${sb.socket}`;
    lan = await sb.addPeer('l', '10.204.0');
    // A resolver in a test namespace, for the dns capability; the host's resolv.conf names none.
    upstream = await sb.addPeer('u', '10.205.0');
    sb.serveZone(upstream.nsPath, '10.205.0.77 www.example.test\n', upstream.address);
    faults.arm();
    await sb.startDaemon();
    faults.unsetEnv();
    await sb.berthOk('network', 'create', '--subnet', '10.140.0.0/24', 'cninet');
    await sb.berthOk('network', 'create', '--ipv6', '--subnet', '10.142.0.0/24', '--subnet', 'fd8c::/64', 'cnidual');
  });
  after(async () => {
    await sb?.destroy();
    faults.remove();
  });

  test('VERSION lists the supported versions, answering in the version the runtime asked in', async () => {
    for (const asked of ['1.1.0', '1.0.0', '0.4.0']) {
      const r = await cni({ command: 'VERSION', config: { cniVersion: asked } });
      assert.equal(r.code, 0);
      assert.deepEqual(r.json, { cniVersion: asked, supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
    }
    const none = await cni({ command: 'VERSION', config: '' });
    assert.deepEqual(none.json, { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] }, 'nothing asked: the newest');
  });

  test('CHECK fails, with what is wrong, when the interface is down, its address is gone or the default route is gone', async () => {
    const netns = await sb.makeNetns('chk');
    const add = await cni({ command: 'ADD', containerId: 'chk', netns, config: conf('1.1.0') });
    assert.equal(add.code, 0, add.raw);
    const { ip } = checkResult(add.json!, '1.1.0', netns);
    const check = () => cni({ command: 'CHECK', containerId: 'chk', netns, config: { ...conf('1.1.0'), prevResult: add.json } });
    assert.equal((await check()).code, 0, 'positive control: CHECK passes on the attachment as ADD left it');
    const defaultRoute = ['route', 'add', 'default', 'via', '10.140.0.1'];
    // A link going down takes its routes with it, so its repair restores the default route too.
    const breakages: [string, string[], string[][], RegExp][] = [
      ['link down', ['link', 'set', 'eth0', 'down'], [['link', 'set', 'eth0', 'up'], defaultRoute], /interface eth0 is down/],
      ['address removed', ['addr', 'del', `${ip}/24`, 'dev', 'eth0'], [['addr', 'add', `${ip}/24`, 'dev', 'eth0'], defaultRoute], new RegExp(`address ${ip.replace(/\./g, '\\.')}/24 is missing`)],
      ['default route removed', ['route', 'del', 'default'], [defaultRoute], /default route via 10\.140\.0\.1 is missing/],
    ];
    for (const [what, breakIt, repairs, msg] of breakages) {
      assert.equal((await sb.inNs(netns, 'ip', breakIt)).code, 0, what);
      const r = await check();
      assert.notEqual(r.code, 0, `${what}: CHECK must fail`);
      assert.equal(typeof r.json?.code, 'number', r.raw);
      assert.match(String(r.json?.msg), msg, what);
      for (const repair of repairs) await sb.inNs(netns, 'ip', repair);
      assert.equal((await sb.inNs(netns, 'ip', ['route', 'show', 'default'])).stdout.includes('via 10.140.0.1'), true, `${what}: repaired`);
      const again = await check();
      assert.equal(again.code, 0, `${what}: CHECK passes again once repaired: ${again.raw}`);
    }
    const unknown = await cni({ command: 'CHECK', containerId: 'never-added', netns, config: conf('1.1.0') });
    assert.equal(unknown.json?.code, 3, 'unknown container: code 3');
    assert.equal((await cni({ command: 'DEL', containerId: 'chk', netns, config: conf('1.1.0') })).code, 0);
  });

  test('capabilities ips, mac and dns: the address and MAC asked for, and the servers asked for answer that container', async () => {
    const netns = await sb.makeNetns('caps');
    const plain = await sb.makeNetns('capsplain');
    const rc = { ips: ['10.140.0.77/24'], mac: '02:42:0a:8c:00:4d', dns: { servers: [upstream.address], searches: ['corp.example'], options: ['ndots:2'] } };
    const add = await cni({ command: 'ADD', containerId: 'caps', netns, config: { ...conf('1.1.0'), runtimeConfig: rc } });
    assert.equal(add.code, 0, add.raw);
    assert.equal(checkResult(add.json!, '1.1.0', netns).ip, '10.140.0.77');
    const inner = (add.json!.interfaces as { sandbox?: string; mac?: string }[]).find((i) => i.sandbox === netns)!;
    assert.equal(inner.mac, rc.mac);
    assert.deepEqual(add.json!.dns, { nameservers: ['10.140.0.1'], search: ['corp.example'], options: ['ndots:2'] });
    const link = (await sb.inNs(netns, 'ip', ['-o', 'addr', 'show', 'eth0'])).stdout;
    assert.match(link, /inet 10\.140\.0\.77\/24/, 'the kernel has the address asked for');
    assert.match((await sb.inNs(netns, 'ip', ['-o', 'link', 'show', 'eth0'])).stdout, /link\/ether 02:42:0a:8c:00:4d/, 'and the MAC');
    const dig = async (ns: string) => (await sb.inNs(ns, 'dig', ['@10.140.0.1', '+tries=1', '+time=3', '+short', 'www.example.test'])).stdout.trim();
    assert.equal(await dig(netns), '10.205.0.77', 'forwarded to the server the runtime gave for this container');
    // Control through the same resolver: a container without the capability has no upstream here.
    assert.equal((await cni({ command: 'ADD', containerId: 'capsplain', netns: plain, config: conf('1.1.0') })).code, 0);
    assert.notEqual(await dig(plain), '10.205.0.77', 'a container without dns servers is not forwarded there');
    const taken = await cni({ command: 'ADD', containerId: 'caps2', netns: await sb.makeNetns('caps2'), config: { ...conf('1.1.0'), runtimeConfig: { ips: ['10.140.0.77/24'] } } });
    assert.notEqual(taken.code, 0, 'the same address twice');
    assert.match(String(taken.json?.msg), /10\.140\.0\.77/);
    for (const [id, ns] of [['caps', netns], ['capsplain', plain]] as const) assert.equal((await cni({ command: 'DEL', containerId: id, netns: ns, config: conf('1.1.0') })).code, 0);
  });

  test('dual stack: ADD returns both families (1.0.0 and 0.4.0), the namespace has them, IPv6 flows between CNI containers, CHECK covers IPv6', async () => {
    const a = await sb.makeNetns('d6a');
    const b = await sb.makeNetns('d6b');
    const addA = await cni({ command: 'ADD', containerId: 'd6a', netns: a, config: dualConf('1.0.0') });
    assert.equal(addA.code, 0, addA.raw);
    const addB = await cni({ command: 'ADD', containerId: 'd6b', netns: b, config: dualConf('0.4.0') });
    assert.equal(addB.code, 0, addB.raw);
    const { ip6: ip6A } = checkDualResult(addA.json!, '1.0.0', a);
    const { ip6: ip6B } = checkDualResult(addB.json!, '0.4.0', b);
    assert.match(await inet6Of(a), new RegExp(`inet6 ${ip6A}/64 `), 'the kernel has the IPv6 address of the result');
    assert.match((await sb.inNs(a, 'ip', ['-6', 'route', 'show', 'default'])).stdout, /default via fd8c::1 dev eth0/);
    assert.equal((await sb.inNs(b, BUSYBOX, ['ping', '-6', '-c', '1', '-W', '2', ip6A], 10_000)).code, 0, 'ping -6 b → a');
    sb.spawnIn(a, BUSYBOX, ['nc', '-ll', '-p', '80', '-e', '/bin/echo', 'cni-v6']);
    assert.ok(await eventually(async () => (await sb.inNs(b, BUSYBOX, ['nc', '-w', '2', ip6A, '80'])).stdout.includes('cni-v6'), 5000), 'TCP over IPv6, b → a');
    assert.equal((await sb.inNs(a, BUSYBOX, ['ping', '-6', '-c', '1', '-W', '2', ip6B], 10_000)).code, 0, 'ping -6 a → b');

    const check = () => cni({ command: 'CHECK', containerId: 'd6a', netns: a, config: { ...dualConf('1.0.0'), prevResult: addA.json } });
    assert.equal((await check()).code, 0, 'positive control: CHECK passes on the dual-stack attachment as ADD left it');
    assert.equal((await cni({ command: 'CHECK', containerId: 'd6b', netns: b, config: { ...dualConf('0.4.0'), prevResult: addB.json } })).code, 0, 'and in 0.4.0');
    const route6 = ['-6', 'route', 'replace', 'default', 'via', 'fd8c::1', 'dev', 'eth0'];
    const breakages: [string, string[], string[][], RegExp][] = [
      ['IPv6 address removed', ['-6', 'addr', 'del', `${ip6A}/64`, 'dev', 'eth0'], [['-6', 'addr', 'add', `${ip6A}/64`, 'dev', 'eth0', 'nodad'], route6], new RegExp(`IPv6 address ${ip6A}/64 is missing`)],
      ['IPv6 default route removed', ['-6', 'route', 'del', 'default'], [route6], /IPv6 default route via fd8c::1 is missing/],
    ];
    for (const [what, breakIt, repairs, msg] of breakages) {
      assert.equal((await sb.inNs(a, 'ip', breakIt)).code, 0, what);
      const r = await check();
      assert.equal(r.json?.code, 100, `${what}: CHECK must fail: ${r.raw}`);
      assert.match(String(r.json?.msg), msg, what);
      for (const repair of repairs) assert.equal((await sb.inNs(a, 'ip', repair)).code, 0, `${what}: repair ${repair.join(' ')}`);
      const again = await check();
      assert.equal(again.code, 0, `${what}: CHECK passes again once repaired: ${again.raw}`);
    }
    for (const [id, ns, version] of [['d6a', a, '1.0.0'], ['d6b', b, '0.4.0']] as const) assert.equal((await cni({ command: 'DEL', containerId: id, netns: ns, config: dualConf(version) })).code, 0);
  });

  test('capability ips with IPv6: the address asked for is honoured; a bad one is refused with code 7 and leaves nothing behind', async () => {
    const netns = await sb.makeNetns('ips6');
    const add = await cni({ command: 'ADD', containerId: 'ips6', netns, config: dualConf('1.1.0', { runtimeConfig: { ips: ['10.142.0.60/24', 'fd8c::60/64'] } }) });
    assert.equal(add.code, 0, add.raw);
    assert.deepEqual(checkDualResult(add.json!, '1.1.0', netns), { ip: '10.142.0.60', ip6: 'fd8c::60' });
    assert.match(await inet6Of(netns), /inet6 fd8c::60\/64 /, 'the kernel has the IPv6 address asked for');
    assert.equal((await cni({ command: 'DEL', containerId: 'ips6', netns, config: dualConf('1.1.0') })).code, 0);

    const bad = await sb.makeNetns('ips6bad');
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['outside the IPv6 subnet', dualConf('1.1.0', { runtimeConfig: { ips: ['fd8d::5/64'] } }), /fd8d::5\/64: it is outside network cnidual's IPv6 subnet fd8c::\/64/],
      ['not the subnet prefix', dualConf('1.1.0', { runtimeConfig: { ips: ['fd8c::5/48'] } }), /the prefix must be the network's \(\/64/],
      ['two IPv6 addresses', dualConf('1.1.0', { runtimeConfig: { ips: ['fd8c::5', 'fd8c::6'] } }), /at most one IPv4 and one IPv6 address/],
      ['IPv6 on an IPv4-only network', conf('1.1.0', { runtimeConfig: { ips: ['fd8c::5'] } }), /network cninet has no IPv6: .*berth network create --ipv6/],
    ];
    for (const [what, config, msg] of cases) {
      const r = await cni({ command: 'ADD', containerId: 'ips6bad', netns: bad, config });
      assert.equal(r.json?.code, 7, `${what}: ${r.raw}`);
      assert.match(String(r.json?.msg), msg, what);
      assert.doesNotMatch(await sb.berthOk('ps', '-a'), /cni-ips6bad/, `${what}: no container record left`);
      assert.equal((await sb.inNs(bad, 'ip', ['-o', 'link'])).stdout.trim().split('\n').length, 1, `${what}: only lo in the namespace`);
    }
    // Positive control through the same path: the same ADD with an address inside the subnet works.
    const good = await cni({ command: 'ADD', containerId: 'ips6bad', netns: bad, config: dualConf('1.1.0', { runtimeConfig: { ips: ['fd8c::5/64'] } }) });
    assert.equal(good.code, 0, good.raw);
    assert.equal(checkDualResult(good.json!, '1.1.0', bad).ip6, 'fd8c::5');
    assert.match(await inet6Of(bad), /inet6 fd8c::5\/64 /);
    assert.equal((await cni({ command: 'DEL', containerId: 'ips6bad', netns: bad, config: dualConf('1.1.0') })).code, 0);
  });

  test('DEL acts on the namespace ADD recorded, never on an interface of that name in the namespace the caller names', async () => {
    const netns = await sb.makeNetns('delrec');
    const other = await sb.makeNetns('delother');
    // The other namespace has an eth0 of its own (a veth pair inside it).
    assert.equal((await sb.inNs(other, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p'])).code, 0);
    assert.equal((await cni({ command: 'ADD', containerId: 'delrec', netns, config: conf('1.1.0') })).code, 0);
    const del = await cni({ command: 'DEL', containerId: 'delrec', netns: other, config: conf('1.1.0') });
    assert.equal(del.code, 0, del.raw);
    assert.ok(await eventually(async () => (await sb.inNs(netns, 'ip', ['link', 'show', 'eth0'])).code === 1, 2000), "the attachment's eth0 is gone");
    assert.equal((await sb.inNs(other, 'ip', ['link', 'show', 'eth0'])).code, 0, "the other namespace's eth0 is left alone");
    assert.doesNotMatch(await sb.berthOk('ps', '-a'), /cni-delrec/);
    const elsewhere = await cni({ command: 'ADD', containerId: 'delrec2', netns, config: conf('1.1.0') });
    assert.equal(elsewhere.code, 0);
    const moved = await cni({ command: 'ADD', containerId: 'delrec2', netns: other, ifname: 'eth1', config: conf('1.1.0') });
    assert.equal(moved.json?.code, 4, 'one container id cannot span two namespaces');
    assert.match(String(moved.json?.msg), /was added in namespace/);
    assert.equal((await cni({ command: 'DEL', containerId: 'delrec2', netns, config: conf('1.1.0') })).code, 0);
  });

  test('a second interface whose ADD fails late is rolled back alone: the first keeps working, nothing of the second is left', async () => {
    const netns = await sb.makeNetns('second');
    await sb.berthOk('network', 'create', '--subnet', '10.141.0.0/24', 'cninet2');
    assert.equal((await cni({ command: 'ADD', containerId: 'second', netns, config: conf('1.1.0') })).code, 0);
    const withPort = { ...conf('1.1.0'), name: 'cninet2', runtimeConfig: { portMappings: [{ hostPort: 8383, containerPort: 80, protocol: 'tcp' }] } };
    faults.inject('nft\n');
    let failed;
    try {
      failed = await cni({ command: 'ADD', containerId: 'second', netns, ifname: 'eth1', config: withPort });
    } finally {
      faults.inject('');
    }
    assert.notEqual(failed.code, 0, 'the firewall step failed');
    assert.match(String(failed.json?.msg), /injected failure/);
    assert.equal((await sb.inNs(netns, 'ip', ['link', 'show', 'eth1'])).code, 1, 'no eth1 left');
    assert.equal((await sb.inNs(netns, BUSYBOX, ['ping', '-c', '1', '-W', '2', '10.140.0.1'])).code, 0, 'eth0 still reaches its gateway');
    const endpoints = async (network: string) => {
      const [net] = JSON.parse(await sb.berthOk('network', 'inspect', network));
      return Object.values(net.Containers as Record<string, { Name: string }>).filter((c) => c.Name === 'cni-second').length;
    };
    assert.equal(await endpoints('cninet'), 1, 'the first endpoint is on record');
    assert.equal(await endpoints('cninet2'), 0, 'the second is not');
    assert.doesNotMatch((await sb.inHost('nft', ['list', 'map', 'ip', 'berth', 'dnat_any'])).stdout, /8383/, 'nor its port');
    // Positive control through the same path: the same ADD, without the fault, works and gets the port.
    const again = await cni({ command: 'ADD', containerId: 'second', netns, ifname: 'eth1', config: withPort });
    assert.equal(again.code, 0, again.raw);
    assert.match((await sb.inHost('nft', ['list', 'map', 'ip', 'berth', 'dnat_any'])).stdout, /8383/);
    assert.equal(await endpoints('cninet2'), 1);
    assert.equal((await cni({ command: 'DEL', containerId: 'second', netns, ifname: 'eth1', config: { ...conf('1.1.0'), name: 'cninet2' } })).code, 0);
    assert.equal((await cni({ command: 'DEL', containerId: 'second', netns, config: conf('1.1.0') })).code, 0);
    assert.doesNotMatch((await sb.inHost('nft', ['list', 'map', 'ip', 'berth', 'dnat_any'])).stdout, /8383/);
    await sb.berthOk('network', 'rm', 'cninet2');
  });

  for (const version of ['0.4.0', '1.0.0', '1.1.0']) {
    test(`ADD, CHECK, DEL (twice) with cniVersion ${version}`, async () => {
      const netns = await sb.makeNetns(`v${version.replace(/\./g, '')}`);
      const id = `ctr-${version}`;
      const add = await cni({ command: 'ADD', containerId: id, netns, config: conf(version) });
      assert.equal(add.code, 0, add.raw);
      const { gateway } = checkResult(add.json!, version, netns);
      assert.equal((await sb.inNs(netns, BUSYBOX, ['ping', '-c', '1', '-W', '2', gateway])).code, 0, 'the container reaches its gateway');
      assert.match(await sb.berthOk('ps'), new RegExp(`cni-${id.replace(/\./g, '\\.')}`), 'shows in berth ps');
      const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'cninet'));
      assert.ok(Object.values(net.Containers as Record<string, { Name: string }>).some((c) => c.Name === `cni-${id}`));
      const check = await cni({ command: 'CHECK', containerId: id, netns, config: { ...conf(version), prevResult: add.json } });
      assert.equal(check.code, 0, check.raw);
      const del = await cni({ command: 'DEL', containerId: id, netns, config: conf(version) });
      assert.equal(del.code, 0, del.raw);
      // The kernel deletes the veth just after DEL returns (a veth delete blocks 16-40 ms).
      assert.ok(await eventually(async () => (await sb.inNs(netns, 'ip', ['link', 'show', 'eth0'])).code === 1, 2000), 'eth0 is gone');
      assert.doesNotMatch(await sb.berthOk('ps', '-a'), new RegExp(`cni-${id.replace(/\./g, '\\.')}`));
      const again = await cni({ command: 'DEL', containerId: id, netns, config: conf(version) });
      assert.equal(again.code, 0, 'DEL is idempotent');
    });
  }

  test('DEL succeeds for unknown containers and missing namespaces', async () => {
    assert.equal((await cni({ command: 'DEL', containerId: 'never-added', netns: '/run/netns/nope', config: conf('1.1.0') })).code, 0);
    const netns = await sb.makeNetns('gone');
    assert.equal((await cni({ command: 'ADD', containerId: 'vanishing', netns, config: conf('1.1.0') })).code, 0);
    await import('node:child_process').then(({ execFileSync }) => execFileSync('ip', ['netns', 'del', path.basename(netns)]));
    assert.equal((await cni({ command: 'DEL', containerId: 'vanishing', netns, config: conf('1.1.0') })).code, 0);
    assert.ok(await eventually(async () => !(await sb.inHost('ip', ['-o', 'link'])).stdout.includes('master berth-'), 3000), 'no veth left');
  });

  test('two CNI containers talk to each other and resolve each other by name; a published port works from the LAN', async () => {
    const a = await sb.makeNetns('ca');
    const b = await sb.makeNetns('cb');
    const portConf = { ...conf('1.1.0'), runtimeConfig: { portMappings: [{ hostPort: 8181, containerPort: 80, protocol: 'tcp' }], aliases: { cninet: ['webby'] } } };
    const addA = await cni({ command: 'ADD', containerId: 'web', netns: a, config: portConf });
    assert.equal(addA.code, 0, addA.raw);
    const addB = await cni({ command: 'ADD', containerId: 'client', netns: b, config: conf('1.1.0') });
    assert.equal(addB.code, 0, addB.raw);
    const ipA = checkResult(addA.json!, '1.1.0', a).ip;
    sb.spawnIn(a, BUSYBOX, ['nc', '-ll', '-p', '80', '-e', '/bin/echo', 'cni-web']);
    assert.ok(await eventually(async () => (await sb.inNs(b, BUSYBOX, ['nc', '-w', '2', ipA, '80'])).stdout.includes('cni-web'), 5000), 'container to container');
    const dig = await sb.inNs(b, 'dig', ['@10.140.0.1', '+short', 'webby']);
    assert.equal(dig.stdout.trim(), ipA, 'the alias resolves through berth DNS');
    const fromLan = await sb.inNs(lan.nsPath, BUSYBOX, ['nc', '-w', '2', lan.hostAddress, '8181']);
    assert.equal(fromLan.stdout.trim(), 'cni-web', 'published port from a LAN peer');
    for (const [id, ns] of [['web', a], ['client', b]] as const) assert.equal((await cni({ command: 'DEL', containerId: id, netns: ns, config: conf('1.1.0') })).code, 0);
    assert.doesNotMatch((await sb.inHost('nft', ['list', 'map', 'ip', 'berth', 'dnat_any'])).stdout, /8181/, 'DEL removed the port');
  });

  test('ADD fails when the interface already exists', async () => {
    const netns = await sb.makeNetns('dup');
    assert.equal((await cni({ command: 'ADD', containerId: 'dup', netns, config: conf('1.1.0') })).code, 0);
    const again = await cni({ command: 'ADD', containerId: 'dup', netns, config: conf('1.1.0') });
    assert.notEqual(again.code, 0);
    assert.equal(typeof again.json?.code, 'number');
    assert.match(String(again.json?.msg), /eth0 already exists/);
    await cni({ command: 'DEL', containerId: 'dup', netns, config: conf('1.1.0') });
  });

  test('GC removes attachments that are not in cni.dev/valid-attachments; STATUS answers', async () => {
    const keep = await sb.makeNetns('gk');
    const drop = await sb.makeNetns('gd');
    await cni({ command: 'ADD', containerId: 'keep', netns: keep, config: conf('1.1.0') });
    await cni({ command: 'ADD', containerId: 'drop', netns: drop, config: conf('1.1.0') });
    const gc = await cni({ command: 'GC', config: { ...conf('1.1.0'), 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] } });
    assert.equal(gc.code, 0, gc.raw);
    const ps = await sb.berthOk('ps');
    assert.match(ps, /cni-keep/);
    assert.doesNotMatch(ps, /cni-drop/);
    assert.ok(await eventually(async () => (await sb.inNs(drop, 'ip', ['link', 'show', 'eth0'])).code === 1, 2000), 'eth0 is gone');
    assert.equal((await cni({ command: 'STATUS', config: conf('1.1.0') })).code, 0);
    await cni({ command: 'DEL', containerId: 'keep', netns: keep, config: conf('1.1.0') });
  });

  test('chains with the reference plugins portmap, bandwidth, tuning and firewall', async () => {
    const netns = await sb.makeNetns('chain');
    const list = {
      cniVersion: '1.0.0',
      name: 'cninet',
      plugins: [
        { type: 'berth', host },
        { type: 'portmap', capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 8282, containerPort: 80, protocol: 'tcp' }] } },
        { type: 'bandwidth', ingressRate: 100000000, ingressBurst: 1000000, egressRate: 100000000, egressBurst: 1000000 },
        { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.rp_filter': '2' } },
        { type: 'firewall', backend: 'iptables' },
      ],
    };
    let prevResult: Record<string, unknown> | undefined;
    for (const plugin of list.plugins) {
      const config = { cniVersion: list.cniVersion, name: list.name, ...plugin, ...(prevResult ? { prevResult } : {}) };
      const bin = plugin.type === 'berth' ? cniPlugin() : path.join(REFERENCE_PLUGINS, plugin.type);
      const r = await cni({ command: 'ADD', containerId: 'chained', netns, config, plugin: bin });
      assert.equal(r.code, 0, `${plugin.type} ADD: ${r.raw}`);
      prevResult = r.json;
    }
    checkResult(prevResult!, '1.0.0', netns);
    assert.equal((await sb.inNs(netns, 'sysctl', ['-n', 'net.ipv4.conf.eth0.rp_filter'])).stdout.trim(), '2', 'tuning applied to our interface');
    // portmap's own DNAT, from berth's result: a LAN peer reaches the container on the host port.
    sb.spawnIn(netns, BUSYBOX, ['nc', '-ll', '-p', '80', '-e', '/bin/echo', 'chained']);
    assert.ok(await eventually(async () => (await sb.inNs(lan.nsPath, BUSYBOX, ['nc', '-w', '2', lan.hostAddress, '8282'])).stdout.includes('chained'), 5000), "portmap's mapping answers from the LAN");
    assert.doesNotMatch((await sb.inHost('nft', ['list', 'map', 'ip', 'berth', 'dnat_any'])).stdout, /8282/, 'berth did not publish it: portmap did');
    for (const plugin of [...list.plugins].reverse()) {
      const config = { cniVersion: list.cniVersion, name: list.name, ...plugin, prevResult };
      const bin = plugin.type === 'berth' ? cniPlugin() : path.join(REFERENCE_PLUGINS, plugin.type);
      const r = await cni({ command: 'DEL', containerId: 'chained', netns, config, plugin: bin });
      assert.equal(r.code, 0, `${plugin.type} DEL: ${r.raw}`);
    }
    assert.doesNotMatch(await sb.berthOk('ps', '-a'), /cni-chained/);
  });

  test('bad input gets the spec error code and a message that says what to fix, and nothing half-made', async () => {
    const netns = await sb.makeNetns('bad');
    const cases: [string, Invocation, number, RegExp][] = [
      ['missing netns', { command: 'ADD', containerId: 'b1', netns: '/run/netns/does-not-exist', config: conf('1.1.0') }, 4, /does not exist/],
      ['malformed config JSON', { command: 'ADD', containerId: 'b2', netns, config: '{"cniVersion": ' }, 6, /not valid JSON/],
      ['unknown berth network', { command: 'ADD', containerId: 'b3', netns, config: { ...conf('1.1.0'), network: 'nosuch' } }, 7, /network "nosuch" not found/],
      ['interface name over 15 characters', { command: 'ADD', containerId: 'b4', netns, ifname: 'averyveryverylongname', config: conf('1.1.0') }, 4, /not a valid interface name/],
      ['unsupported cniVersion', { command: 'ADD', containerId: 'b5', netns, config: conf('0.2.0') }, 1, /unsupported cniVersion 0\.2\.0/],
    ];
    for (const [what, inv, code, msg] of cases) {
      const r = await cni(inv);
      assert.notEqual(r.code, 0, what);
      assert.equal(r.json?.code, code, `${what}: ${r.raw}`);
      assert.match(String(r.json?.msg), msg, what);
    }
    assert.doesNotMatch(await sb.berthOk('ps', '-a'), /cni-b\d/, 'no container record left');
    assert.equal((await sb.inNs(netns, 'ip', ['-o', 'link'])).stdout.trim().split('\n').length, 1, 'only lo in the namespace');
    const down = await cni({ command: 'ADD', containerId: 'b6', netns, config: { ...conf('1.1.0'), host: 'unix:///tmp/berth-no-daemon.sock' } });
    assert.notEqual(down.code, 0);
    assert.equal(down.json?.code, 11);
    assert.match(String(down.json?.msg), /cannot reach the berth daemon/);
    const status = await cni({ command: 'STATUS', config: { ...conf('1.1.0'), host: 'unix:///tmp/berth-no-daemon.sock' } });
    assert.equal(status.json?.code, 50);
  });
});
