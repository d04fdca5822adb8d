/**
 * Issue 10 item 13: disconnecting the network that carries a container's default route moves the
 * route to the next remaining network's gateway, as Docker does. Checked with real traffic to a
 * peer the container reaches only through its default route.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, eventually, type Peer } from '../../helpers/sandbox.js';

describe('the default route follows the remaining networks', () => {
  let sb: Sandbox;
  let far: Peer;
  before(async () => {
    sb = await Sandbox.create('r');
    // 10.203.0.0/24 is on no container network: only a default route leads there.
    far = await sb.addPeer('f', '10.203.0');
    sb.spawnIn(far.nsPath, BUSYBOX, ['nc', '-ll', '-p', '7100', '-e', '/bin/echo', 'far-ok']);
    await sb.berthOk('network', 'create', '--subnet', '10.61.0.0/24', 'first');
    await sb.berthOk('network', 'create', '--subnet', '10.62.0.0/24', 'second');
    await sb.berthOk('run', '-d', '--name', 'roamer', '--network', 'first', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('network', 'connect', 'second', 'roamer');
  });
  after(async () => {
    await sb?.destroy();
  });

  const reachFar = async () => (await sb.inNs(await sb.netnsOf('roamer'), BUSYBOX, ['nc', '-w', '3', far.address, '7100'])).stdout.trim() === 'far-ok';
  const defaultRoute = async () => (await sb.inNs(await sb.netnsOf('roamer'), 'ip', ['-4', 'route', 'show', 'default'])).stdout.trim();

  test('before: the default route goes via the first network, and the far peer answers', async () => {
    assert.match(await defaultRoute(), /^default via 10\.61\.0\.1 dev eth0/);
    assert.ok(await eventually(reachFar, 5000, 200), 'the far peer answers through the default route');
  });

  test('disconnecting the first network moves the default route to the second gateway', async () => {
    await sb.berthOk('network', 'disconnect', 'first', 'roamer');
    assert.ok(await eventually(async () => /^default via 10\.62\.0\.1 dev eth1/.test(await defaultRoute()), 3000), `default route: ${await defaultRoute()}`);
    assert.ok(await reachFar(), 'the far peer still answers, now through the second network');
  });

  test('disconnecting a network that does not carry the default route leaves it alone', async () => {
    await sb.berthOk('network', 'connect', 'first', 'roamer');
    await sb.berthOk('network', 'disconnect', 'first', 'roamer');
    assert.match(await defaultRoute(), /^default via 10\.62\.0\.1 dev eth1/);
    assert.ok(await reachFar());
  });
});
