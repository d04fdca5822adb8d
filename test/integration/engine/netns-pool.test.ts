/**
 * Issue 18: container namespaces made ahead of time (engine/netns-pool.ts). A start takes one
 * (the container's namespace is the very namespace the pool held: same nsfs inode) and it works
 * like a fresh one; the pool refills; a burst larger than the pool makes the rest itself; a daemon killed mid-life leaves its pool to the next daemon,
 * which removes it; a daemon that stops leaves nothing. The control is a daemon with
 * --netns-pool 0: no pool, starts make their own namespaces, through the same start path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApiClient } from '../../../src/api/client.js';
import { BERTH, BUSYBOX, Sandbox, eventually } from '../../helpers/sandbox.js';
import { sample, scrapeSocket } from '../../helpers/metrics.js';
import { DEFAULT_NETNS_POOL as POOL } from '../../../src/engine/netns-pool.js';

/** The pool's namespaces: file name → namespace inode (a bind-mounted nsfs file stats as its namespace). */
function poolOf(sb: Sandbox): Map<string, number> {
  const dir = path.join(sb.root, 'state', 'run', 'netns-pool');
  const out = new Map<string, number>();
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    try {
      out.set(name, fs.statSync(path.join(dir, name)).ino);
    } catch {
      /* taken meanwhile */
    }
  }
  return out;
}

const poolMounts = (sb: Sandbox) =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(path.join(sb.root, 'state', 'run', 'netns-pool') + '/')).length;

const takes = (text: string, outcome: string) => sample(text, 'berth_netns_pool_takes_total', { outcome }) ?? NaN;

/** More starts back to back than the pool holds. */
const BURST = POOL + 2;

describe('namespaces made ahead of time', () => {
  let sb: Sandbox;

  before(async () => {
    sb = await Sandbox.create('np');
  });
  after(async () => {
    await sb?.destroy();
  });

  /** The container's namespace inode, and whether it reaches its gateway with IPv6 off by default like a fresh one. */
  const check = async (name: string) => {
    const netns = await sb.netnsOf(name);
    const gateway = JSON.parse(await sb.berthOk('network', 'inspect', 'bridge'))[0].IPAM.Config[0].Gateway as string;
    const ping = await sb.inNs(netns, BUSYBOX, ['ping', '-c', '1', '-W', '2', gateway]);
    const v6off = (await sb.inNs(netns, 'cat', ['/proc/sys/net/ipv6/conf/default/disable_ipv6'])).stdout.trim();
    const lo = (await sb.inNs(netns, 'ip', ['-o', 'link', 'show', 'lo'])).stdout;
    return { ino: fs.statSync(netns).ino, reaches: ping.code === 0, v6off, loUp: /[<,]UP[,>]/.test(lo) };
  };

  test('a start takes a pooled namespace, which works like a fresh one, and the pool refills', async () => {
    assert.ok(await eventually(() => poolOf(sb).size === POOL, 10_000), `the pool fills to ${POOL}: ${[...poolOf(sb).keys()]}`);
    const held = new Set(poolOf(sb).values());
    await sb.berthOk('run', '-d', '--name', 'a', '--', BUSYBOX, 'sleep', '3600');
    const a = await check('a');
    assert.ok(held.has(a.ino), `a's namespace (inode ${a.ino}) is one the pool held (${[...held]})`);
    assert.deepEqual({ reaches: a.reaches, v6off: a.v6off, loUp: a.loUp }, { reaches: true, v6off: '1', loUp: true });
    assert.ok(await eventually(() => poolOf(sb).size === POOL, 10_000), `the pool refills to ${POOL}`);
    assert.ok(![...poolOf(sb).values()].includes(a.ino), 'the taken namespace is no longer in the pool');
    const text = await scrapeSocket(sb);
    assert.ok(takes(text, 'hit') >= 1, `a hit is counted:\n${text.match(/^berth_netns_pool.*$/gm)}`);
  });

  test('a burst of starts: each one either took a pooled namespace or made its own', async () => {
    const before = await scrapeSocket(sb);
    const api = new ApiClient(`unix://${sb.socket}`);
    try {
      for (let i = 0; i < BURST; i++) await api.request('POST', '/containers/create?start=1&detach=1', { name: `b${i}`, cmd: [BUSYBOX, 'sleep', '3600'], networkMode: 'bridge' });
    } finally {
      api.close();
    }
    const after = await scrapeSocket(sb);
    const delta = (o: string) => takes(after, o) - takes(before, o);
    assert.equal(delta('hit') + delta('miss'), BURST, 'every start is counted once');
    assert.ok(delta('hit') >= 1, 'the first start of the burst found one ready');
    for (let i = 0; i < BURST; i++) assert.equal((await check(`b${i}`)).reaches, true, `b${i} reaches its gateway`);
  });

  test('a killed daemon leaves its pool to the next one, which removes it; a stopped one leaves nothing', async () => {
    assert.ok(await eventually(() => poolOf(sb).size === POOL, 10_000));
    const left = poolOf(sb);
    const aIno = (await check('a')).ino;
    await sb.stopDaemon('SIGKILL');
    assert.equal(poolOf(sb).size, POOL, 'a killed daemon cannot clean up');
    await sb.startDaemon();
    assert.ok(
      await eventually(() => {
        const now = poolOf(sb);
        return now.size === POOL && [...left.keys()].every((name) => !now.has(name));
      }, 10_000),
      'the new daemon removed the old pool and made its own',
    );
    const a = await check('a');
    assert.equal(a.ino, aIno, "a running container's namespace is untouched");
    assert.equal(a.reaches, true);
    await sb.stopDaemon('SIGTERM');
    assert.equal(poolOf(sb).size, 0, 'a stopped daemon leaves no pooled namespace');
    assert.equal(poolMounts(sb), 0, 'nor a mount under the pool directory');
    await sb.startDaemon();
  });

  test('--netns-pool 0 keeps none, and starts make their own namespaces (control)', async () => {
    await sb.stopDaemon('SIGTERM');
    await sb.startDaemon(['--netns-pool', '0']);
    await sb.berthOk('run', '-d', '--name', 'c', '--', BUSYBOX, 'sleep', '3600');
    const c = await check('c');
    assert.equal(c.reaches, true);
    assert.equal(poolOf(sb).size, 0, 'no pool');
    assert.doesNotMatch(await scrapeSocket(sb), /^berth_netns_pool_takes_total/m);
    await sb.stopDaemon('SIGTERM');
    await sb.startDaemon();
  });

  test('a bad --netns-pool is refused before the daemon touches anything', async () => {
    // In the sandbox's namespace, in case the flag were taken: a daemon must never start in the machine's own.
    const other = path.join(sb.root, 'other');
    const bad = await sb.inHost(process.execPath, [BERTH, 'daemon', '--root', other, '--host', `unix://${other}.sock`, '--netns-pool', 'lots']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--netns-pool lots: give a whole number of namespaces from 0 \(none\) to 64/);
    assert.equal(fs.existsSync(other), false, 'nothing made under the refused root');
  });
});
