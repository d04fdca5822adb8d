/**
 * Issue 16: a real dockerd (Debian's docker.io, in the sandbox host, with its own roots and a
 * private /run/docker/plugins) runs its containers on berth networks through berth's plugin
 * socket: network create with berth's drivers and IPAM, run, connect and disconnect, published
 * ports, Docker's own DNS, berth's view of Docker's containers and its network events, bad input
 * refused on both sides, and restarts of either daemon.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, Sandbox, eventually, must, type Peer } from '../../helpers/sandbox.js';
import { DOCKER_IMAGE, Dockerd } from '../../helpers/dockerd.js';

const unavailable = Dockerd.pluginsUnavailable();

interface NetView {
  Name: string;
  Driver: string;
  IPAM: { Config: { Subnet: string; Gateway?: string }[] };
  Containers: Record<string, { Name: string; IPv4Address: string }>;
}

describe('dockerd on berth networks (CNM remote driver and IPAM)', { skip: unavailable }, () => {
  let sb: Sandbox;
  let lan: Peer;
  let dockerd: Dockerd;
  let pluginSocket: string;

  // berth reads the sandboxed dockerd's API, never the machine's (/run/docker.sock, the default).
  const startBerth = () => sb.startDaemon(['--plugin-socket', pluginSocket, '--docker-host', `unix://${Dockerd.socketIn(path.join(sb.root, 'docker'))}`]);
  const docker = (...args: string[]) => dockerd.docker(...args);
  const dockerOk = async (...args: string[]) => must(await docker(...args), `docker ${args.join(' ')}`).trim();
  const serve = (name: string, net: string, reply: string, extra: string[] = []) =>
    dockerOk('run', '-d', '--restart', 'always', '--name', name, '--network', net, ...extra, DOCKER_IMAGE, '/bin/busybox', 'nc', '-ll', '-p', '80', '-e', '/bin/busybox', 'echo', reply);
  const ipOf = async (name: string, net: string) => dockerOk('inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, name);
  const fetchFrom = async (name: string, host: string) => (await docker('exec', name, '/bin/busybox', 'nc', '-w', '2', host, '80')).stdout.trim();
  const berthNet = async (dockerNet: string): Promise<NetView> => {
    const id = await dockerOk('network', 'inspect', '-f', '{{.Id}}', dockerNet);
    return JSON.parse(await sb.berthOk('network', 'inspect', `docker-${id.slice(0, 12)}`))[0];
  };

  before(async () => {
    sb = await Sandbox.create('dp', { startDaemon: false });
    lan = await sb.addPeer('l', '10.218.0');
    const pluginDir = path.join(sb.root, 'plugins');
    fs.mkdirSync(pluginDir);
    pluginSocket = path.join(pluginDir, 'berth.sock');
    await startBerth();
    dockerd = await Dockerd.start(sb.hostNs, path.join(sb.root, 'docker'), { pluginDir });
  });
  after(async () => {
    await dockerd?.stop().catch((err) => process.stderr.write(`dockerd cleanup: ${String(err)}\n`));
    await sb?.destroy();
  });

  test('docker run on a -d berth network: addresses from berth, traffic by address and by name, berth sees the containers', async () => {
    await dockerOk('network', 'create', '-d', 'berth', '--subnet', '10.231.0.0/24', 'dnet');
    await serve('ca', 'dnet', 'from-a');
    await serve('cb', 'dnet', 'from-b');
    const [ipA, ipB] = [await ipOf('ca', 'dnet'), await ipOf('cb', 'dnet')];
    assert.match(ipA, /^10\.231\.0\.\d+$/);
    assert.notEqual(ipA, ipB);
    assert.equal(await fetchFrom('cb', ipA), 'from-a', 'b reaches a by address');
    assert.equal(await fetchFrom('ca', 'cb'), 'from-b', "a reaches b by name (Docker's embedded DNS)");
    // berth's resolver (on the network's gateway) knows them by their Docker names too, learnt from dockerd.
    const ask = (name: string) => docker('exec', 'ca', '/bin/busybox', 'nslookup', name, '10.231.0.1');
    assert.ok(await eventually(async () => (await ask('cb')).stdout.includes(ipB), 10_000, 250), `berth's resolver answers cb: ${(await ask('cb')).stdout}`);
    assert.notEqual((await ask('nosuch-c9')).code, 0, 'and not a name no container has');
    const inside = (await docker('exec', 'ca', '/bin/busybox', 'ip', '-4', '-o', 'addr', 'show', 'eth0')).stdout;
    assert.match(inside, new RegExp(`inet ${ipA.replace(/\./g, '\\.')}/24`), 'eth0 carries the address');
    const route = (await docker('exec', 'ca', '/bin/busybox', 'ip', 'route')).stdout;
    assert.match(route, /default via 10\.231\.0\.1 dev eth0/, route);
    const net = await berthNet('dnet');
    assert.equal(net.Driver, 'bridge');
    assert.equal(net.IPAM.Config[0]!.Subnet, '10.231.0.0/24');
    const addrs = Object.values(net.Containers).map((c) => c.IPv4Address.split('/')[0]).sort();
    assert.deepEqual(addrs, [ipA, ipB].sort(), "berth's network inspect lists Docker's containers");
  });

  test('published ports (-p) on a berth bridge network reach the container from the LAN', async () => {
    await serve('web', 'dnet', 'from-web', ['-p', '8811:80']);
    assert.ok(await eventually(async () => (await sb.inNs(lan.nsPath, BUSYBOX, ['nc', '-w', '2', lan.hostAddress, '8811'])).stdout.trim() === 'from-web', 5000), 'LAN peer -> host:8811');
    await dockerOk('rm', '-f', 'web');
    assert.equal((await sb.inNs(lan.nsPath, BUSYBOX, ['nc', '-w', '2', lan.hostAddress, '8811'])).stdout.trim(), '', 'the port goes with the container');
    assert.ok(!(await sb.berthOk('ps', '-a')).includes(':8811'), 'berth holds no binding');
  });

  test('docker network connect and disconnect', async () => {
    await dockerOk('network', 'create', '-d', 'berth', '--subnet', '10.233.0.0/24', 'dnet2');
    await serve('cc', 'dnet2', 'from-c');
    const ipC = await ipOf('cc', 'dnet2');
    assert.equal(await fetchFrom('cb', ipC), '', 'b cannot reach c before connect');
    await dockerOk('network', 'connect', 'dnet2', 'cb');
    const ipB2 = await ipOf('cb', 'dnet2');
    assert.match(ipB2, /^10\.233\.0\.\d+$/);
    assert.equal(await fetchFrom('cb', ipC), 'from-c', 'b reaches c after connect');
    assert.equal(Object.keys((await berthNet('dnet2')).Containers).length, 2);
    await dockerOk('network', 'disconnect', 'dnet2', 'cb');
    assert.equal(await fetchFrom('cb', ipC), '', 'not after disconnect');
    assert.doesNotMatch((await docker('exec', 'cb', '/bin/busybox', 'ip', '-o', 'link')).stdout, /eth1/, 'the interface left b');
    assert.equal(Object.keys((await berthNet('dnet2')).Containers).length, 1);
    assert.equal(await fetchFrom('cb', await ipOf('ca', 'dnet')), 'from-a', 'b still on dnet');
  });

  test('--ipam-driver berth: berth picks the subnet and the addresses', async () => {
    await dockerOk('network', 'create', '-d', 'berth', '--ipam-driver', 'berth', 'inet');
    const subnet = await dockerOk('network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', 'inet');
    const net = await berthNet('inet');
    assert.equal(net.IPAM.Config[0]!.Subnet, subnet, "dockerd's subnet is berth's");
    await serve('i1', 'inet', 'from-i1');
    await serve('i2', 'inet', 'from-i2');
    const ip1 = await ipOf('i1', 'inet');
    assert.ok(ip1.startsWith(subnet.split('.').slice(0, 2).join('.')), `${ip1} in ${subnet}`);
    assert.equal(await fetchFrom('i2', ip1), 'from-i1');
    assert.equal(await fetchFrom('i2', 'i1'), 'from-i1', 'by name');
  });

  test("bad input: Docker shows berth's message and neither side keeps anything", async () => {
    const since = String(Date.now() / 1000);
    const before = await sb.berthOk('network', 'ls', '-q');
    const unknownDriver = await docker('network', 'create', '-d', 'berth', '-o', 'berth.driver=nope', 'bad1');
    assert.notEqual(unknownDriver.code, 0);
    assert.match(unknownDriver.stderr, /berth\.driver=nope: berth has no such driver/);
    await sb.berthOk('network', 'create', '--subnet', '10.234.0.0/24', 'taken');
    const overlap = await docker('network', 'create', '-d', 'berth', '--subnet', '10.234.0.0/25', 'bad2');
    assert.notEqual(overlap.code, 0);
    assert.match(overlap.stderr, /Pool overlaps with other one on this address space: 10\.234\.0\.0\/25 overlaps network taken/);
    const badOption = await docker('network', 'create', '-d', 'berth', '-o', 'berth.driver=macvlan', '-o', 'parent=nosuchlink0', '--subnet', '10.235.0.0/24', 'bad3');
    assert.notEqual(badOption.code, 0);
    assert.match(badOption.stderr, /nosuchlink0/);
    const names = (await dockerOk('network', 'ls', '--format', '{{.Name}}')).split('\n');
    assert.ok(!names.some((n) => n.startsWith('bad')), names.join(','));
    const after = (await sb.berthOk('network', 'ls', '-q')).split('\n').filter((l) => !before.includes(l));
    assert.equal(after.length, 1, 'only the positive control "taken" is new');
    // Positive control through the same path: a good create right after.
    await dockerOk('network', 'create', '-d', 'berth', '--subnet', '10.236.0.0/24', 'good');
    const good = `docker-${(await dockerOk('network', 'inspect', '-f', '{{.Id}}', 'good')).slice(0, 12)}`;
    await dockerOk('network', 'rm', 'good');

    // berth's network events: the plugin's network as berth's API's ("taken"), the refused ones none.
    const events = (await sb.berthOk('events', '--since', since, '--until', String(Date.now() / 1000 + 1), '--format', 'json', '--filter', 'type=network'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { Action: string; Actor: { Attributes: Record<string, string> } })
      .filter((e) => e.Action === 'create' || e.Action === 'destroy')
      .map((e) => `${e.Action} ${e.Actor.Attributes.name} ${e.Actor.Attributes.type}`);
    assert.deepEqual(events, ['create taken bridge', `create ${good} bridge`, `destroy ${good} bridge`]);
  });

  test('a berth daemon restart loses no endpoint; a dockerd restart brings its containers back on berth', async () => {
    const ipA = await ipOf('ca', 'dnet');
    const endpointsBefore = Object.keys((await berthNet('dnet')).Containers).length;
    await sb.stopDaemon();
    await startBerth();
    assert.equal(Object.keys((await berthNet('dnet')).Containers).length, endpointsBefore, 'berth kept every endpoint');
    assert.equal(await fetchFrom('cb', ipA), 'from-a', 'traffic after a berth restart');
    await serve('cd', 'dnet', 'from-d');
    assert.equal(await fetchFrom('cd', 'ca'), 'from-a', 'a new container after a berth restart');

    await dockerd.restart();
    const back = await eventually(async () => (await fetchFrom('cb', 'ca')) === 'from-a', 30_000, 500);
    assert.ok(back, `a and b are back after a dockerd restart: ${(await docker('ps', '-a')).stdout}\n${sb.daemonLog.slice(-3000)}`);
    const net = await berthNet('dnet');
    const dockerIps = await Promise.all(['ca', 'cb', 'cd'].map((n) => ipOf(n, 'dnet')));
    const berthIps = Object.values(net.Containers).map((c) => c.IPv4Address.split('/')[0]);
    assert.deepEqual(berthIps.sort(), dockerIps.sort(), "berth's endpoints are exactly dockerd's containers (stale ones deleted)");
  });
});
