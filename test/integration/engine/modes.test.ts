/**
 * Issue 2 with real packets: bridge, host, none and container: modes, connect/disconnect,
 * daemon restarts, and two daemons side by side.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, eventually } from '../../helpers/sandbox.js';

const ping = (sb: Sandbox, ns: string, ip: string) => sb.inNs(ns, BUSYBOX, ['ping', '-c', '1', '-W', '2', ip]);

describe('single-host engine', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create('m');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('the default bridge network exists, with host and none listed', async () => {
    const ls = await sb.berthOk('network', 'ls');
    for (const name of ['bridge', 'host', 'none']) assert.match(ls, new RegExp(`\\s${name}\\s`));
    const [bridge] = JSON.parse(await sb.berthOk('network', 'inspect', 'bridge'));
    assert.equal(bridge.IPAM.Config[0].Subnet, '172.17.0.0/16');
    assert.equal(bridge.IPAM.Config[0].Gateway, '172.17.0.1');
    const link = await sb.inHost('ip', ['-br', 'addr', 'show', 'berth0']);
    assert.match(link.stdout, /172\.17\.0\.1\/16/);
  });

  test('containers on a user-defined network reach each other and the gateway', async () => {
    await sb.berthOk('network', 'create', 'appnet');
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'appnet'));
    assert.equal(net.IPAM.Config[0].Subnet, '172.18.0.0/16', 'first default pool after 172.17');
    await sb.berthOk('run', '-d', '--name', 'db', '--network', 'appnet', '--', BUSYBOX, 'nc', '-ll', '-p', '5432', '-e', '/bin/echo', 'db-ok');
    await sb.berthOk('run', '-d', '--name', 'web', '--network', 'appnet', '--', BUSYBOX, 'sleep', '3600');
    const db = await sb.inspect('db');
    const web = await sb.inspect('web');
    const dbNet = db.NetworkSettings.Networks.appnet!;
    assert.equal(dbNet.IPAddress, '172.18.0.2');
    assert.equal(dbNet.MacAddress, '02:42:ac:12:00:02');
    assert.equal(dbNet.Gateway, '172.18.0.1');
    assert.equal(dbNet.IPPrefixLen, 16);
    assert.equal(web.NetworkSettings.Networks.appnet!.IPAddress, '172.18.0.3');
    const webNs = await sb.netnsOf('web');
    assert.equal((await ping(sb, webNs, '172.18.0.2')).code, 0, 'web pings db');
    assert.equal((await ping(sb, webNs, '172.18.0.1')).code, 0, 'web pings its gateway');
    const reply = await sb.inNs(webNs, BUSYBOX, ['nc', '-w', '3', '172.18.0.2', '5432']);
    assert.equal(reply.stdout.trim(), 'db-ok', 'TCP from web to db');
    const route = await sb.inNs(webNs, 'ip', ['route']);
    assert.match(route.stdout, /default via 172\.18\.0\.1 dev eth0/);
    const inspect = JSON.parse(await sb.berthOk('network', 'inspect', 'appnet'))[0];
    assert.deepEqual(Object.values(inspect.Containers).map((c) => (c as { Name: string }).Name).sort(), ['db', 'web']);
  });

  test('the lowest free address is reused and the MAC follows the address', async () => {
    await sb.berthOk('run', '-d', '--name', 'r1', '--network', 'appnet', '--', BUSYBOX, 'sleep', '3600');
    assert.equal((await sb.inspect('r1')).NetworkSettings.Networks.appnet!.IPAddress, '172.18.0.4');
    await sb.berthOk('rm', '-f', 'web');
    await sb.berthOk('run', '-d', '--name', 'r2', '--network', 'appnet', '--', BUSYBOX, 'sleep', '3600');
    const r2 = (await sb.inspect('r2')).NetworkSettings.Networks.appnet!;
    assert.equal(r2.IPAddress, '172.18.0.3');
    assert.equal(r2.MacAddress, '02:42:ac:12:00:03');
    await sb.berthOk('rm', '-f', 'r1', 'r2');
  });

  test('the host knows every container by a permanent neighbour and a static bridge entry (no floods on a big bridge)', async () => {
    await sb.berthOk('run', '-d', '--name', 'neigh', '--network', 'appnet', '--', BUSYBOX, 'sleep', '3600');
    const { IPAddress, MacAddress, NetworkID } = (await sb.inspect('neigh')).NetworkSettings.Networks.appnet!;
    const bridgeOfAppnet = `berth-${NetworkID.slice(0, 9)}`;
    const neigh = async () => (await sb.inHost('ip', ['neigh', 'show', IPAddress])).stdout;
    assert.match(await neigh(), new RegExp(`lladdr ${MacAddress} PERMANENT`));
    const fdb = (await sb.inHost('bridge', ['fdb', 'show', 'br', bridgeOfAppnet])).stdout;
    assert.match(fdb, new RegExp(`${MacAddress} dev bv[0-9a-f]+ master ${bridgeOfAppnet} static`), 'a static forwarding entry on its port');
    await sb.berthOk('rm', '-f', 'neigh');
    assert.ok(await eventually(async () => !(await neigh()).includes('PERMANENT'), 2000), 'the entry goes with the container');
  });

  test('none mode has only lo, up', async () => {
    await sb.berthOk('run', '-d', '--name', 'lonely', '--network', 'none', '--', BUSYBOX, 'sleep', '3600');
    const links = await sb.inNs(await sb.netnsOf('lonely'), 'ip', ['-o', 'link']);
    const names = links.stdout.trim().split('\n').map((l) => l.split(': ')[1]);
    assert.deepEqual(names, ['lo']);
    assert.match(links.stdout, /lo: <LOOPBACK,UP,LOWER_UP>/);
  });

  test('none mode gains eth0 through network connect, and loses it on disconnect', async () => {
    await sb.berthOk('network', 'connect', 'appnet', 'lonely');
    const ns = await sb.netnsOf('lonely');
    assert.match((await sb.inNs(ns, 'ip', ['-br', 'addr'])).stdout, /eth0@\S+\s+UP\s+172\.18\.0\.\d+\/16/);
    assert.equal((await ping(sb, ns, '172.18.0.2')).code, 0);
    await sb.berthOk('network', 'disconnect', 'appnet', 'lonely');
    // The kernel deletes the veth just after the call returns (a veth delete blocks 16-40 ms).
    assert.ok(await eventually(async () => !/eth0/.test((await sb.inNs(ns, 'ip', ['-o', 'link'])).stdout), 2000), 'eth0 is gone');
  });

  test('host mode shares the host namespace: sees berth0, no veth of its own', async () => {
    const names = (text: string) => text.split('\n').map((l) => l.split(': ')[1]?.split('@')[0]).filter(Boolean).sort();
    // Veths of removed containers vanish asynchronously, so compare snapshots until they settle.
    const same = await eventually(async () => {
      const inside = names(await sb.berthOk('run', '--rm', '--network', 'host', '--', 'ip', '-o', 'link'));
      const host = names((await sb.inHost('ip', ['-o', 'link'])).stdout);
      return inside.includes('berth0') && JSON.stringify(inside) === JSON.stringify(host);
    }, 10_000, 200);
    assert.ok(same, 'the container sees exactly the host namespace links');
  });

  test('container:NAME shares the address; a server in one answers a client on 127.0.0.1 in the other', async () => {
    await sb.berthOk('run', '-d', '--name', 'pod', '--network', 'appnet', '--', BUSYBOX, 'nc', '-ll', '-p', '7000', '-e', '/bin/echo', 'from-pod');
    const out = await sb.berthOk('run', '--rm', '--network', 'container:pod', '--', BUSYBOX, 'sh', '-c', 'ip -4 -o addr show eth0; nc -w 3 127.0.0.1 7000');
    const podIp = (await sb.inspect('pod')).NetworkSettings.Networks.appnet!.IPAddress;
    assert.match(out, new RegExp(`inet ${podIp.replace(/\./g, '\\.')}/16`));
    assert.match(out, /from-pod/);
  });

  test('a running container gets eth1 on connect and loses it on disconnect', async () => {
    await sb.berthOk('network', 'create', '--subnet', '10.55.0.0/24', 'second');
    await sb.berthOk('network', 'connect', '--ip', '10.55.0.77', 'second', 'db');
    const ns = await sb.netnsOf('db');
    assert.match((await sb.inNs(ns, 'ip', ['-br', 'addr', 'show', 'eth1'])).stdout, /10\.55\.0\.77\/24/);
    assert.equal((await ping(sb, ns, '10.55.0.1')).code, 0);
    assert.equal((await sb.inspect('db')).NetworkSettings.Networks.second!.IPAddress, '10.55.0.77');
    await sb.berthOk('network', 'disconnect', 'second', 'db');
    assert.ok(await eventually(async () => (await sb.inNs(ns, 'ip', ['link', 'show', 'eth1'])).code === 1, 2000), 'eth1 is gone');
    assert.equal((await sb.inspect('db')).NetworkSettings.Networks.second, undefined);
  });

  test('attached run exits with the command status; --rm removes the container', async () => {
    const r = await sb.berth('run', '--rm', '--name', 'quick', '--network', 'appnet', '--', BUSYBOX, 'sh', '-c', 'hostname; exit 3');
    assert.equal(r.code, 3);
    assert.equal((await sb.berth('inspect', 'quick')).code, 1);
  });

  test('exec exits with the command status, or 128 + the signal that ended it', async () => {
    await sb.berthOk('run', '-d', '--name', 'execd', '--network', 'appnet', '--', BUSYBOX, 'sleep', '3600');
    assert.equal((await sb.berth('exec', 'execd', '--', BUSYBOX, 'sh', '-c', 'exit 4')).code, 4);
    // A command killed by a signal (as `ping … | head` gets a SIGPIPE) is not "could not run" (126).
    assert.equal((await sb.berth('exec', 'execd', '--', BUSYBOX, 'sh', '-c', 'kill -PIPE $$')).code, 141);
    await sb.berthOk('rm', '-f', 'execd');
  });

  test('a daemon restart keeps connectivity and leases', async () => {
    const dbIp = (await sb.inspect('db')).NetworkSettings.Networks.appnet!.IPAddress;
    await sb.stopDaemon('SIGTERM');
    await sb.startDaemon();
    assert.equal((await sb.inspect('db')).State.Status, 'running');
    await sb.berthOk('run', '-d', '--name', 'after', '--network', 'appnet', '--', BUSYBOX, 'sleep', '3600');
    const afterIp = (await sb.inspect('after')).NetworkSettings.Networks.appnet!.IPAddress;
    assert.notEqual(afterIp, dbIp, 'a lease survives the restart');
    assert.equal((await ping(sb, await sb.netnsOf('after'), dbIp)).code, 0);
  });

  test('a killed daemon comes back with its containers intact', async () => {
    await sb.stopDaemon('SIGKILL');
    await sb.startDaemon();
    const ns = await sb.netnsOf('after');
    assert.equal((await ping(sb, ns, (await sb.inspect('db')).NetworkSettings.Networks.appnet!.IPAddress)).code, 0);
  });

  test('a container whose process exits frees its address', async () => {
    await sb.berthOk('run', '-d', '--name', 'brief', '--network', 'appnet', '--', BUSYBOX, 'sleep', '0.2');
    const ok = await eventually(async () => (await sb.inspect('brief')).State.Status === 'exited', 5000);
    assert.ok(ok, 'brief exits');
    assert.equal((await sb.inspect('brief')).NetworkSettings.Networks.appnet, undefined);
  });
});

describe('two daemons in two namespaces', () => {
  let a: Sandbox;
  let b: Sandbox;
  before(async () => {
    a = await Sandbox.create('a');
    b = await Sandbox.create('b');
  });
  after(async () => {
    await a?.destroy();
    await b?.destroy();
  });

  test("don't see each other's networks, containers or links", async () => {
    await a.berthOk('network', 'create', 'only-a');
    await a.berthOk('run', '-d', '--name', 'ca', '--', BUSYBOX, 'sleep', '3600');
    assert.doesNotMatch(await b.berthOk('network', 'ls'), /only-a/);
    assert.equal((await b.berthOk('ps', '-aq')).trim(), '');
    assert.doesNotMatch((await b.inHost('ip', ['-o', 'link'])).stdout, /bv/);
    // Both use 172.17.0.0/16 on their own berth0 without clashing.
    await b.berthOk('run', '-d', '--name', 'cb', '--', BUSYBOX, 'sleep', '3600');
    assert.equal((await a.inspect('ca')).NetworkSettings.IPAddress, '172.17.0.2');
    assert.equal((await b.inspect('cb')).NetworkSettings.IPAddress, '172.17.0.2');
  });
});
