/**
 * Host-port bindings (issue 10, items 1 and 11): the engine and the full ruleset build apply one
 * clash rule, a bad binding in the store never stops the daemon from starting, and a published
 * port is held by the daemon so a host service started later cannot shadow it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { BUSYBOX, Sandbox, eventually, type Peer } from '../../helpers/sandbox.js';

interface PortLine {
  containerPort: string;
  hostIp: string;
  hostPort: number;
}

async function portsOf(sb: Sandbox, name: string): Promise<PortLine[]> {
  return (await sb.berthOk('port', name))
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^(\S+) -> ([\d.]+):(\d+)$/.exec(line);
      assert.ok(m, `berth port line: ${line}`);
      return { containerPort: m[1]!, hostIp: m[2]!, hostPort: Number(m[3]) };
    });
}

describe('host-port bindings', () => {
  let sb: Sandbox;
  let lan: Peer;
  before(async () => {
    sb = await Sandbox.create('pb');
    lan = await sb.addPeer('l', '10.211.0');
    await sb.berthOk('network', 'create', 'pbnet');
  });
  after(async () => {
    await sb?.destroy();
  });

  const answer = (port: number) => sb.inNs(lan.nsPath, BUSYBOX, ['nc', '-w', '2', lan.hostAddress, String(port)]);

  test('an ephemeral port never lands on a port a specific-address binding holds', async () => {
    await sb.berthOk('run', '-d', '--name', 'loc', '--network', 'pbnet', '-p', '127.0.0.1::80', '--', BUSYBOX, 'nc', '-ll', '-p', '80', '-e', '/bin/echo', 'loc');
    await sb.berthOk('run', '-d', '--name', 'any', '--network', 'pbnet', '-p', '80', '--', BUSYBOX, 'nc', '-ll', '-p', '80', '-e', '/bin/echo', 'any');
    await sb.berthOk('run', '-d', '--name', 'pub', '--network', 'pbnet', '--expose', '80', '-P', '--', BUSYBOX, 'nc', '-ll', '-p', '80', '-e', '/bin/echo', 'pub');
    const [loc] = await portsOf(sb, 'loc');
    const [any] = await portsOf(sb, 'any');
    const [pub] = await portsOf(sb, 'pub');
    assert.equal(loc!.hostIp, '127.0.0.1');
    assert.notEqual(any!.hostPort, loc!.hostPort, '-p 80 must not take the port 127.0.0.1 holds');
    assert.notEqual(pub!.hostPort, loc!.hostPort, '-P must not take it either');
    assert.notEqual(pub!.hostPort, any!.hostPort);
    assert.ok(await eventually(async () => (await answer(any!.hostPort)).stdout.trim() === 'any', 3000), 'the wildcard port answers from the LAN');
  });

  test('the daemon restarts with the same bindings, and every port still answers', async () => {
    const before = await portsOf(sb, 'any');
    await sb.stopDaemon('SIGTERM');
    await sb.startDaemon();
    assert.deepEqual(await portsOf(sb, 'any'), before);
    assert.ok(await eventually(async () => (await answer(before[0]!.hostPort)).stdout.trim() === 'any', 3000));
    const reconciled = await sb.berth('system', 'reconcile');
    assert.equal(reconciled.code, 0, reconciled.stderr);
  });

  test('a clashing binding in the store does not stop the daemon: it is refused, logged, and the rest is served', async () => {
    await sb.berthOk('run', '-d', '--name', 'keep', '--network', 'pbnet', '-p', '8400:80', '--', BUSYBOX, 'nc', '-ll', '-p', '80', '-e', '/bin/echo', 'keep');
    await sb.berthOk('run', '-d', '--name', 'bad', '--network', 'pbnet', '--', BUSYBOX, 'nc', '-ll', '-p', '80', '-e', '/bin/echo', 'bad');
    const badId = (await sb.inspect('bad')).Id;
    const badIp = (await sb.inspect('bad')).NetworkSettings.Networks.pbnet!.IPAddress;
    await sb.stopDaemon('SIGTERM');
    // What an older berth could write: 127.0.0.1:8400 next to the wildcard 0.0.0.0:8400.
    const db = new Database(path.join(sb.root, 'state', 'berth.db'));
    db.prepare('INSERT INTO ports VALUES (?, ?, ?, ?, ?, ?)').run(badId, 'tcp', '127.0.0.1', 8400, 80, badIp);
    db.close();
    sb.daemonLog = '';
    await sb.startDaemon();
    assert.equal((await sb.berth('ps')).code, 0, 'the daemon serves');
    assert.match(sb.daemonLog, /8400/, 'the refused binding is logged');
    assert.deepEqual(await portsOf(sb, 'bad'), [], 'the offending binding is dropped from the store');
    assert.ok(await eventually(async () => (await answer(8400)).stdout.trim() === 'keep', 3000), 'the first holder keeps its port');
    const local = await sb.inHost('curl', ['-s', '--max-time', '2', 'telnet://127.0.0.1:8400'], 10_000);
    assert.doesNotMatch(local.stdout, /bad/, '127.0.0.1:8400 does not reach the refused container');
  });
});

describe('published ports are held', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create('ph');
    await sb.berthOk('network', 'create', 'phnet');
  });
  after(async () => {
    await sb?.destroy();
  });

  const hostListen = (args: string[]) =>
    sb.inHost(process.execPath, ['-e', listenScript, ...args], 10_000);

  test('a host service cannot bind a published port while it is published, and can once it is released', async () => {
    await sb.berthOk('run', '-d', '--name', 'held', '--network', 'phnet', '-p', '8500:80', '-p', '8501:53/udp', '-p', '127.0.0.1:8502:80', '--', BUSYBOX, 'sleep', '3600');
    for (const [proto, ip, port] of [['tcp', '0.0.0.0', '8500'], ['tcp', '127.0.0.1', '8500'], ['udp', '0.0.0.0', '8501'], ['tcp', '127.0.0.1', '8502']]) {
      const r = await hostListen([proto!, ip!, port!]);
      assert.match(r.stdout, /EADDRINUSE/, `${proto} ${ip}:${port} is held: ${r.stdout}${r.stderr}`);
    }
    // Positive control through the same path: a port nobody published binds fine.
    assert.match((await hostListen(['tcp', '0.0.0.0', '8503'])).stdout, /bound/);
    await sb.berthOk('rm', '-f', 'held');
    for (const [proto, port] of [['tcp', '8500'], ['udp', '8501'], ['tcp', '8502']]) {
      assert.match((await hostListen([proto!, '0.0.0.0', port!])).stdout, /bound/, `${proto} ${port} is released`);
    }
  });

  test('held ports are taken again after a daemon restart', async () => {
    await sb.berthOk('run', '-d', '--name', 'held2', '--network', 'phnet', '-p', '8510:80', '--', BUSYBOX, 'sleep', '3600');
    await sb.stopDaemon('SIGTERM');
    await sb.startDaemon();
    assert.match((await hostListen(['tcp', '0.0.0.0', '8510'])).stdout, /EADDRINUSE/);
  });
});

/** Tries to bind PROTO IP PORT in the namespace it runs in and prints "bound" or the error code. */
const listenScript = `
const [proto, ip, port] = process.argv.slice(1);
const done = (s) => { console.log(s); process.exit(0); };
if (proto === 'udp') {
  const sock = require('node:dgram').createSocket('udp4');
  sock.on('error', (e) => done(e.code));
  sock.bind(Number(port), ip, () => done('bound'));
} else {
  const srv = require('node:net').createServer();
  srv.on('error', (e) => done(e.code));
  srv.listen(Number(port), ip, () => done('bound'));
}
`;
