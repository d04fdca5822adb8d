/**
 * Issue 10 item 12 (default bridge part): berth's default `bridge` network does not take
 * 172.17.0.0/16 when the host already uses it (docker0 with 172.17.0.1/16 on a host running
 * Docker): it takes the first free default pool. Without docker0 it takes 172.17.0.0/16.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, must } from '../../helpers/sandbox.js';

describe('the default bridge subnet', () => {
  const boxes: Sandbox[] = [];
  after(async () => {
    for (const sb of boxes) await sb.destroy();
  });

  const bridgeConfig = async (sb: Sandbox) => JSON.parse(await sb.berthOk('network', 'inspect', 'bridge'))[0].IPAM.Config[0];

  test('a host with docker0 on 172.17.0.1/16: berth0 takes another subnet, and containers work on it', async () => {
    const sb = await Sandbox.create('d', { startDaemon: false });
    boxes.push(sb);
    must(await sb.inHost('ip', ['link', 'add', 'docker0', 'type', 'bridge']), 'docker0');
    must(await sb.inHost('ip', ['addr', 'add', '172.17.0.1/16', 'dev', 'docker0']), 'docker0 address');
    must(await sb.inHost('ip', ['link', 'set', 'docker0', 'up']), 'docker0 up');
    await sb.startDaemon();
    const config = await bridgeConfig(sb);
    assert.equal(config.Subnet, '172.18.0.0/16');
    assert.equal(config.Gateway, '172.18.0.1');
    assert.match((await sb.inHost('ip', ['-br', 'addr', 'show', 'berth0'])).stdout, /172\.18\.0\.1\/16/);
    assert.match((await sb.inHost('ip', ['-br', 'addr', 'show', 'docker0'])).stdout, /172\.17\.0\.1\/16/, 'docker0 keeps its address');
    await sb.berthOk('run', '-d', '--name', 'beside', '--', BUSYBOX, 'sleep', '3600');
    assert.equal((await sb.inspect('beside')).NetworkSettings.IPAddress, '172.18.0.2');
    assert.equal((await sb.inNs(await sb.netnsOf('beside'), BUSYBOX, ['ping', '-c', '1', '-W', '2', '172.18.0.1'])).code, 0);
    // A user network skips the default bridge's subnet as well as docker0's.
    await sb.berthOk('network', 'create', 'next');
    assert.equal(JSON.parse(await sb.berthOk('network', 'inspect', 'next'))[0].IPAM.Config[0].Subnet, '172.19.0.0/16');
    // The choice is made once: a restart keeps it.
    await sb.stopDaemon();
    await sb.startDaemon();
    assert.equal((await bridgeConfig(sb)).Subnet, '172.18.0.0/16');
  });

  test('positive control: without docker0 berth0 takes 172.17.0.0/16', async () => {
    const sb = await Sandbox.create('e');
    boxes.push(sb);
    const config = await bridgeConfig(sb);
    assert.equal(config.Subnet, '172.17.0.0/16');
    assert.equal(config.Gateway, '172.17.0.1');
  });
});
