/**
 * Reading a Docker endpoint's names from dockerd's API, against a stand-in dockerd on a unix
 * socket answering what dockerd 20.10 answers: the list finds the container by endpoint id (it
 * carries no aliases), the inspect gives that network's aliases.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { DockerApi, dockerSocketOf } from '../../../src/plugin/docker-api.js';
import { BerthError } from '../../../src/errors.js';

const ID = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const EP = 'e'.repeat(64);

describe('dockerd API: names of an endpoint', () => {
  let dir: string;
  let server: http.Server;
  let listed = true;
  const asked: string[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-docker-api-'));
    server = http.createServer((req, res) => {
      asked.push(req.url ?? '');
      const reply = (status: number, body: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      if (req.url?.startsWith('/containers/json?')) {
        const other = { Id: 'f'.repeat(64), Names: ['/other'], NetworkSettings: { Networks: { ov: { EndpointID: 'd'.repeat(64), Aliases: null } } } };
        const ours = { Id: ID, Names: ['/web', '/app/db'], NetworkSettings: { Networks: { ov: { EndpointID: EP, Aliases: null } } } };
        return reply(200, listed ? [other, ours] : [other]);
      }
      if (req.url === `/containers/${ID}/json`) return reply(200, { Id: ID, NetworkSettings: { Networks: { ov: { EndpointID: EP, Aliases: ['web1', ID.slice(0, 12)] } } } });
      reply(404, { message: 'no such container' });
    });
    await new Promise<void>((resolve) => server.listen(path.join(dir, 'docker.sock'), resolve));
  });
  after(() => {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("name, short id and the network's aliases, deduplicated; a link's name left out", async () => {
    const api = new DockerApi(path.join(dir, 'docker.sock'));
    assert.deepEqual(await api.namesOfEndpoint('net1', EP), ['web', ID.slice(0, 12), 'web1']);
    const list = asked.find((u) => u.startsWith('/containers/json?'))!;
    assert.deepEqual(JSON.parse(new URL(`http://x${list}`).searchParams.get('filters')!), { network: ['net1'] });
    assert.equal(new URL(`http://x${list}`).searchParams.get('all'), '1', 'a container still starting is listed');
  });

  test('undefined while dockerd lists no container with the endpoint', async () => {
    listed = false;
    try {
      assert.equal(await new DockerApi(path.join(dir, 'docker.sock')).namesOfEndpoint('net1', EP), undefined);
    } finally {
      listed = true;
    }
  });

  test('a dockerd that is not there is an error naming the socket', async () => {
    await assert.rejects(new DockerApi(path.join(dir, 'nothere.sock')).namesOfEndpoint('net1', EP), /ENOENT.*nothere\.sock/);
  });

  test('--docker-host takes unix:///PATH or a path, and refuses anything else saying what to give', () => {
    assert.equal(dockerSocketOf('unix:///run/docker.sock'), '/run/docker.sock');
    assert.equal(dockerSocketOf('/tmp/d.sock'), '/tmp/d.sock');
    assert.throws(() => dockerSocketOf('tcp://127.0.0.1:2375'), (err: unknown) => err instanceof BerthError && err.kind === 'invalid' && /give unix:\/\/\/PATH/.test(err.message));
  });
});
