/**
 * Issue 16: two dockerds on two simulated hosts share one berth overlay network (berth's cluster
 * store, no Swarm): the first creates it through berth, the second adopts it by name, with
 * berth's IPAM handing out cluster-wide distinct addresses; their containers reach each other.
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
      await c.startDaemon(i, ['--plugin-socket', path.join(pluginDir, 'berth.sock'), '--log-level', 'debug']);
      dockerds.push(await Dockerd.start(c.hosts[i]!.hostNs, path.join(c.hosts[i]!.root, 'docker'), { pluginDir }));
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
});
