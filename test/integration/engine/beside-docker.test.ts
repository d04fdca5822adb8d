/**
 * Issue 10 item 12: berth sharing a host with a real Docker daemon (Debian's docker.io, started in
 * the sandbox host with its own roots), which owns docker0 on 172.17.0.0/16 and sets iptables'
 * FORWARD policy to DROP. berth's default bridge picks a free subnet; containers of both engines
 * reach the "internet" namespace; a LAN peer reaches both engines' published ports; each engine's
 * isolation holds; and a Docker restart or a removed rule does not break berth.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { BUSYBOX, Sandbox, eventually, must, run, type Peer } from '../../helpers/sandbox.js';
import { DOCKER_IMAGE, Dockerd } from '../../helpers/dockerd.js';

const unavailable = Dockerd.unavailable();

describe('berth beside a real Docker daemon', { skip: unavailable }, () => {
  let sb: Sandbox;
  let lan: Peer;
  let internet: Peer;
  let dockerd: Dockerd;
  let dockerIp: string;
  let berthIp: string;

  before(async () => {
    sb = await Sandbox.create('dk', { startDaemon: false });
    lan = await sb.addPeer('l', '10.218.0');
    internet = await sb.addPeer('i', '10.219.0');
    // The "internet" knows no container subnet: only masqueraded traffic gets answers.
    must(await run('ip', ['-n', internet.name, 'route', 'del', 'default']), 'no default route');
    sb.spawnIn(internet.nsPath, BUSYBOX, ['nc', '-ll', '-p', '80', '-e', '/bin/echo', 'internet']);
    dockerd = await Dockerd.start(sb.hostNs, path.join(sb.root, 'docker'));
    const dockerRun = (name: string, publish: string[], reply: string) =>
      dockerd.docker('run', '-d', '--restart', 'always', '--name', name, ...publish, DOCKER_IMAGE, '/bin/busybox', 'nc', '-ll', '-p', '80', '-e', '/bin/busybox', 'echo', reply);
    must(await dockerRun('dweb', ['-p', '8800:80'], 'docker-web'), 'docker run dweb');
    // Docker itself lets anyone reach a published container port at the container's address, so
    // isolation is checked against a container that publishes nothing.
    must(await dockerRun('dpriv', [], 'docker-private'), 'docker run dpriv');
    dockerIp = (await dockerd.docker('inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'dpriv')).stdout.trim();
    assert.match((await sb.inHost('iptables', ['-S', 'FORWARD'])).stdout, /-P FORWARD DROP/, "Docker's FORWARD policy is DROP");
    await sb.startDaemon();
    await sb.berthOk('network', 'create', 'bnet');
    await sb.berthOk('run', '-d', '--name', 'bweb', '--network', 'bnet', '-p', '8801:80', '--', BUSYBOX, 'nc', '-ll', '-p', '80', '-e', '/bin/echo', 'berth-web');
    await sb.berthOk('run', '-d', '--name', 'bcli', '--network', 'bnet', '--', BUSYBOX, 'sleep', '3600');
    berthIp = (await sb.inspect('bweb')).NetworkSettings.Networks.bnet!.IPAddress;
  });
  after(async () => {
    await dockerd?.stop().catch((err) => process.stderr.write(`dockerd cleanup: ${String(err)}\n`));
    await sb?.destroy();
  });

  const nc = (ns: string, host: string, port: number) => sb.inNs(ns, BUSYBOX, ['nc', '-w', '2', host, String(port)]).then((r) => r.stdout.trim());
  const fromDocker = async (host: string, port: number) => (await dockerd.docker('exec', 'dweb', '/bin/busybox', 'nc', '-w', '2', host, String(port))).stdout.trim();

  test("berth's default bridge does not take docker0's subnet, and its containers get out", async () => {
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'bridge'));
    const subnet = net.IPAM.Config[0].Subnet as string;
    assert.notEqual(subnet, '172.17.0.0/16');
    assert.match((await sb.inHost('ip', ['-br', 'addr', 'show', 'docker0'])).stdout, /172\.17\.0\.1\/16/, 'docker0 keeps its address');
    await sb.berthOk('run', '-d', '--name', 'bdef', '--', BUSYBOX, 'sleep', '3600');
    assert.ok(!(await sb.inspect('bdef')).NetworkSettings.IPAddress.startsWith('172.17.'));
    assert.equal(await nc(await sb.netnsOf('bdef'), internet.address, 80), 'internet');
  });

  test('containers of both engines reach the internet', async () => {
    assert.equal(await nc(await sb.netnsOf('bcli'), internet.address, 80), 'internet', 'a berth container');
    assert.equal(await fromDocker(internet.address, 80), 'internet', 'a Docker container');
  });

  test("a LAN peer reaches both engines' published ports", async () => {
    assert.ok(await eventually(async () => (await nc(lan.nsPath, lan.hostAddress, 8800)) === 'docker-web', 5000), "Docker's port");
    assert.equal(await nc(lan.nsPath, lan.hostAddress, 8801), 'berth-web', "berth's port");
  });

  test("each engine's isolation holds: no container reaches the other engine's containers directly", async () => {
    // Positive controls through the same paths: each reaches its own engine's container.
    assert.equal(await nc(await sb.netnsOf('bcli'), berthIp, 80), 'berth-web');
    assert.equal(await fromDocker(dockerIp, 80), 'docker-private');
    assert.equal(await nc(await sb.netnsOf('bcli'), dockerIp, 80), '', 'berth container -> Docker container address');
    assert.equal(await fromDocker(berthIp, 80), '', 'Docker container -> berth container address');
  });

  test("a Docker restart, or someone deleting berth's DOCKER-USER rule, leaves berth working", async () => {
    await dockerd.restart();
    assert.ok(await eventually(async () => (await nc(await sb.netnsOf('bcli'), internet.address, 80)) === 'internet', 5000), 'after a Docker restart');
    const rules = (await sb.inHost('iptables', ['-S', 'DOCKER-USER'])).stdout;
    const ours = rules.split('\n').find((l) => l.includes('berth'));
    assert.ok(ours, rules);
    must(await sb.inHost('iptables', ['-D', ...ours.replace(/^-A /, '').match(/"[^"]*"|\S+/g)!.map((w) => w.replace(/^"|"$/g, ''))]), 'delete our rule');
    assert.ok(await eventually(async () => (await sb.inHost('iptables', ['-S', 'DOCKER-USER'])).stdout.includes('berth'), 3000), 'the rule comes back');
    assert.equal(await nc(lan.nsPath, lan.hostAddress, 8801), 'berth-web');
    // Docker starts its restart=always container again only after its own start: under CI load that
    // took longer than 5 s once, so the wait is generous and a failure shows Docker's own view.
    const dockerBack = await eventually(async () => (await nc(lan.nsPath, lan.hostAddress, 8800)) === 'docker-web', 30_000);
    assert.ok(dockerBack, `Docker's port after its restart; docker ps: ${(await dockerd.docker('ps', '-a')).stdout}\nnat: ${(await sb.inHost('iptables', ['-t', 'nat', '-S'])).stdout}`);
  });
});
