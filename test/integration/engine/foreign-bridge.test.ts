/**
 * Issue 10 item 2: a bridge of the host (here one carrying the sandbox host's LAN) is never taken
 * over, re-addressed, re-aliased or deleted by berth: `-o com.docker.network.bridge.name=` naming it
 * is refused with a clear error, and when a host bridge takes the name of a berth bridge that was
 * deleted, neither the reconciler, nor a container start, nor `network rm` touches it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, must } from '../../helpers/sandbox.js';

interface LinkJson {
  ifname: string;
  address: string;
  ifalias?: string;
  master?: string;
  flags: string[];
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

describe('a host bridge is never berth’s', () => {
  let sb: Sandbox;
  let lanNs: string;

  /** A bridge of the host with an address and a LAN peer behind one of its ports. */
  async function hostBridge(name: string, prefix3: string, tag: string): Promise<string> {
    const ns = await sb.makeNetns(tag);
    const port = `${tag}p0`;
    must(await sb.inHost('ip', ['link', 'add', name, 'type', 'bridge']), 'host bridge');
    must(await sb.inHost('ip', ['addr', 'add', `${prefix3}.1/24`, 'dev', name]), 'bridge address');
    must(await sb.inHost('ip', ['link', 'set', name, 'up']), 'bridge up');
    must(await sb.inHost('ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.split('/').pop()!]), 'LAN veth');
    must(await sb.inHost('ip', ['link', 'set', port, 'master', name, 'up']), 'LAN port');
    must(await sb.inNs(ns, 'ip', ['addr', 'add', `${prefix3}.2/24`, 'dev', 'eth0']), 'LAN peer address');
    must(await sb.inNs(ns, 'ip', ['link', 'set', 'eth0', 'up']), 'LAN peer up');
    return ns;
  }

  /** `ip addr` has the addresses, `ip link` the alias. */
  const link = async (name: string): Promise<LinkJson> => ({
    ...JSON.parse(must(await sb.inHost('ip', ['-j', 'addr', 'show', 'dev', name]), `ip addr show ${name}`))[0],
    ...JSON.parse(must(await sb.inHost('ip', ['-j', 'link', 'show', 'dev', name]), `ip link show ${name}`))[0],
  });
  const portOf = async (port: string): Promise<LinkJson> => JSON.parse(must(await sb.inHost('ip', ['-j', 'link', 'show', 'dev', port]), 'port'))[0];
  const lanAnswers = async (ip: string) => (await sb.inHost(BUSYBOX, ['ping', '-c', '1', '-W', '2', ip])).code === 0;
  const ipv4Of = (l: LinkJson) => (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);

  before(async () => {
    sb = await Sandbox.create('b');
    lanNs = await hostBridge('lanbr0', '10.206.0', 'lan');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('-o com.docker.network.bridge.name=<host bridge> is refused, and the bridge and its LAN are untouched', async () => {
    assert.ok(await lanAnswers('10.206.0.2'), 'the LAN peer answers through the host bridge before');
    const before = await link('lanbr0');
    const r = await sb.berth('network', 'create', '-o', 'com.docker.network.bridge.name=lanbr0', 'hijack');
    assert.notEqual(r.code, 0, 'refused');
    assert.match(r.stderr, /bridge lanbr0 already exists/);
    assert.match(r.stderr, /choose another name/);
    const afterwards = await link('lanbr0');
    assert.deepEqual(ipv4Of(afterwards), ['10.206.0.1/24'], 'no address added or removed');
    assert.equal(afterwards.address, before.address, 'same MAC');
    assert.equal(afterwards.ifalias, undefined, 'no berth alias');
    assert.ok(afterwards.flags.includes('UP'));
    assert.equal((await portOf('lanp0')).master, 'lanbr0', 'the LAN port is still on it');
    assert.equal((await sb.inHost('cat', ['/proc/sys/net/ipv4/conf/lanbr0/route_localnet'])).stdout.trim(), '0', 'no sysctl changed');
    assert.doesNotMatch(await sb.berthOk('network', 'ls'), /hijack/, 'nothing half-made');
    assert.ok(await lanAnswers('10.206.0.2'), 'the LAN peer still answers');
    assert.equal((await sb.inNs(lanNs, 'ip', ['-br', 'link', 'show', 'eth0'])).code, 0);
  });

  test('a host bridge that took the name of a deleted berth bridge survives reconcile, restart, container start and network rm', async () => {
    await sb.berthOk('network', 'create', '--subnet', '10.151.0.0/24', '-o', 'com.docker.network.bridge.name=minebr', 'mine');
    assert.match((await link('minebr')).ifalias ?? '', /^berth:[0-9a-f]+:network:/, 'berth made and marked its own bridge');
    must(await sb.inHost('ip', ['link', 'del', 'minebr']), 'someone deletes the berth bridge');
    await hostBridge('minebr', '10.207.0', 'own');
    const before = await link('minebr');

    const report = JSON.parse(await sb.berthOk('system', 'reconcile'));
    assert.deepEqual(report.bridgesUnrestorable, ['minebr'], JSON.stringify(report));
    await sb.stopDaemon();
    await sb.startDaemon();
    const run = await sb.berth('run', '-d', '--name', 'intruder', '--network', 'mine', '--', BUSYBOX, 'sleep', '60');
    assert.notEqual(run.code, 0, 'no container is plugged into the host bridge');
    assert.match(run.stderr, /minebr already exists on the host and berth did not create it/);
    await sb.berthOk('network', 'rm', 'mine');

    const afterwards = await link('minebr');
    assert.deepEqual(ipv4Of(afterwards), ['10.207.0.1/24']);
    assert.equal(afterwards.address, before.address);
    assert.equal(afterwards.ifalias, undefined);
    assert.equal((await portOf('ownp0')).master, 'minebr');
    assert.ok(await lanAnswers('10.207.0.2'), 'its LAN peer still answers');
  });

  test('network rm deletes a bridge berth made (positive control)', async () => {
    await sb.berthOk('network', 'create', '-o', 'com.docker.network.bridge.name=gonebr', 'gone');
    assert.equal((await sb.inHost('ip', ['link', 'show', 'gonebr'])).code, 0);
    await sb.berthOk('network', 'rm', 'gone');
    assert.notEqual((await sb.inHost('ip', ['link', 'show', 'gonebr'])).code, 0, 'gone with its network');
  });
});
