/**
 * Drift: someone deletes a berth bridge and runs `nft flush ruleset` in the host namespace (the
 * netavark#1258 complaint), flushes one of berth's chains and maps, or leaks a berth veth. Both
 * repair paths, `berth system reconcile` and the periodic reconcile (no command at all), must
 * bring back everything the rules and the bridge gave, not just one port: published ports with
 * the client's real address, isolation between networks, icc=false, masquerade, container names
 * on the network's resolver, and the user's chain (kept when berth's own chains are rewritten).
 * Every negative check has a positive control through the same path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { BUSYBOX, Sandbox, eventually, must, run, type Peer } from '../../helpers/sandbox.js';
import { digA, httpGet, webRoot } from '../../helpers/net-probes.js';

/** The daemon reconciles every 60 s from its start; the periodic test allows that plus slack. */
const PERIODIC_DEADLINE_MS = 80_000;

/** A sandbox with three networks, a LAN peer and an "internet" peer that knows no container subnet. */
interface World {
  sb: Sandbox;
  lan: Peer;
  internet: Peer;
  startedAt: number;
  ip: Record<'web' | 'a1', string>;
  gw: Record<'app' | 'noicc', string>;
  ns: Record<'cli' | 'outsider' | 'a2', string>;
  bridge: (network: string) => Promise<string>;
}

async function buildWorld(tag: string): Promise<World> {
  const sb = await Sandbox.create(tag);
  const startedAt = Date.now();
  try {
    const lan = await sb.addPeer('l', '10.205.0');
    const internet = await sb.addPeer('i', '10.206.0');
    must(await run('ip', ['-n', internet.name, 'route', 'del', 'default']), 'internet: no route back');
    sb.spawnIn(internet.nsPath, BUSYBOX, ['httpd', '-f', '-p', '80', '-h', webRoot(path.join(sb.root, 'inet-www'), 'internet')]);
    await sb.berthOk('network', 'create', '--subnet', '10.150.0.0/24', 'app');
    await sb.berthOk('network', 'create', '--subnet', '10.151.0.0/24', 'other');
    await sb.berthOk('network', 'create', '--subnet', '10.152.0.0/24', '-o', 'com.docker.network.bridge.enable_icc=false', 'noicc');
    const www = webRoot(path.join(sb.root, 'www'), 'still-here');
    const httpd = ['--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', www];
    await sb.berthOk('run', '-d', '--name', 'web', '--network', 'app', '-p', '8300:80', ...httpd);
    await sb.berthOk('run', '-d', '--name', 'cli', '--network', 'app', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'outsider', '--network', 'other', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'a1', '--network', 'noicc', '-p', '8301:80', ...httpd);
    await sb.berthOk('run', '-d', '--name', 'a2', '--network', 'noicc', '--', BUSYBOX, 'sleep', '3600');
    const ipOf = async (c: string, net: string) => (await sb.inspect(c)).NetworkSettings.Networks[net]!.IPAddress;
    const gwOf = async (net: string) => JSON.parse(await sb.berthOk('network', 'inspect', net))[0].IPAM.Config[0].Gateway as string;
    return {
      sb, lan, internet, startedAt,
      ip: { web: await ipOf('web', 'app'), a1: await ipOf('a1', 'noicc') },
      gw: { app: await gwOf('app'), noicc: await gwOf('noicc') },
      ns: { cli: await sb.netnsOf('cli'), outsider: await sb.netnsOf('outsider'), a2: await sb.netnsOf('a2') },
      bridge: async (network) => {
        const [net] = JSON.parse(await sb.berthOk('network', 'inspect', network));
        return (net.Options['com.docker.network.bridge.name'] as string | undefined) ?? `berth-${(net.Id as string).slice(0, 9)}`;
      },
    };
  } catch (err) {
    await sb.destroy();
    throw err;
  }
}

/** The LAN peer's connection to the published port, as the container saw it. */
const publishedFromLan = (w: World, port = 8300) => httpGet(w.sb, w.lan.nsPath, `http://${w.lan.hostAddress}:${port}/cgi-bin/ip`);

/** Every property the bridge and the ruleset give, each negative with its positive control. */
async function checkEverything(w: World): Promise<void> {
  const { sb, lan, internet } = w;
  // Published port, DNAT only: the container sees the LAN peer's own address. Allow the kernel a
  // moment for re-attached ports to forward and for ARP.
  assert.ok(await eventually(async () => (await publishedFromLan(w)).stdout === lan.address, 5000), `published port from the LAN: ${JSON.stringify(await publishedFromLan(w))}`);

  // Isolation between networks.
  assert.equal((await httpGet(sb, w.ns.cli, `http://${w.ip.web}/`)).stdout, 'still-here', 'control: same network reaches web');
  assert.notEqual((await httpGet(sb, w.ns.outsider, `http://${w.ip.web}/`)).code, 0, 'another network does not reach web');

  // icc=false: the gateway and the LAN are fine, the neighbour is not.
  assert.equal((await sb.inNs(w.ns.a2, BUSYBOX, ['ping', '-c', '1', '-W', '2', w.gw.noicc])).code, 0, 'control: a2 reaches its gateway');
  assert.equal((await publishedFromLan(w, 8301)).stdout, lan.address, "control: a1's published port from the LAN");
  assert.notEqual((await httpGet(sb, w.ns.a2, `http://${w.ip.a1}/`)).code, 0, 'icc=false: a2 does not reach a1');

  // Masquerade: the internet peer has no route to 10.150/24, so only a masqueraded request is answered.
  assert.equal((await httpGet(sb, w.ns.cli, `http://${internet.address}/cgi-bin/ip`)).stdout, internet.hostAddress, 'masqueraded to the host address');

  // The network's resolver knows the container names again.
  const dns = await digA(sb, w.ns.cli, w.gw.app, 'web');
  assert.deepEqual(dns.answers, [w.ip.web], `web resolves on app's resolver (${dns.status})`);

  // The user's chain is in place and judges forwarded traffic first.
  const rule = ['ip', 'berth', 'user-forward', 'ip', 'saddr', lan.address, 'meta', 'l4proto', 'tcp', 'ct', 'original', 'proto-dst', '8300', 'drop'];
  must(await sb.inHost('nft', ['add', 'rule', ...rule]), 'a user rule');
  try {
    assert.notEqual((await publishedFromLan(w)).stdout, lan.address, 'the user rule drops the LAN peer');
    assert.equal((await publishedFromLan(w, 8301)).stdout, lan.address, 'control: the user rule drops only what it says');
  } finally {
    must(await sb.inHost('nft', ['flush', 'chain', 'ip', 'berth', 'user-forward']), 'remove the user rule');
  }
}

/** `ip berth`'s rules with their handles: a rewrite gives every rule a new handle. */
async function ruleHandles(w: World): Promise<string> {
  // Empty while the table is gone.
  return (await w.sb.inHost('nft', ['-a', 'list', 'table', 'ip', 'berth'])).stdout.split('\n').filter((l) => /# handle \d+/.test(l) && !/^\s*(chain|set|map|table)\b/.test(l)).map((l) => l.replace(/counter packets \d+ bytes \d+/, 'counter')).join('\n');
}

describe('drift repair', () => {
  let manual: World;
  let periodic: World;
  let periodicRulesBefore = '';
  before(async () => {
    // Built and damaged first, so the periodic reconcile's 60 s run while the manual tests do.
    periodic = await buildWorld('q');
    assert.ok(await eventually(async () => (await publishedFromLan(periodic)).stdout === periodic.lan.address, 5000), 'works before the damage');
    must(await periodic.sb.inHost('ip', ['link', 'del', await periodic.bridge('app')]), 'delete the bridge');
    must(await periodic.sb.inHost('nft', ['flush', 'ruleset']), 'flush the ruleset');
    must(await periodic.sb.inHost('ip', ['link', 'add', 'bv0123456789ab', 'type', 'veth', 'peer', 'name', 'leak-peer']), 'a leaked berth veth');
    // The flush is seen at once: the watch rewrites the rules (the bridge waits for a reconcile).
    assert.ok(await eventually(async () => /# handle \d+/.test(await ruleHandles(periodic)), 5000), 'the watch restored the rules');
    periodicRulesBefore = await ruleHandles(periodic);
    manual = await buildWorld('r');
  });
  after(async () => {
    await Promise.all([manual?.sb.destroy(), periodic?.sb.destroy()]);
  });

  test('berth system reconcile repairs a deleted bridge, a flushed ruleset and a leaked veth: every property is back', async () => {
    const { sb } = manual;
    assert.ok(await eventually(async () => (await publishedFromLan(manual)).stdout === manual.lan.address, 5000), 'works before the damage');
    const bridge = await manual.bridge('app');
    must(await sb.inHost('ip', ['link', 'del', bridge]), 'delete the bridge');
    must(await sb.inHost('nft', ['flush', 'ruleset']), 'flush the ruleset');
    must(await sb.inHost('ip', ['link', 'add', 'bv0123456789ab', 'type', 'veth', 'peer', 'name', 'leak-peer']), 'a leaked berth veth');
    assert.notEqual((await publishedFromLan(manual)).stdout, manual.lan.address, 'broken now');

    const report = JSON.parse(await sb.berthOk('system', 'reconcile'));
    assert.ok(report.bridgesRestored.includes(bridge), JSON.stringify(report));
    assert.ok(report.linksRemoved.includes('bv0123456789ab'), JSON.stringify(report));
    // The containers' veths outlived their bridge: they go back on the restored one.
    assert.equal(report.portsReattached.length, 2, JSON.stringify(report));
    await checkEverything(manual);
  });

  test("flushed berth chains and maps are rebuilt by berth system reconcile; the user's rules stay", async () => {
    const { sb, lan } = manual;
    must(await sb.inHost('nft', ['add', 'rule', 'ip', 'berth', 'user-forward', 'ip', 'saddr', lan.address, 'meta', 'l4proto', 'tcp', 'ct', 'original', 'proto-dst', '8301', 'drop']), 'a user rule');
    must(await sb.inHost('nft', ['flush', 'chain', 'ip', 'berth', 'forward']), 'flush berth forward');
    must(await sb.inHost('nft', ['flush', 'map', 'ip', 'berth', 'dnat_any']), 'flush the published ports');
    await sb.berthOk('system', 'reconcile');
    assert.match((await sb.inHost('nft', ['list', 'chain', 'ip', 'berth', 'user-forward'])).stdout, /proto-dst 8301 drop/, 'the user rule is kept');
    assert.ok(await eventually(async () => (await publishedFromLan(manual)).stdout === lan.address, 5000), 'control: port 8300 is published again');
    assert.notEqual((await publishedFromLan(manual, 8301)).stdout, lan.address, 'the user rule still judges first');
    must(await sb.inHost('nft', ['flush', 'chain', 'ip', 'berth', 'user-forward']), 'remove the user rule');
    await checkEverything(manual);
  });

  test("other tables are untouched by a reconcile", async () => {
    const { sb } = manual;
    must(await sb.inHost('nft', ['add', 'table', 'inet', 'someone-else']), 'a foreign table');
    must(await sb.inHost('nft', ['add', 'chain', 'inet', 'someone-else', 'mine']), 'a foreign chain');
    await sb.berthOk('system', 'reconcile');
    assert.match((await sb.inHost('nft', ['list', 'table', 'inet', 'someone-else'])).stdout, /chain mine/, "berth never touches others' tables");
  });

  test('the periodic reconcile repairs the same damage without any command', { timeout: PERIODIC_DEADLINE_MS + 60_000 }, async () => {
    const { sb } = periodic;
    const bridge = await periodic.bridge('app');
    const left = PERIODIC_DEADLINE_MS - (Date.now() - periodic.startedAt);
    const restored = await eventually(async () => (await sb.inHost('ip', ['link', 'show', bridge])).code === 0, Math.max(left, 0), 500);
    assert.ok(restored, `bridge ${bridge} restored within ${PERIODIC_DEADLINE_MS} ms of the daemon's start`);
    assert.ok(await eventually(async () => (await sb.inHost('ip', ['link', 'show', 'bv0123456789ab'])).code !== 0, 5000), 'the leaked veth is gone');
    await checkEverything(periodic);
    // While the watch sees every nftables change, the periodic reconcile does not rewrite the rules
    // (at 1,000 containers that held the event loop ~0.2 s a minute)…
    assert.match(periodic.sb.daemonLog, /"msg":"reconcile","periodic":true/);
    assert.equal(await ruleHandles(periodic), periodicRulesBefore, 'the periodic reconcile left the rules as the watch restored them');
    // …while `berth system reconcile` still does (positive control: handles change on a rewrite).
    await sb.berthOk('system', 'reconcile');
    assert.notEqual(await ruleHandles(periodic), periodicRulesBefore, 'an explicit reconcile rewrites the rules');
  });
});
