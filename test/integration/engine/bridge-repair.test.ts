/**
 * Issue 10 item 15: a bridge the reconciler restores is the same bridge to its containers: the
 * same MAC (derived from the network, so the containers' ARP entries for the gateway stay right),
 * and each container's permanent neighbour entry and static FDB entry are back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, must } from '../../helpers/sandbox.js';

describe('bridge repair', () => {
  let sb: Sandbox;
  let bridge: string;
  let ip: string;
  let mac: string;
  before(async () => {
    sb = await Sandbox.create('h');
    await sb.berthOk('network', 'create', '--subnet', '10.64.0.0/24', 'mended');
    await sb.berthOk('run', '-d', '--name', 'tenant', '--network', 'mended', '--', BUSYBOX, 'sleep', '3600');
    const n = (await sb.inspect('tenant')).NetworkSettings.Networks.mended!;
    bridge = `berth-${n.NetworkID.slice(0, 9)}`;
    ip = n.IPAddress;
    mac = n.MacAddress;
  });
  after(async () => {
    await sb?.destroy();
  });

  const bridgeMac = async () => JSON.parse(must(await sb.inHost('ip', ['-j', 'link', 'show', 'dev', bridge]), 'bridge'))[0].address as string;
  const neighbour = async () => (await sb.inHost('ip', ['neigh', 'show', ip, 'dev', bridge])).stdout;
  const fdb = async () => (await sb.inHost('bridge', ['fdb', 'show', 'br', bridge])).stdout;
  const gatewayArp = async () => (await sb.inNs(await sb.netnsOf('tenant'), 'ip', ['neigh', 'show', '10.64.0.1'])).stdout;

  async function assertWhole(when: string, expectedMac: string): Promise<void> {
    assert.equal(await bridgeMac(), expectedMac, `${when}: bridge MAC`);
    assert.match(await neighbour(), new RegExp(`lladdr ${mac} PERMANENT`), `${when}: neighbour entry`);
    assert.match(await fdb(), new RegExp(`${mac} dev bv[0-9a-f]+ master ${bridge} static`), `${when}: static FDB entry`);
    assert.equal((await sb.inHost(BUSYBOX, ['ping', '-c', '1', '-W', '2', ip])).code, 0, `${when}: host → container`);
    assert.equal((await sb.inNs(await sb.netnsOf('tenant'), BUSYBOX, ['ping', '-c', '1', '-W', '2', '10.64.0.1'])).code, 0, `${when}: container → gateway`);
  }

  test('a deleted bridge comes back with its MAC, neighbour and FDB entries', async () => {
    const before = await bridgeMac();
    assert.match(before, /^02:42:/);
    await assertWhole('before', before);
    must(await sb.inHost('ip', ['link', 'del', bridge]), 'delete the bridge');
    const report = JSON.parse(await sb.berthOk('system', 'reconcile'));
    assert.deepEqual(report.bridgesRestored, [bridge], JSON.stringify(report));
    await assertWhole('after', before);
    assert.match(await gatewayArp(), new RegExp(`lladdr ${before} PERMANENT`), "the container's entry for the gateway names the same MAC");
  });

  test("a container's stale permanent entry for the gateway (a bridge that had a random MAC) is corrected by the repair", async () => {
    const ns = await sb.netnsOf('tenant');
    must(await sb.inNs(ns, 'ip', ['neigh', 'replace', '10.64.0.1', 'lladdr', '02:42:de:ad:be:ef', 'nud', 'permanent', 'dev', 'eth0']), 'stale entry');
    assert.notEqual((await sb.inNs(ns, BUSYBOX, ['ping', '-c', '1', '-W', '1', '10.64.0.1'])).code, 0, 'a stale entry cuts the gateway off');
    must(await sb.inHost('ip', ['link', 'del', bridge]), 'delete the bridge');
    await sb.berthOk('system', 'reconcile');
    assert.match(await gatewayArp(), new RegExp(`lladdr ${await bridgeMac()} PERMANENT`));
    await assertWhole('after', await bridgeMac());
  });
});
