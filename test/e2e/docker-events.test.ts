/**
 * `docker events` (the stock CLI, each client installed: Debian's 20.10 and a 28) against a sandbox
 * berth daemon: after `docker network connect`, a bounded `docker events --since --until --filter
 * type=network` prints the connect, and ends by itself. Skips a client that is not installed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUSYBOX, Sandbox, run, type Result } from '../helpers/sandbox.js';

const CLIENTS = [process.env.BERTH_TEST_DOCKER, '/usr/bin/docker', '/usr/local/bin/docker'].filter((p): p is string => Boolean(p));
const INSTALLED = [...new Set(CLIENTS.filter((p) => fs.existsSync(p)))];
const TIME = '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{9}(?:Z|[+-]\\d{2}:\\d{2})';
const nowSeconds = () => (Date.now() / 1000).toFixed(3);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('docker events against berth', { skip: INSTALLED.length ? false : 'no docker client: apt-get install docker.io' }, () => {
  let sb: Sandbox;
  let config: string;
  let env: NodeJS.ProcessEnv;
  let cid: string;

  before(async () => {
    sb = await Sandbox.create('de');
    config = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-docker-config-'));
    // Only DOCKER_HOST decides where the CLI goes: no contexts, config or API pin from the caller.
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DOCKER_')));
    Object.assign(env, { DOCKER_HOST: `unix://${sb.socket}`, DOCKER_CONFIG: config });
    await sb.berthOk('run', '-d', '--name', 'web', '--', BUSYBOX, 'sleep', '3600');
    cid = (await sb.inspect('web')).Id;
  });
  after(async () => {
    await sb?.destroy();
    if (config) fs.rmSync(config, { recursive: true, force: true });
  });

  for (const docker of INSTALLED) {
    const dockerRun = (...args: string[]): Promise<Result> => run(docker, args, { env, timeoutMs: 30_000 });
    const dockerOk = async (...args: string[]) => {
      const r = await dockerRun(...args);
      assert.equal(r.code, 0, `${docker} ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };

    test(`${docker}: docker events --since --until --filter type=network shows the connect`, async () => {
      const net = `evnet${INSTALLED.indexOf(docker)}`;
      const t0 = nowSeconds();
      await sleep(20);
      const netId = (await dockerOk('network', 'create', net)).trim();
      await dockerOk('network', 'connect', net, 'web');
      await sleep(20);
      const t1 = nowSeconds();
      const out = (await dockerOk('events', '--since', t0, '--until', t1, '--filter', 'type=network')).split('\n').filter(Boolean);
      assert.equal(out.length, 2, out.join('\n'));
      assert.match(out[0]!, new RegExp(`^${TIME} network create ${netId} \\(name=${net}, type=bridge\\)$`));
      assert.match(out[1]!, new RegExp(`^${TIME} network connect ${netId} \\(container=${cid}, containerName=web, name=${net}, type=bridge\\)$`));
      // Filters go through the CLI's own encoding: an event filter keeps only the connect.
      const connects = await dockerOk('events', '--since', t0, '--until', t1, '--filter', 'event=connect', '--filter', `network=${net}`, '--format', '{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes "container"}}');
      assert.equal(connects, `network connect ${netId} ${cid}\n`);
      await dockerOk('network', 'disconnect', net, 'web');
      await dockerOk('network', 'rm', net);
    });

    test(`${docker}: container events carry the legacy status and id the CLI's templates read`, async () => {
      const name = `brief${INSTALLED.indexOf(docker)}`;
      const t0 = nowSeconds();
      await sleep(20);
      await sb.berthOk('run', '-d', '--name', name, '--', BUSYBOX, 'sleep', '3600');
      const brief = (await sb.inspect(name)).Id;
      await sb.berthOk('rm', '-f', name);
      await sleep(20);
      const out = await dockerOk('events', '--since', t0, '--until', nowSeconds(), '--filter', 'type=container', '--format', '{{.Status}} {{.ID}} {{.Action}}');
      assert.deepEqual(out.split('\n').filter(Boolean), ['create', 'start', 'die', 'destroy'].map((a) => `${a} ${brief} ${a}`));
    });

    test(`${docker}: a bad filter is the daemon's error`, async () => {
      const r = await dockerRun('events', '--since', '1', '--until', '2', '--filter', 'bogus=1');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /invalid filter 'bogus'/);
    });
  }
});
