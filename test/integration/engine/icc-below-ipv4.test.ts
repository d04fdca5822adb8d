/**
 * Issue 10 item 5 (firewall part): even when a container turns IPv6 back on by itself (it is
 * root in its namespace), an icc=false network passes nothing but IPv4 and ARP between its
 * containers: bridge berth drops other frames between the network's ports. The control: the same
 * link-local connection on an icc=true network goes through.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox, eventually, sleep } from '../../helpers/sandbox.js';
import { linkLocalOf } from '../../helpers/ipv6.js';

describe('icc=false below IPv4', () => {
  let sb: Sandbox;
  const PORT = '7300';

  before(async () => {
    sb = await Sandbox.create('i6');
    await sb.berthOk('network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', 'closed6');
    await sb.berthOk('network', 'create', 'open6');
    for (const net of ['closed6', 'open6']) {
      await sb.berthOk('run', '-d', '--name', `srv-${net}`, '--network', net, '--', 'socat', `TCP6-LISTEN:${PORT},fork,reuseaddr`, 'EXEC:/bin/echo v6-ok');
      await sb.berthOk('run', '-d', '--name', `cli-${net}`, '--network', net, '--', 'sleep', '3600');
      // What a container may do on its own: turn IPv6 back on for its eth0.
      for (const c of [`srv-${net}`, `cli-${net}`]) {
        const r = await sb.inNs(await sb.netnsOf(c), 'sysctl', ['-qw', 'net.ipv6.conf.eth0.disable_ipv6=0']);
        assert.equal(r.code, 0, r.stderr);
      }
    }
    await sleep(500); // link-local addresses come up (DAD is off on these links or quick)
  });
  after(async () => {
    await sb?.destroy();
  });

  const ask = async (net: string) => {
    const mac = (await sb.inspect(`srv-${net}`)).NetworkSettings.Networks[net]!.MacAddress;
    const cli = await sb.netnsOf(`cli-${net}`);
    return (await sb.inNs(cli, 'socat', ['-T2', '-', `TCP6:[${linkLocalOf(mac)}%eth0]:${PORT},connect-timeout=2`], 10_000)).stdout.trim();
  };

  test('positive control: on an icc=true network the link-local connection works', async () => {
    assert.ok(await eventually(async () => (await ask('open6')) === 'v6-ok', 6000, 300));
  });

  test('on an icc=false network it is dropped on the bridge', async () => {
    assert.notEqual(await ask('closed6'), 'v6-ok');
    const elements = (await sb.inHost('nft', ['list', 'set', 'bridge', 'berth', 'icc_off_ports'])).stdout;
    assert.equal((elements.match(/"bv[0-9a-f]+"/g) ?? []).length, 2, elements);
  });

  test("a container's ports leave the set when it stops", async () => {
    await sb.berthOk('rm', '-f', 'cli-closed6');
    const elements = (await sb.inHost('nft', ['list', 'set', 'bridge', 'berth', 'icc_off_ports'])).stdout;
    assert.equal((elements.match(/"bv[0-9a-f]+"/g) ?? []).length, 1, elements);
  });
});
