/**
 * Issue 16: two dockerds on two simulated hosts share one berth overlay network (berth's cluster
 * store, no Swarm): the first creates it through berth, the second adopts it by name, with
 * berth's IPAM handing out cluster-wide distinct addresses; their containers reach each other by
 * address and, through berth's resolver (docker run --dns <the overlay's gateway>), by Docker name.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { eventually, must } from '../../helpers/sandbox.js';
import { Cluster } from '../../helpers/cluster.js';
import { DOCKER_IMAGE, Dockerd } from '../../helpers/dockerd.js';

const unavailable = Dockerd.pluginsUnavailable();

describe('two dockerds on one berth overlay', { skip: unavailable }, () => {
  let c: Cluster;
  const dockerds: Dockerd[] = [];

  before(async () => {
    c = await Cluster.create({ hosts: 2, members: 1, startDaemons: false });
    for (let i = 0; i < 2; i++) {
      const pluginDir = path.join(c.hosts[i]!.root, 'plugins');
      fs.mkdirSync(pluginDir);
      const dockerDir = path.join(c.hosts[i]!.root, 'docker');
      // berth asks this host's dockerd for its containers' names (the socket need not exist yet).
      await c.startDaemon(i, ['--plugin-socket', path.join(pluginDir, 'berth.sock'), '--docker-host', `unix://${Dockerd.socketIn(dockerDir)}`, '--log-level', 'debug']);
      dockerds.push(await Dockerd.start(c.hosts[i]!.hostNs, dockerDir, { pluginDir }));
    }
  });
  after(async () => {
    for (const d of dockerds) await d.stop().catch((err) => process.stderr.write(`dockerd cleanup: ${String(err)}\n`));
    await c?.destroy();
  });

  const dockerOk = async (i: number, ...args: string[]) => must(await dockerds[i]!.docker(...args), `host ${i}: docker ${args.join(' ')}`).trim();
  const create = (i: number) => dockerOk(i, 'network', 'create', '-d', 'berth', '--ipam-driver', 'berth', '-o', 'berth.driver=overlay', '-o', 'berth.name=ov', '--subnet', '10.91.0.0/24', 'ov');
  const fetch = async (i: number, name: string, host: string) => (await dockerds[i]!.docker('exec', name, '/bin/busybox', 'nc', '-w', '2', host, '80')).stdout.trim();

  test("a cluster daemon's driver connects hosts (ConnectivityScope global); dockerd keeps the networks in its local store", async () => {
    const sock = path.join(c.hosts[0]!.root, 'plugins', 'berth.sock');
    const caps = JSON.parse(must(await c.hosts[0]!.inHost('curl', ['-s', '--unix-socket', sock, '-X', 'POST', 'http://plugin/NetworkDriver.GetCapabilities']), 'GetCapabilities'));
    assert.deepEqual(caps, { Scope: 'local', ConnectivityScope: 'global' });
    const missing = await c.hosts[0]!.inHost('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--unix-socket', sock, '-X', 'POST', 'http://plugin/NetworkDriver.AllocateNetwork']);
    assert.equal(missing.stdout, '404', 'an unimplemented method is a 404 (libnetwork: not implemented)');
  });

  test('containers of two dockerds on two hosts reach each other over the overlay', async () => {
    await create(0);
    assert.ok(await eventually(async () => (await c.hosts[1]!.berth('network', 'inspect', 'ov')).code === 0, 5000), 'host 1 learns the network');
    await create(1);
    const ips: string[] = [];
    for (let i = 0; i < 2; i++) {
      await dockerOk(i, 'run', '-d', '--name', `w${i}`, '--network', 'ov', DOCKER_IMAGE, '/bin/busybox', 'nc', '-ll', '-p', '80', '-e', '/bin/busybox', 'echo', `from-w${i}`);
      ips.push(await dockerOk(i, 'inspect', '-f', '{{.NetworkSettings.Networks.ov.IPAddress}}', `w${i}`));
    }
    assert.notEqual(ips[0], ips[1], `cluster-wide distinct addresses: ${ips}`);
    assert.ok(await eventually(async () => (await fetch(0, 'w0', ips[1]!)) === 'from-w1', 5000), `w0 (host 0) -> w1 (host 1, ${ips[1]})`);
    assert.equal(await fetch(1, 'w1', ips[0]!), 'from-w0', 'w1 -> w0');
    for (let i = 0; i < 2; i++) {
      const [net] = JSON.parse(await c.hosts[i]!.berthOk('network', 'inspect', 'ov'));
      assert.equal(net.Scope, 'global');
    }
  });

  // Docker's embedded DNS answers its own host's containers and forwards other names to the
  // container's DNS servers: with --dns the overlay's gateway, that is berth's resolver on this
  // host, which knows every host's Docker containers by the names berth learnt from their dockerd.
  test("containers reach another host's containers by Docker name and alias (--dns the overlay's gateway)", async () => {
    const dns = ['--dns', '10.91.0.1'];
    await dockerOk(0, 'run', '-d', '--name', 'n0', '--network', 'ov', ...dns, DOCKER_IMAGE, '/bin/busybox', 'nc', '-ll', '-p', '80', '-e', '/bin/busybox', 'echo', 'from-n0');
    await dockerOk(1, 'run', '-d', '--name', 'n1', '--network', 'ov', '--network-alias', 'web1', ...dns, DOCKER_IMAGE, '/bin/busybox', 'nc', '-ll', '-p', '80', '-e', '/bin/busybox', 'echo', 'from-n1');
    const n1Id = (await dockerOk(1, 'inspect', '-f', '{{.Id}}', 'n1')).slice(0, 12);
    assert.ok(await eventually(async () => (await fetch(0, 'n0', 'n1')) === 'from-n1', 10_000, 250), `n0 (host 0) -> n1 (host 1) by name\n${c.hosts[1]!.daemonLog.slice(-3000)}`);
    assert.equal(await fetch(0, 'n0', 'web1'), 'from-n1', `by its --network-alias: ${c.hosts[1]!.daemonLog.split('\n').filter((l) => l.includes('names')).join('\n')}`);
    assert.equal(await fetch(0, 'n0', n1Id), 'from-n1', "by its short id, as Docker's DNS answers it");
    assert.equal(await fetch(1, 'n1', 'n0'), 'from-n0', 'n1 -> n0 by name');
    assert.equal(await fetch(0, 'n0', 'w1'), 'from-w1', 'a container started before (w1, host 1) by name');
    // Negative, through the same path: a name no host has is not found (and nothing answers).
    const unknown = await dockerds[0]!.docker('exec', 'n0', '/bin/busybox', 'nslookup', 'nosuch-n9');
    assert.notEqual(unknown.code, 0, `an unknown name does not resolve: ${unknown.stdout}`);
    assert.equal(await fetch(0, 'n0', 'nosuch-n9'), '');
    const known = await dockerds[0]!.docker('exec', 'n0', '/bin/busybox', 'nslookup', 'n1');
    assert.equal(known.code, 0, `the positive control resolves through the same path: ${known.stdout}${known.stderr}`);
    assert.match(known.stdout, new RegExp((await dockerOk(1, 'inspect', '-f', '{{.NetworkSettings.Networks.ov.IPAddress}}', 'n1')).replace(/\./g, '\\.')));

    // An alias given later (docker network connect --alias) reaches the other host too.
    await dockerOk(1, 'run', '-d', '--name', 'n2', ...dns, DOCKER_IMAGE, '/bin/busybox', 'nc', '-ll', '-p', '80', '-e', '/bin/busybox', 'echo', 'from-n2');
    await dockerOk(1, 'network', 'connect', '--alias', 'late2', 'ov', 'n2');
    assert.ok(await eventually(async () => (await fetch(0, 'n0', 'late2')) === 'from-n2', 10_000, 250), 'n0 -> n2 by its connect --alias');
    assert.equal(await fetch(0, 'n0', 'n2'), 'from-n2', 'and by name');

    // A container that is gone is no longer found by name on the other host.
    await dockerOk(1, 'rm', '-f', 'n2');
    assert.ok(await eventually(async () => (await dockerds[0]!.docker('exec', 'n0', '/bin/busybox', 'nslookup', 'late2')).code !== 0, 10_000, 250), 'late2 is gone with n2');
  });
});
