/**
 * The API socket: mode 0660, the group from `berth daemon --group`, and taking over the path only
 * when nothing answers there (a stale socket from a crash), never from a live daemon or a file.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { startServer } from '../../../src/api/server.js';
import type { Engine } from '../../../src/engine/engine.js';
import { silentLogger } from '../../../src/log.js';
import { Sandbox, run } from '../../helpers/sandbox.js';
import { call } from './http.js';

/** Only /_ping and /version are reached here; they never touch the engine. */
const NO_ENGINE = {} as Engine;
const GID = 4242;

describe('API socket', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-socket-test-'));
  const servers: http.Server[] = [];
  const serve = async (socketPath: string, group?: number) => {
    const server = await startServer(NO_ENGINE, { socketPath, log: silentLogger, group });
    servers.push(server);
    return server;
  };
  after(() => {
    for (const s of servers) s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('mode 0660, owned by root and the --group group', async () => {
    const sock = path.join(dir, 'group.sock');
    await serve(sock, GID);
    const st = fs.statSync(sock);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.uid, 0);
    assert.equal(st.gid, GID);
    assert.equal((await call(sock, 'GET', '/_ping')).text, 'OK');
    assert.deepEqual(fs.readdirSync(dir), ['group.sock'], 'no staging file left behind');
  });

  test('a second server on a live socket is refused, and the first keeps answering', async () => {
    const sock = path.join(dir, 'live.sock');
    await serve(sock);
    await assert.rejects(serve(sock), /another daemon is already listening on unix:\/\/.*live\.sock/);
    assert.equal((await call(sock, 'GET', '/_ping')).text, 'OK');
  });

  test('a stale socket left by a killed daemon is taken over', async () => {
    const sock = path.join(dir, 'stale.sock');
    const script = `require('node:net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`;
    await run(process.execPath, ['-e', script]);
    assert.ok(fs.statSync(sock).isSocket(), 'the killed process left its socket behind');
    await serve(sock);
    assert.equal((await call(sock, 'GET', '/_ping')).text, 'OK');
  });

  test('a path that is not a socket is left alone', async () => {
    const file = path.join(dir, 'precious.txt');
    fs.writeFileSync(file, 'keep me');
    await assert.rejects(serve(file), /precious\.txt exists and is not a socket/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'keep me');
  });

  test('a non-numeric group is refused before anything is created', async () => {
    const sock = path.join(dir, 'nan.sock');
    await assert.rejects(serve(sock, Number('docker')), /invalid --group NaN: give the numeric id/);
    assert.equal(fs.existsSync(sock), false);
  });

  test('berth daemon: 0660 root:root by default, --group GID sets the group', async () => {
    const plain = await Sandbox.create('sk');
    try {
      const st = fs.statSync(plain.socket);
      assert.equal(st.mode & 0o777, 0o660);
      assert.equal(st.gid, 0);
    } finally {
      await plain.destroy();
    }
    const grouped = await Sandbox.create('sg', { startDaemon: false });
    try {
      await grouped.startDaemon(['--group', String(GID)]);
      const st = fs.statSync(grouped.socket);
      assert.equal(st.mode & 0o777, 0o660);
      assert.equal(st.gid, GID);
      assert.equal((await call(grouped.socket, 'HEAD', '/_ping')).status, 200);
    } finally {
      await grouped.destroy();
    }
  });
});
