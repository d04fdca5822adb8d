/**
 * The stock `docker` CLI against a sandbox berth daemon (DOCKER_HOST=unix://…): every network
 * command berth serves, with the CLI's own output and exit codes, including its error cases.
 * Uses Debian's client (package docker.io, /usr/bin/docker) when installed, else
 * /usr/local/bin/docker; BERTH_TEST_DOCKER picks another. Installs nothing; skips without a client.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUSYBOX, Sandbox, run, type Result } from '../helpers/sandbox.js';

const CANDIDATES = [process.env.BERTH_TEST_DOCKER, '/usr/bin/docker', '/usr/local/bin/docker'].filter((p): p is string => Boolean(p));
const DOCKER = CANDIDATES.find((p) => fs.existsSync(p));

const HEX64 = /^[0-9a-f]{64}$/;
const HEX12 = /^[0-9a-f]{12}$/;

interface Inspected {
  Id: string;
  Name: string;
  Internal: boolean;
  IPAM: { Config: { Subnet: string; Gateway?: string; IPRange?: string }[] };
  Containers: Record<string, { Name: string; IPv4Address: string; MacAddress: string }>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

describe(`docker CLI (${DOCKER ?? 'not installed'}) against berth`, { skip: DOCKER ? false : 'no docker client: apt-get install docker.io' }, () => {
  let sb: Sandbox;
  let config: string;
  let env: NodeJS.ProcessEnv;

  const docker = (...args: string[]): Promise<Result> => run(DOCKER!, args, { env, timeoutMs: 30_000 });
  const dockerOk = async (...args: string[]): Promise<string> => {
    const r = await docker(...args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** A command the CLI must refuse: exit 1 and `pattern` on stderr. */
  const dockerFails = async (pattern: RegExp, ...args: string[]): Promise<void> => {
    const r = await docker(...args);
    assert.equal(r.code, 1, `docker ${args.join(' ')} should exit 1: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, pattern);
  };
  const inspect = async (name: string) => (JSON.parse(await dockerOk('network', 'inspect', name)) as Inspected[])[0]!;
  const lines = (s: string) => s.split('\n').filter(Boolean);

  before(async () => {
    sb = await Sandbox.create('dk');
    config = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-docker-config-'));
    // Only DOCKER_HOST decides where the CLI goes: no contexts, config or API pin from the caller.
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DOCKER_')));
    Object.assign(env, { DOCKER_HOST: `unix://${sb.socket}`, DOCKER_CONFIG: config });
  });
  after(async () => {
    await sb?.destroy();
    if (config) fs.rmSync(config, { recursive: true, force: true });
  });

  test('docker version shows berth as the server, API 1.41', async () => {
    const out = await dockerOk('version');
    assert.match(out, /^Server: berth$/m);
    assert.match(out, /^ Engine:\n {2}Version: +0\.1\.0$/m);
    assert.match(out, /^ {2}API version: +1\.41 \(minimum version 1\.12\)$/m);
    assert.match(out, /^ {2}OS\/Arch: +linux\/\w+$/m);
    assert.match(await dockerOk('version', '--format', '{{.Server.APIVersion}}'), /^1\.41$/m);
  });

  test('docker network ls lists the predefined networks in Docker\'s table', async () => {
    const rows = lines(await dockerOk('network', 'ls'));
    assert.match(rows[0]!, /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
    const table = rows.slice(1).map((r) => r.split(/\s+/));
    assert.deepEqual(table.map((r) => [r[1], r[2], r[3]]).sort(), [
      ['bridge', 'bridge', 'local'],
      ['host', 'host', 'local'],
      ['none', 'null', 'local'],
    ]);
    for (const r of table) assert.match(r[0]!, HEX12);
  });

  test('docker network create with --subnet --gateway --ip-range --internal --label -o', async () => {
    const id = (await dockerOk('network', 'create', '--subnet', '10.0.0.0/24', '--gateway', '10.0.0.254', '--ip-range', '10.0.0.128/25', '--internal', '--label', 'a=b', '--label', 'tier=x', '-o', 'com.docker.network.driver.mtu=1400', 'dnet')).trim();
    assert.match(id, HEX64);
    const net = await inspect('dnet');
    assert.equal(net.Id, id);
    assert.equal(net.Internal, true);
    assert.deepEqual(net.IPAM.Config, [{ Subnet: '10.0.0.0/24', IPRange: '10.0.0.128/25', Gateway: '10.0.0.254' }]);
    assert.deepEqual(net.Labels, { a: 'b', tier: 'x' });
    assert.deepEqual(net.Options, { 'com.docker.network.driver.mtu': '1400' });
    assert.match((await dockerOk('network', 'create', 'other')).trim(), HEX64);
  });

  test('docker network create refuses a taken name', async () => {
    await dockerFails(/^Error response from daemon: network with name dnet already exists$/m, 'network', 'create', 'dnet');
  });

  test('docker network ls --filter name=… / label=… and -q', async () => {
    const dnet = await inspect('dnet');
    assert.deepEqual(lines(await dockerOk('network', 'ls', '--filter', 'name=dnet', '-q')), [dnet.Id.slice(0, 12)]);
    assert.deepEqual(lines(await dockerOk('network', 'ls', '--filter', 'name=dnet', '-q', '--no-trunc')), [dnet.Id]);
    assert.deepEqual(lines(await dockerOk('network', 'ls', '--filter', 'label=a=b', '-q')), [dnet.Id.slice(0, 12)]);
    assert.deepEqual(lines(await dockerOk('network', 'ls', '--filter', 'label=a', '--format', '{{.Name}}')), ['dnet']);
    assert.deepEqual(lines(await dockerOk('network', 'ls', '--filter', 'label=a=nope', '-q')), []);
    const named = lines(await dockerOk('network', 'ls', '--filter', 'name=dnet'));
    assert.equal(named.length, 2, 'header and one row');
    assert.match(named[1]!, /^[0-9a-f]{12}\s+dnet\s+bridge\s+local$/);
    await dockerFails(/invalid filter 'bogus'/, 'network', 'ls', '--filter', 'bogus=1');
  });

  test('docker network inspect, and an unknown network', async () => {
    const out = JSON.parse(await dockerOk('network', 'inspect', 'dnet', 'bridge')) as Inspected[];
    assert.deepEqual(out.map((n) => n.Name), ['dnet', 'bridge']);
    assert.equal(await dockerOk('network', 'inspect', '--format', '{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}}', 'dnet'), 'dnet bridge local true\n');
    await dockerFails(/No such network: nosuch|network nosuch not found/, 'network', 'inspect', 'nosuch');
  });

  test('docker network connect --ip --alias to a container started with berth run -d', async () => {
    await sb.berthOk('run', '-d', '--name', 'c1', '--', BUSYBOX, 'sleep', '3600');
    assert.equal(await dockerOk('network', 'connect', '--ip', '10.0.0.130', '--alias', 'foo', '--alias', 'bar', 'dnet', 'c1'), '');
    const c1 = await sb.inspect('c1');
    const ep = c1.NetworkSettings.Networks.dnet!;
    assert.equal(ep.IPAddress, '10.0.0.130');
    assert.deepEqual(['bar', 'foo'].filter((a) => ep.Aliases.includes(a)), ['bar', 'foo']);
    const net = await inspect('dnet');
    assert.equal(net.Containers[c1.Id]!.Name, 'c1');
    assert.equal(net.Containers[c1.Id]!.IPv4Address, '10.0.0.130/24');
    const eth1 = await sb.inNs(c1.NetworkSettings.SandboxKey, 'ip', ['-o', '-4', 'addr', 'show', 'eth1']);
    assert.match(eth1.stdout, /inet 10\.0\.0\.130\/24/, 'the address is really on eth1 in the container');
  });

  test('docker network create --ipv6 --subnet (both families), and connect --ip6', async () => {
    await dockerOk('network', 'create', '--ipv6', '--subnet', '10.0.6.0/24', '--subnet', 'fd06::/64', 'dnet6');
    const net = (JSON.parse(await dockerOk('network', 'inspect', 'dnet6')) as (Inspected & { EnableIPv6: boolean })[])[0]!;
    assert.equal(net.EnableIPv6, true);
    assert.deepEqual(net.IPAM.Config.map((c) => c.Subnet), ['10.0.6.0/24', 'fd06::/64']);
    await sb.berthOk('run', '-d', '--name', 'c6', '--', BUSYBOX, 'sleep', '3600');
    assert.equal(await dockerOk('network', 'connect', '--ip6', 'fd06::66', 'dnet6', 'c6'), '');
    const c6 = await sb.inspect('c6');
    const eth1 = await sb.inNs(c6.NetworkSettings.SandboxKey, 'ip', ['-o', '-6', 'addr', 'show', 'eth1']);
    assert.match(eth1.stdout, /inet6 fd06::66\/64/, 'the IPv6 address is on eth1 in the container');
    assert.match(await dockerOk('network', 'inspect', '--format', '{{range .Containers}}{{.IPv6Address}}{{end}}', 'dnet6'), /^fd06::66\/64$/m);
    await sb.berthOk('rm', '-f', 'c6');
    await dockerOk('network', 'rm', 'dnet6');
  });

  test('docker network connect errors: twice, unknown network, unknown container, host network', async () => {
    await dockerFails(/^Error response from daemon: endpoint with name c1 already exists in network dnet/m, 'network', 'connect', 'dnet', 'c1');
    await dockerFails(/^Error response from daemon: network nosuch not found/m, 'network', 'connect', 'nosuch', 'c1');
    await dockerFails(/^Error response from daemon: No such container: nosuch$/m, 'network', 'connect', 'dnet', 'nosuch');
    await dockerFails(/^Error response from daemon: container cannot be disconnected from host network or connected to host network$/m, 'network', 'connect', 'host', 'c1');
  });

  test('docker network rm refuses a network with active endpoints, and bridge', async () => {
    const dnet = await inspect('dnet');
    await dockerFails(new RegExp(`^Error response from daemon: error while removing network: network dnet id ${dnet.Id} has active endpoints`, 'm'), 'network', 'rm', 'dnet');
    await dockerFails(/^Error response from daemon: bridge is a pre-defined network and cannot be removed$/m, 'network', 'rm', 'bridge');
    await dockerFails(/^Error response from daemon: host is a pre-defined network and cannot be removed$/m, 'network', 'rm', 'host');
    await dockerFails(/No such network: nosuch|network nosuch not found/, 'network', 'rm', 'nosuch');
    assert.equal((await inspect('dnet')).Id, dnet.Id, 'still there');
  });

  test('docker network disconnect, and disconnecting again', async () => {
    assert.equal(await dockerOk('network', 'disconnect', 'dnet', 'c1'), '');
    const c1 = await sb.inspect('c1');
    assert.equal(c1.NetworkSettings.Networks.dnet, undefined);
    assert.deepEqual((await inspect('dnet')).Containers, {});
    await dockerFails(new RegExp(`^Error response from daemon: container ${c1.Id} is not connected to network dnet$`, 'm'), 'network', 'disconnect', 'dnet', 'c1');
    assert.equal((await docker('network', 'disconnect', '--force', 'dnet', 'c1')).code, 0, '--force: not connected is fine');
    await dockerFails(/^Error response from daemon: No such container: nosuch$/m, 'network', 'disconnect', 'bridge', 'nosuch');
  });

  test('docker network rm removes networks and prints their names', async () => {
    assert.equal(await dockerOk('network', 'rm', 'dnet', 'other'), 'dnet\nother\n');
    await dockerFails(/No such network: dnet|network dnet not found/, 'network', 'inspect', 'dnet');
  });

  test('docker network prune -f, with and without a label filter', async () => {
    for (const [name, label] of [['p1', 'tier=x'], ['p2', 'tier=y'], ['p3', 'keep=yes']]) await dockerOk('network', 'create', '--label', label!, name!);
    await dockerOk('network', 'create', 'pused');
    await dockerOk('network', 'connect', 'pused', 'c1');
    assert.equal(await dockerOk('network', 'prune', '-f', '--filter', 'label=tier=x'), 'Deleted Networks:\np1\n\n');
    assert.equal(await dockerOk('network', 'prune', '-f', '--filter', 'label!=keep=yes'), 'Deleted Networks:\np2\n\n');
    assert.equal(await dockerOk('network', 'prune', '-f'), 'Deleted Networks:\np3\n\n');
    assert.equal(await dockerOk('network', 'prune', '-f'), '', 'nothing left to prune: pused is in use');
    assert.deepEqual(lines(await dockerOk('network', 'ls', '--format', '{{.Name}}')).sort(), ['bridge', 'host', 'none', 'pused']);
  });
});
