/**
 * Issue 10 item 5 (kernel part): berth's networks are IPv4-only, so container interfaces, their
 * host veth ends and the bridges carry no IPv6 (as Docker ≥ 27 does): an icc=false network cannot
 * be crossed over IPv6 link-local. The sandbox host's own `default`/`all` settings stay untouched.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, eventually } from '../../helpers/sandbox.js';
import { linkLocalOf } from '../../helpers/ipv6.js';

describe('no IPv6 on IPv4-only networks', () => {
  let sb: Sandbox;
  let serverMac: string;
  const PORT = '7200';
  const server = ['socat', `TCP6-LISTEN:${PORT},fork,reuseaddr`, 'EXEC:/bin/echo v6-ok'];

  before(async () => {
    sb = await Sandbox.create('6');
    await sb.berthOk('network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', 'noicc6');
    await sb.berthOk('network', 'create', 'icc6');
    await sb.berthOk('run', '-d', '--name', 'srv6', '--network', 'noicc6', '--', ...server);
    await sb.berthOk('run', '-d', '--name', 'cli6', '--network', 'noicc6', '--', BUSYBOX, 'sleep', '3600');
    serverMac = (await sb.inspect('srv6')).NetworkSettings.Networks.noicc6!.MacAddress;
  });
  after(async () => {
    await sb?.destroy();
  });

  const ask = (ns: string, target: string) => sb.inNs(ns, 'socat', ['-T2', '-', `TCP6:${target}:${PORT},connect-timeout=2`], 10_000);

  test('the server answers on [::1] inside its own namespace (the IPv6 stack and the server work)', async () => {
    assert.ok(await eventually(async () => (await ask(await sb.netnsOf('srv6'), '[::1]')).stdout.trim() === 'v6-ok', 5000, 200));
  });

  test('a client on the same icc=false network cannot reach it over fe80::…%eth0', async () => {
    const r = await ask(await sb.netnsOf('cli6'), `[${linkLocalOf(serverMac)}%eth0]`);
    assert.notEqual(r.stdout.trim(), 'v6-ok', 'the link-local connection must fail');
  });

  test('container interfaces, host veth ends and bridges have IPv6 disabled; lo keeps ::1', async () => {
    const ns = await sb.netnsOf('srv6');
    for (const conf of ['eth0', 'default']) {
      assert.equal((await sb.inNs(ns, 'cat', [`/proc/sys/net/ipv6/conf/${conf}/disable_ipv6`])).stdout.trim(), '1', `container ${conf}`);
    }
    assert.equal((await sb.inNs(ns, 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout.trim(), '', 'no fe80:: on eth0');
    assert.match((await sb.inNs(ns, 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'lo'])).stdout, /::1\/128/);
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'noicc6'));
    const bridge = `berth-${(net.Id as string).slice(0, 9)}`;
    const ports = (await sb.inHost('ip', ['-o', 'link', 'show', 'master', bridge])).stdout.match(/bv[0-9a-f]+/g) ?? [];
    assert.equal(ports.length, 2);
    for (const dev of [bridge, ...ports]) {
      assert.equal((await sb.inHost('cat', [`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`])).stdout.trim(), '1', dev);
      assert.equal((await sb.inHost('ip', ['-6', '-o', 'addr', 'show', 'dev', dev])).stdout.trim(), '', `no IPv6 address on ${dev}`);
    }
    for (const key of ['default', 'all']) {
      assert.equal((await sb.inHost('cat', [`/proc/sys/net/ipv6/conf/${key}/disable_ipv6`])).stdout.trim(), '0', `the host's ${key} is untouched`);
    }
  });

  /** What a container with CAP_NET_ADMIN could do: turn IPv6 back on for its eth0. */
  async function reenableIpv6(name: string): Promise<void> {
    const ns = await sb.netnsOf(name);
    await sb.inNs(ns, 'sh', ['-c', 'echo 0 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6']);
    const ready = await eventually(async () => {
      const addrs = (await sb.inNs(ns, 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
      return addrs.includes('fe80::') && !addrs.includes('tentative');
    }, 5000, 100);
    assert.ok(ready, `${name} has its fe80:: address again`);
  }

  test('even with IPv6 turned back on inside both containers, icc=false drops the link-local connection', async () => {
    await reenableIpv6('srv6');
    await reenableIpv6('cli6');
    const r = await ask(await sb.netnsOf('cli6'), `[${linkLocalOf(serverMac)}%eth0]`);
    assert.notEqual(r.stdout.trim(), 'v6-ok', 'non-IPv4/ARP frames between icc=false ports are dropped');
  });

  test('positive control: with IPv6 turned back on, on an icc=true network the link-local connection works', async () => {
    await sb.berthOk('run', '-d', '--name', 'osrv6', '--network', 'icc6', '--', ...server);
    await sb.berthOk('run', '-d', '--name', 'ocli6', '--network', 'icc6', '--', BUSYBOX, 'sleep', '3600');
    await reenableIpv6('osrv6');
    await reenableIpv6('ocli6');
    const mac = (await sb.inspect('osrv6')).NetworkSettings.Networks.icc6!.MacAddress;
    const cli = await sb.netnsOf('ocli6');
    assert.ok(await eventually(async () => (await ask(cli, `[${linkLocalOf(mac)}%eth0]`)).stdout.trim() === 'v6-ok', 5000, 200), 'the same path works where icc is on');
  });

  test('positive control: IPv4 between containers on an icc=true network works', async () => {
    await sb.berthOk('run', '-d', '--name', 'srv4', '--network', 'icc6', '--', BUSYBOX, 'nc', '-ll', '-p', PORT, '-e', '/bin/echo', 'v4-ok');
    await sb.berthOk('run', '-d', '--name', 'cli4', '--network', 'icc6', '--', BUSYBOX, 'sleep', '3600');
    const ip = (await sb.inspect('srv4')).NetworkSettings.Networks.icc6!.IPAddress;
    const cli = await sb.netnsOf('cli4');
    assert.ok(await eventually(async () => (await sb.inNs(cli, BUSYBOX, ['nc', '-w', '2', ip, PORT])).stdout.trim() === 'v4-ok', 5000, 200));
  });
});
