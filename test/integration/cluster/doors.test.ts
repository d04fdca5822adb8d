/**
 * Issue 12, doors: the stock docker CLI creates, lists and inspects overlay networks on a berth
 * cluster host; the CNI plugin attaches runtime-made namespaces on two hosts to one overlay, and
 * they reach each other; DEL takes the endpoint out of the cluster.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUSYBOX, eventually, must, run, type Sandbox } from '../../helpers/sandbox.js';
import { runCni } from '../../helpers/cni.js';
import { Cluster } from '../../helpers/cluster.js';

const DOCKER = ['/usr/bin/docker', '/usr/local/bin/docker'].find((p) => fs.existsSync(p));

describe('cluster doors: docker CLI and CNI', () => {
  let c: Cluster;
  let config: string;
  before(async () => {
    c = await Cluster.create({ hosts: 2, members: 1 });
    config = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-docker-config-'));
  });
  after(async () => {
    await c?.destroy();
    if (config) fs.rmSync(config, { recursive: true, force: true });
  });

  const docker = (sb: Sandbox, ...args: string[]) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DOCKER_')));
    return run(DOCKER!, args, { env: { ...env, DOCKER_HOST: `unix://${sb.socket}`, DOCKER_CONFIG: config }, timeoutMs: 30_000 });
  };

  test('docker network create -d overlay on one host; every host lists and inspects it as global', { skip: DOCKER ? false : 'no docker client: apt-get install docker.io' }, async () => {
    const made = await docker(c.hosts[0]!, 'network', 'create', '-d', 'overlay', '--attachable', '--subnet', '10.96.0.0/24', 'dk-ov');
    assert.equal(made.code, 0, made.stderr);
    for (const h of c.hosts) {
      assert.ok(await eventually(async () => (await docker(h, 'network', 'ls', '--filter', 'driver=overlay', '--format', '{{.Name}} {{.Driver}} {{.Scope}}')).stdout.includes('dk-ov overlay global'), 5000), `${h.name} lists it`);
      const [net] = JSON.parse(must(await docker(h, 'network', 'inspect', 'dk-ov'), 'inspect'));
      assert.equal(net.Scope, 'global');
      assert.equal(net.Attachable, true);
      assert.equal(net.IPAM.Config[0].Subnet, '10.96.0.0/24');
    }
    // A bridge network cannot be attachable: Docker's flag means a swarm-scoped network there.
    const refused = await docker(c.hosts[0]!, 'network', 'create', '--attachable', 'dk-br');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /only overlay networks are attachable/);
  });

  test('the CNI plugin attaches namespaces on two hosts to one overlay; they reach each other; DEL withdraws', async () => {
    await c.hosts[0]!.berthOk('network', 'create', '-d', 'overlay', '--subnet', '10.97.0.0/24', 'cni-ov');
    assert.ok(await eventually(async () => (await c.hosts[1]!.berth('network', 'inspect', 'cni-ov')).code === 0, 5000));
    const cni = (i: number, command: string, containerId: string, netns: string) =>
      runCni(c.hosts[i]!, { command, containerId, netns, config: { cniVersion: '1.0.0', name: 'cni-ov', type: 'berth', host: `unix://${c.hosts[i]!.socket}` } });
    const ns = [await c.hosts[0]!.makeNetns('rt0'), await c.hosts[1]!.makeNetns('rt1')];
    const ips: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await cni(i, 'ADD', `runtime-${i}`, ns[i]!);
      assert.equal(r.code, 0, r.raw);
      ips.push((JSON.parse(r.raw).ips[0].address as string).split('/')[0]!);
    }
    assert.notEqual(ips[0], ips[1]);
    assert.ok(await eventually(async () => (await c.hosts[0]!.inNs(ns[0]!, BUSYBOX, ['ping', '-c', '1', '-W', '1', ips[1]!])).code === 0, 5000), 'runtime container on host 0 reaches the one on host 1');
    assert.match(must(await c.hosts[0]!.inNs(ns[0]!, 'ip', ['-o', 'link', 'show', 'eth0']), 'link'), / mtu 1450 /);
    const del = await cni(1, 'DEL', 'runtime-1', ns[1]!);
    assert.equal(del.code, 0, del.raw);
    assert.ok(await eventually(async () => !(await c.etcdList('/berth/v1/endpoints/')).some((kv) => kv.value.includes(ips[1]!)), 3000), 'DEL withdrew the endpoint');
    assert.ok(!(await c.etcdList('/berth/v1/ipam/')).some((kv) => kv.key.endsWith(`/${ips[1]}`)), 'and freed its address');
    assert.equal((await cni(0, 'DEL', 'runtime-0', ns[0]!)).code, 0);
  });
});
