/**
 * Routed networks across hosts (Calico's model) on two simulated hosts, a router namespace running
 * its own BIRD and a LAN host behind it: each host claims its own /26 of the pool in etcd; hosts
 * learn each other's blocks over iBGP and route containers to containers un-NATed; the router
 * learns the blocks (aggregated, no /32) over eBGP and the LAN host reaches a container directly;
 * the status names a peer that is down; a daemon restart keeps traffic flowing; a host that dies
 * has its routes withdrawn and its blocks freed after its lease.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BERTH, BUSYBOX, eventually, must, run, sleep } from '../../helpers/sandbox.js';
import { Cluster } from '../../helpers/cluster.js';

const ROUTER = '192.168.90.1';
const LAN_ROUTER = '10.209.0.1';
const LAN_HOST = '10.209.0.2';
const POOL = '10.140.0.0/16';

function routerConfig(hosts: string[]): string {
  return [
    `router id ${ROUTER};`,
    'protocol device {}',
    'protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }',
    'protocol static lan { ipv4; route 10.209.0.0/24 unreachable; }',
    ...hosts.map(
      (h, i) => `protocol bgp host${i} { local ${ROUTER} as 65000; neighbor ${h} as 64512; hold time 9; keepalive time 3; connect retry time 2; graceful restart on; ipv4 { import all; export where proto = "lan"; }; }`,
    ),
    '',
  ].join('\n');
}

describe('routed networks across hosts, with a BGP router', { skip: fs.existsSync('/usr/sbin/bird') ? false : 'bird2 is not installed (apt-get install bird2)' }, () => {
  let c: Cluster;
  let routerNs = '';
  let lanNs = '';
  let routerSock = '';
  const h = (i: number) => c.hosts[i]!;
  const ipOf = async (i: number, name: string, net = 'rnet') => (await h(i).inspect(name)).NetworkSettings.Networks[net]!.IPAddress;
  const ping = async (ns: string, target: string) => (await run('nsenter', [`--net=${ns}`, '--', BUSYBOX, 'ping', '-c', '1', '-W', '1', target], { timeoutMs: 5000 })).code === 0;
  const routerRoutes = async () => (await run('birdc', ['-s', routerSock, 'show', 'route'], { timeoutMs: 5000 })).stdout;
  const bgpFlags = ['--bgp-asn', '64512', '--bgp-peer', `${ROUTER}:65000`];

  before(async () => {
    c = await Cluster.create({ hosts: 2, members: 1, ttl: 3, startDaemons: false });
    // The router: on the underlay as .1, and the LAN's gateway; its BIRD peers with both hosts.
    routerNs = await h(0).makeNetns('rt');
    lanNs = await h(0).makeNetns('lan');
    const ul = path.basename(c.underlayNs);
    const rt = path.basename(routerNs);
    const lan = path.basename(lanNs);
    must(await run('ip', ['-n', ul, 'link', 'add', 'rt', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', rt]), 'router veth');
    must(await run('ip', ['-n', ul, 'link', 'set', 'rt', 'master', 'ul', 'up']), 'router port');
    must(await run('ip', ['-n', rt, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lan]), 'lan veth');
    for (const [ns, args] of [
      [rt, ['addr', 'add', `${ROUTER}/24`, 'dev', 'eth0']],
      [rt, ['addr', 'add', `${LAN_ROUTER}/24`, 'dev', 'eth1']],
      [lan, ['addr', 'add', `${LAN_HOST}/24`, 'dev', 'eth0']],
      [rt, ['link', 'set', 'eth0', 'up']],
      [rt, ['link', 'set', 'eth1', 'up']],
      [rt, ['link', 'set', 'lo', 'up']],
      [lan, ['link', 'set', 'eth0', 'up']],
      [lan, ['link', 'set', 'lo', 'up']],
      [lan, ['route', 'add', 'default', 'via', LAN_ROUTER]],
    ] as const) must(await run('ip', ['-n', ns, ...args]), `ip ${args.join(' ')}`);
    must(await run('nsenter', [`--net=${routerNs}`, '--', 'sysctl', '-qw', 'net.ipv4.ip_forward=1']), 'router forwarding');
    const conf = path.join(h(0).root, 'router-bird.conf');
    routerSock = path.join(h(0).root, 'router-bird.ctl');
    fs.writeFileSync(conf, routerConfig([c.address(0), c.address(1)]));
    h(0).spawnIn(routerNs, 'bird', ['-f', '-c', conf, '-s', routerSock, '-P', path.join(h(0).root, 'router-bird.pid')]);
    for (let i = 0; i < 2; i++) await c.startDaemon(i, bgpFlags);
    await h(0).berthOk('network', 'create', '-d', 'routed', '--subnet', POOL, '-o', 'block_size=26', '-o', 'berth.allow_from=10.209.0.0/24', 'rnet');
    assert.ok(await eventually(async () => (await h(1).berth('network', 'inspect', 'rnet')).code === 0, 5000), 'the network reaches host 1');
    for (let i = 0; i < 2; i++) await h(i).berthOk('run', '-d', '--name', `c${i}`, '--network', 'rnet', '--', BUSYBOX, 'sleep', '3600');
  });
  after(async () => {
    await c?.destroy();
  });

  test('each host claims its own /26 of the pool in etcd; containers get /32s from it', async () => {
    const blocks = (await c.etcdList('/berth/v1/blocks/')).map((kv) => ({ block: kv.key.split('/').pop()!.replace('-', '/'), ...JSON.parse(kv.value) }));
    assert.equal(blocks.length, 2, JSON.stringify(blocks));
    assert.notEqual(blocks[0].hostId, blocks[1].hostId, 'one block per host');
    for (let i = 0; i < 2; i++) {
      const ip = await ipOf(i, `c${i}`);
      const ns = await h(i).netnsOf(`c${i}`);
      assert.match((await h(i).inNs(ns, 'ip', ['-o', 'addr', 'show', 'eth0'])).stdout, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/32`));
      assert.ok(blocks.some((b) => ip.startsWith(b.block.split('.').slice(0, 3).join('.'))), `${ip} lies in a claimed block`);
    }
  });

  test('hosts learn each other’s blocks over BGP and route container to container un-NATed', async () => {
    const c1 = await ipOf(1, 'c1');
    assert.ok(await eventually(async () => /^10\.140\.\d+\.\d+\/26 via 192\.168\.90\.12 dev eth0/m.test((await h(0).inHost('ip', ['route', 'show', 'proto', 'bird'])).stdout), 20_000, 250), 'host 0 has host 1’s block from BIRD');
    assert.ok(await eventually(async () => ping(await h(0).netnsOf('c0'), c1), 10_000, 200), 'c0 reaches c1 across hosts by routing');
    // The receiver sees the sender's own address.
    const c0 = await ipOf(0, 'c0');
    const ns1 = await h(1).netnsOf('c1');
    const listener = h(1).spawnIn(ns1, 'socat', ['TCP-LISTEN:7001,reuseaddr,fork', 'SYSTEM:echo $SOCAT_PEERADDR']);
    try {
      await eventually(async () => (await h(1).inNs(ns1, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(':7001'), 3000);
      const seen = await h(0).inNs(await h(0).netnsOf('c0'), BUSYBOX, ['nc', '-w', '2', c1, '7001'], 5000);
      assert.equal(seen.stdout.trim(), c0, 'no NAT between hosts');
    } finally {
      listener.kill('SIGKILL');
    }
    assert.doesNotMatch((await h(0).inHost('ip', ['route', 'show', 'proto', 'bird'])).stdout, /\/32/, 'blocks only, never a container’s /32');
  });

  test('the router’s BIRD learns the blocks (aggregated), and a LAN host behind it reaches a container directly', async () => {
    assert.ok(await eventually(async () => ((await routerRoutes()).match(/10\.140\.\d+\.\d+\/26/g) ?? []).length === 2, 20_000, 250), `router routes: ${await routerRoutes()}`);
    assert.doesNotMatch(await routerRoutes(), /10\.140\.\d+\.\d+\/32/);
    const c1 = await ipOf(1, 'c1');
    assert.ok(await eventually(() => ping(lanNs, c1), 10_000, 200), 'the LAN host reaches c1 through the router, no NAT');
    // Control: a routed network that does not allow the LAN is refused, though routed the same way.
    await h(1).berthOk('network', 'create', '-d', 'routed', '--subnet', '10.141.0.0/16', 'closed');
    await h(1).berthOk('run', '-d', '--name', 'shut', '--network', 'closed', '--', BUSYBOX, 'sleep', '3600');
    const shut = await ipOf(1, 'shut', 'closed');
    assert.ok(await eventually(async () => (await routerRoutes()).includes(`${shut.split('.').slice(0, 3).join('.')}.0/26`), 20_000, 250), 'the router has its block too');
    assert.equal(await ping(lanNs, shut), false, 'the firewall refuses the LAN on a network that does not allow it');
    const status = JSON.parse(await h(0).berthOk('system', 'bgp'));
    assert.equal(status.asn, 64512);
    assert.deepEqual(status.down, [], JSON.stringify(status));
    assert.ok(status.sessions.some((s: { kind: string; address: string; info: string }) => s.kind === 'peer' && s.address === ROUTER && s.info.startsWith('Established')));
    await h(1).berthOk('rm', '-f', 'shut');
    await h(1).berthOk('network', 'rm', 'closed');
  });

  test('a daemon restart keeps the routes and the traffic (BIRD restarts gracefully)', async () => {
    const c1 = await ipOf(1, 'c1');
    assert.ok(await ping(lanNs, c1));
    await h(1).stopDaemon('SIGTERM');
    // BIRD is gone with the daemon; the kernel and the router keep the routes meanwhile.
    assert.ok(await ping(lanNs, c1), 'the LAN still reaches c1 while the daemon is down');
    assert.ok(await ping(await h(0).netnsOf('c0'), c1), 'so does c0');
    await c.startDaemon(1, bgpFlags);
    assert.ok(await eventually(async () => JSON.parse(await h(1).berthOk('system', 'bgp')).down.length === 0, 20_000, 500), 'sessions back up');
    assert.ok(await ping(lanNs, c1), 'and still reached');
  });

  test('a peer that does not answer: the network still works, the status names it', async () => {
    await h(0).stopDaemon('SIGTERM');
    await c.startDaemon(0, [...bgpFlags, '--bgp-peer', '192.168.90.77:65001']);
    const status = JSON.parse(await h(0).berthOk('system', 'bgp'));
    assert.ok(status.down.some((d: string) => d.startsWith('peer 192.168.90.77 (AS 65001)')), JSON.stringify(status.down));
    assert.ok(await eventually(async () => ping(await h(0).netnsOf('c0'), await ipOf(1, 'c1')), 10_000, 200), 'c0 still reaches c1');
  });

  test('bad input: an invalid ASN or peer, BGP without a cluster store, bird2 missing; nothing starts', async () => {
    const daemon = (args: string[], env?: NodeJS.ProcessEnv) =>
      run('nsenter', [`--net=${h(0).hostNs}`, '--', process.execPath, BERTH, 'daemon', '--root', path.join(h(0).root, 'bad-state'), '--host', `unix://${h(0).root}/bad.sock`, ...args], { timeoutMs: 15_000, env });
    const refused = async (args: string[], pattern: RegExp, env?: NodeJS.ProcessEnv) => {
      const r = await daemon(args, env);
      assert.notEqual(r.code, 0, `${args.join(' ')} was accepted`);
      assert.match(r.stderr, pattern);
    };
    const cluster = c.clusterArgs(0);
    await refused([...cluster, '--bgp-asn', '0'], /--bgp-asn 0 is not a usable AS number/);
    await refused([...cluster, '--bgp-asn', '4294967296'], /not a usable AS number/);
    await refused([...cluster, '--bgp-asn', '64512', '--bgp-peer', '192.168.90.1'], /--bgp-peer 192\.168\.90\.1 is not IP:ASN/);
    await refused([...cluster, '--bgp-asn', '64512', '--bgp-peer', '192.168.90.1:abc'], /AS number abc is not a usable AS number/);
    await refused([...cluster, '--bgp-peer', '192.168.90.1:65000'], /--bgp-peer needs --bgp-asn/);
    await refused(['--bgp-asn', '64512'], /--bgp-asn needs --cluster-store/);
    await refused([...cluster, '--bgp-asn', '64512'], /needs BIRD 2 .*apt-get install bird2/, { ...process.env, PATH: '/usr/bin:/bin' });
    assert.equal(fs.existsSync(path.join(h(0).root, 'bad-state', 'bgp')), false, 'no BIRD state made');
    const doctor = await run(process.execPath, [BERTH, 'doctor', '--format', 'json'], { timeoutMs: 30_000, env: { ...process.env, PATH: '/usr/bin:/bin' } });
    assert.match(doctor.stdout, /"name": ?"bird2",\s*"status": ?"unavailable"/, doctor.stdout.slice(0, 2000));
    const doctorOk = await run(process.execPath, [BERTH, 'doctor', '--format', 'json'], { timeoutMs: 30_000 });
    assert.match(doctorOk.stdout, /"name": ?"bird2",\s*"status": ?"ok"/, 'control: found when installed');
  });

  test('a host that dies: its routes are withdrawn by BGP and its blocks freed after its lease', async () => {
    const c1 = await ipOf(1, 'c1');
    const block1 = `${c1.split('.').slice(0, 3).join('.')}.`;
    const pid = Number(fs.readFileSync(path.join(h(1).root, 'state', 'bgp', 'bird.pid'), 'utf8'));
    // Dead: off the network at once, then its processes gone.
    const t0 = Date.now();
    must(await h(1).inHost('ip', ['link', 'set', 'eth0', 'down']), 'host 1 off the underlay');
    await h(1).stopDaemon('SIGKILL');
    process.kill(pid, 'SIGKILL');
    assert.ok(await eventually(async () => !(await routerRoutes()).includes(block1), 30_000, 250), 'the router withdrew host 1’s block');
    const withdrawnMs = Date.now() - t0;
    assert.ok(await eventually(async () => !(await h(0).inHost('ip', ['route', 'show', 'proto', 'bird'])).stdout.includes(block1), 10_000, 250), 'host 0 too');
    assert.ok(await eventually(async () => (await c.etcdList('/berth/v1/blocks/')).length === 1, (c.ttl + 5) * 1000, 250), 'its block is freed after its lease');
    process.stdout.write(`# routes withdrawn ${withdrawnMs} ms after the host died\n`);
    await sleep(0);
  });
});
