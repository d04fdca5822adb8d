/**
 * Issue 10 item 14: inside a container /sys/class/net lists the container's own interfaces (a
 * sysfs mounted for its network namespace, read-only, as Docker does), not the host's.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox } from '../../helpers/sandbox.js';

describe('a container sees its own network in /sys', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create('y');
    await sb.berthOk('network', 'create', 'sysnet');
    await sb.berthOk('run', '-d', '--name', 'sys', '--network', 'sysnet', '--', BUSYBOX, 'sleep', '3600');
  });
  after(async () => {
    await sb?.destroy();
  });

  const listing = (text: string) => text.trim().split(/\s+/).filter(Boolean).sort();

  test('/sys/class/net lists lo and eth0, and eth0 has the container MAC', async () => {
    const hostLinks = listing((await sb.inHost('ls', ['/sys/class/net'])).stdout);
    const inside = await sb.berthOk('run', '--rm', '--network', 'container:sys', '--', BUSYBOX, 'sh', '-c', 'ls /sys/class/net; echo ---; cat /sys/class/net/eth0/address');
    const [names, mac] = inside.split('---');
    assert.deepEqual(listing(names!), ['eth0', 'lo'], `the machine shows ${hostLinks.join(' ')}`);
    assert.equal(mac!.trim(), (await sb.inspect('sys')).NetworkSettings.Networks.sysnet!.MacAddress);
    const execd = await sb.berthOk('exec', 'sys', '--', 'ls', '/sys/class/net');
    assert.deepEqual(listing(execd), ['eth0', 'lo'], 'berth exec sees the same');
  });

  test('the sysfs is read-only', async () => {
    const mounts = await sb.berthOk('exec', 'sys', '--', BUSYBOX, 'grep', ' /sys ', '/proc/mounts');
    assert.match(mounts, /^sysfs \/sys sysfs ro[,\s]/m);
  });

  test('none mode shows only lo', async () => {
    const out = await sb.berthOk('run', '--rm', '--network', 'none', '--', 'ls', '/sys/class/net');
    assert.deepEqual(listing(out), ['lo']);
  });
});
