/**
 * ptp (point-to-point) networks with real packets: containers on a veth each and no bridge,
 * reaching each other through the host's routing; masquerade, published ports, isolation from
 * other networks, icc=false, DNS, repair of a deleted host route, a daemon restart, bad input.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, Sandbox, eventually, run, type Peer } from '../../helpers/sandbox.js';
import { cniPlugin } from '../../helpers/cni.js';

describe('ptp networks', () => {
  let sb: Sandbox;
  let outside: Peer;
  let www: string;
  const ping = async (ns: string, ip: string) => (await sb.inNs(ns, BUSYBOX, ['ping', '-c', '1', '-W', '2', ip])).code === 0;
  const curl = async (ns: string, url: string) => (await sb.inNs(ns, 'curl', ['-s', '--max-time', '3', url], 10_000)).stdout;
  const ipOf = async (name: string, net: string) => (await sb.inspect(name)).NetworkSettings.Networks[net]!.IPAddress;

  before(async () => {
    sb = await Sandbox.create('p');
    outside = await sb.addPeer('o', '10.207.0');
    // No route back to container subnets: only masqueraded traffic gets answers.
    await sb.inNs(outside.nsPath, 'ip', ['route', 'del', 'default']);
    www = path.join(sb.root, 'www');
    fs.mkdirSync(www);
    fs.writeFileSync(path.join(www, 'index.html'), 'ptp\n');
    await sb.berthOk('network', 'create', '-d', 'ptp', '--subnet', '10.120.0.0/24', 'pnet');
    await sb.berthOk('run', '-d', '--name', 'pa', '--network', 'pnet', '--network-alias', 'web', '-p', '8099:80', '--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', www);
    await sb.berthOk('run', '-d', '--name', 'pb', '--network', 'pnet', 'sleep', '600');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('a veth per container and no bridge: /32 addresses, routes via the gateway, and containers reach each other', async () => {
    const paNs = await sb.netnsOf('pa');
    const pa = await ipOf('pa', 'pnet');
    assert.match((await sb.inNs(paNs, 'ip', ['-o', 'addr', 'show', 'eth0'])).stdout, new RegExp(`inet ${pa.replace(/\./g, '\\.')}/32`));
    const routes = (await sb.inNs(paNs, 'ip', ['route'])).stdout;
    assert.match(routes, /default via 10\.120\.0\.1 dev eth0/);
    assert.match(routes, /10\.120\.0\.0\/24 via 10\.120\.0\.1 dev eth0/);
    assert.match(routes, /10\.120\.0\.1 dev eth0 scope link/);
    const hostLinks = (await sb.inHost('ip', ['-o', 'link'])).stdout;
    assert.doesNotMatch(hostLinks.replace(/berth0/g, ''), /: berth-|link\/ether.*bridge/, 'no bridge for the ptp network');
    assert.equal((hostLinks.match(/: bpt[0-9a-f]{12}@/g) ?? []).length, 2, 'one host end per container');
    assert.ok(await eventually(async () => (await curl(await sb.netnsOf('pb'), `http://${pa}/`)) === 'ptp\n', 5000), 'pb reaches pa through the host');
    assert.match((await sb.inHost('ip', ['route', 'show', `${pa}/32`])).stdout, /dev bpt[0-9a-f]{12} .*src 10\.120\.0\.1/, 'the host routes to pa through its veth');
  });

  test('outbound masquerade, a published port from outside, and names from the embedded DNS', async () => {
    const pbNs = await sb.netnsOf('pb');
    assert.ok(await ping(pbNs, outside.address), 'the outside answers (masqueraded: it has no route back)');
    assert.ok(await eventually(async () => (await curl(outside.nsPath, `http://${outside.hostAddress}:8099/`)) === 'ptp\n', 5000), 'the published port answers from outside');
    const answer = (await sb.inNs(pbNs, 'dig', ['@10.120.0.1', '+tries=1', '+time=3', '+short', 'web'])).stdout.trim();
    assert.equal(answer, await ipOf('pa', 'pnet'));
    const stranger = (await sb.inNs(outside.nsPath, 'dig', [`@${outside.hostAddress}`, '+tries=1', '+time=2', '+short', 'web'])).stdout.trim();
    assert.notEqual(stranger, answer, 'the outside gets no answer');
  });

  test('isolated from other networks; icc=false keeps its containers apart', async () => {
    await sb.berthOk('network', 'create', '--subnet', '10.121.0.0/24', 'plainbr');
    await sb.berthOk('run', '-d', '--name', 'other', '--network', 'plainbr', 'sleep', '600');
    const pa = await ipOf('pa', 'pnet');
    assert.equal(await ping(await sb.netnsOf('other'), pa), false, 'a bridge network cannot reach the ptp network');
    assert.ok(await ping(await sb.netnsOf('pb'), pa), 'positive control: a ptp sibling can');
    await sb.berthOk('network', 'create', '-d', 'ptp', '--subnet', '10.122.0.0/24', '-o', 'com.docker.network.bridge.enable_icc=false', 'pclosed');
    await sb.berthOk('run', '-d', '--name', 'ca', '--network', 'pclosed', 'sleep', '600');
    await sb.berthOk('run', '-d', '--name', 'cb', '--network', 'pclosed', 'sleep', '600');
    assert.equal(await ping(await sb.netnsOf('cb'), await ipOf('ca', 'pclosed')), false, 'icc=false');
    assert.ok(await ping(await sb.netnsOf('cb'), '10.122.0.1'), 'positive control: the gateway answers');
    await sb.berthOk('rm', '-f', 'other', 'ca', 'cb');
    await sb.berthOk('network', 'rm', 'plainbr', 'pclosed');
    // Networks created beside a ptp network's wildcard interface element went in incrementally,
    // not through the full rebuild that follows an nft error ("interval overlaps" under nft 1.0.6).
    assert.doesNotMatch(sb.daemonLog, /firewall drifted/);
  });

  test('a deleted host route is restored by the reconciler; a restart keeps the network working', async () => {
    const pa = await ipOf('pa', 'pnet');
    const pbNs = await sb.netnsOf('pb');
    assert.equal((await sb.inHost('ip', ['route', 'del', `${pa}/32`])).code, 0);
    assert.equal(await ping(pbNs, pa), false, 'broken: the host has no route to pa');
    const report = JSON.parse(await sb.berthOk('system', 'reconcile'));
    assert.equal(report.portsReattached.length, 1, JSON.stringify(report));
    assert.ok(await ping(pbNs, pa), 'restored');
    await sb.stopDaemon();
    await sb.startDaemon();
    assert.ok(await ping(pbNs, pa), 'after a restart');
    assert.equal((await sb.inNs(pbNs, 'dig', ['@10.120.0.1', '+tries=2', '+time=2', '+short', 'web'])).stdout.trim(), pa, 'DNS after a restart');
  });

  test('the CNI plugin attaches a runtime\'s namespace to a ptp network', async () => {
    const netns = await sb.makeNetns('cnip');
    const cni = (command: string) =>
      run('nsenter', [`--net=${sb.hostNs}`, '--', cniPlugin()], {
        env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: 'ptpcni', CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' },
        input: JSON.stringify({ cniVersion: '1.1.0', name: 'pnet', type: 'berth', host: `unix://${sb.socket}` }),
      });
    const add = await cni('ADD');
    assert.equal(add.code, 0, add.stdout);
    const result = JSON.parse(add.stdout);
    assert.match(result.interfaces[0].name, /^bpt[0-9a-f]{12}$/, 'the host end, named for the network');
    assert.deepEqual(result.dns.nameservers, ['10.120.0.1']);
    const ip = result.ips[0].address.split('/')[0];
    assert.ok(await ping(await sb.netnsOf('pb'), ip), 'a berth container reaches the CNI attachment through the host');
    assert.equal((await cni('DEL')).code, 0);
    assert.ok(await eventually(async () => (await sb.inNs(netns, 'ip', ['link', 'show', 'eth0'])).code !== 0, 3000), 'DEL removed it');
  });

  test('bad input, and removal takes the anchor', async () => {
    const overlap = await sb.berth('network', 'create', '-d', 'ptp', '--subnet', '10.120.0.128/25', 'poverlap');
    assert.notEqual(overlap.code, 0);
    assert.match(overlap.stderr, /10\.120\.0\.128\/25 overlaps network pnet/);
    const unknown = await sb.berth('network', 'create', '-d', 'ptp', '--subnet', '10.123.0.0/24', '-o', 'com.docker.network.bridge.name=x', 'punknown');
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /option com\.docker\.network\.bridge\.name is unknown to the ptp driver/);
    await sb.berthOk('rm', '-f', 'pa', 'pb');
    await sb.berthOk('network', 'rm', 'pnet');
    assert.doesNotMatch((await sb.inHost('ip', ['-o', 'link'])).stdout, /bp[abt][0-9a-f]{9}/, 'no link of the network is left');
  });
});
