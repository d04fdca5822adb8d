/**
 * Issue 18: container namespaces made ahead of time (engine/netns-pool.ts). A start takes one
 * (the container's namespace is the very namespace the pool held: same nsfs inode) and it works
 * like a fresh one; the pool refills; a burst larger than the pool makes the rest itself. The pool
 * is held by the daemon's descriptors only, so a daemon killed mid-life leaves no trace of it; the
 * bind mounts an earlier build kept its pool in are removed at start. The control is a daemon
 * with --netns-pool 0: no pool, starts make their own namespaces, through the same start path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApiClient } from '../../../src/api/client.js';
import { BERTH, BUSYBOX, Sandbox, eventually } from '../../helpers/sandbox.js';
import { sample, scrapeSocket } from '../../helpers/metrics.js';
import { DEFAULT_NETNS_POOL as POOL } from '../../../src/constants.js';

/** Inodes of the network namespaces a process holds open (`net:[ino]` descriptors). */
function heldNetns(pid: number): Set<number> {
  const out = new Set<number>();
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out; // gone
  }
  for (const fd of fds) {
    try {
      const m = /^net:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(Number(m[1]));
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** The daemon's pool: the namespaces it holds open that are neither its own nor a container's. */
function poolOf(sb: Sandbox): Set<number> {
  const own = new Set([fs.statSync(sb.hostNs).ino]);
  for (const name of fs.existsSync(sb.netnsDir) ? fs.readdirSync(sb.netnsDir) : []) {
    try {
      own.add(fs.statSync(path.join(sb.netnsDir, name)).ino);
    } catch {
      /* removed meanwhile */
    }
  }
  return new Set([...heldNetns(sb.daemonPid!)].filter((ino) => !own.has(ino)));
}

/**
 * Which of these namespaces something of this sandbox still holds: a mount under its root, or a
 * descriptor of one of its processes (those in its host namespace or a container's, where the
 * daemon and its children run). Nothing wider: the kernel reuses a freed namespace's inode number
 * at once, so a namespace another test makes meanwhile may carry one of these numbers.
 */
function sandboxHolds(sb: Sandbox, inodes: Set<number>): number[] {
  const found = new Set<number>();
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [, , , root, mountPoint] = line.split(' ');
    const m = /^net:\[(\d+)\]$/.exec(root ?? '');
    if (m && mountPoint?.startsWith(sb.root + '/') && inodes.has(Number(m[1]))) found.add(Number(m[1]));
  }
  const places = new Set([fs.statSync(sb.hostNs).ino, ...fs.readdirSync(sb.netnsDir).map((n) => fs.statSync(path.join(sb.netnsDir, n)).ino)]);
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (!places.has(fs.statSync(`/proc/${pid}/ns/net`).ino)) continue;
    } catch {
      continue; // gone
    }
    for (const ino of heldNetns(Number(pid))) if (inodes.has(ino)) found.add(ino);
  }
  return [...found];
}

/** Mounts under a directory. */
const mountsUnder = (dir: string) =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.split(' ')[4]?.startsWith(dir + '/')).length;

const legacyDir = (sb: Sandbox) => path.join(sb.root, 'state', 'run', 'netns-pool');

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
    const held = poolOf(sb);
    await sb.berthOk('run', '-d', '--name', 'a', '--', BUSYBOX, 'sleep', '3600');
    const a = await check('a');
    assert.ok(held.has(a.ino), `a's namespace (inode ${a.ino}) is one the pool held (${[...held]})`);
    assert.deepEqual({ reaches: a.reaches, v6off: a.v6off, loUp: a.loUp }, { reaches: true, v6off: '1', loUp: true });
    assert.ok(await eventually(() => poolOf(sb).size === POOL, 10_000), `the pool refills to ${POOL}`);
    assert.ok(!poolOf(sb).has(a.ino), 'the taken namespace is no longer in the pool');
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

  test("a killed daemon leaves nothing of its pool; an earlier build's pool files go at start", async () => {
    assert.ok(await eventually(() => poolOf(sb).size === POOL, 10_000));
    const pooled = poolOf(sb);
    assert.deepEqual(sandboxHolds(sb, pooled).sort(), [...pooled].sort(), 'positive control: the scan finds the pool in the daemon');
    const aIno = (await check('a')).ino;
    await sb.stopDaemon('SIGKILL');
    assert.deepEqual(sandboxHolds(sb, pooled), [], 'no process and no mount holds a pooled namespace after the kill');
    // What a crashed daemon of an earlier build left: a namespace bind-mounted in its pool directory.
    fs.mkdirSync(legacyDir(sb), { recursive: true });
    const leftover = path.join(legacyDir(sb), 'left-by-a-crash');
    fs.writeFileSync(leftover, '');
    await sb.inHost('unshare', [`--net=${leftover}`, 'true'], 10_000);
    assert.equal(mountsUnder(legacyDir(sb)), 1, 'the leftover is mounted');
    await sb.startDaemon();
    assert.ok(await eventually(() => poolOf(sb).size === POOL, 10_000), 'the new daemon fills its own pool');
    assert.equal(fs.existsSync(legacyDir(sb)), false, "the earlier build's pool directory is gone");
    assert.equal(mountsUnder(legacyDir(sb)), 0, 'and its mount with it');
    const a = await check('a');
    assert.equal(a.ino, aIno, "a running container's namespace is untouched");
    assert.equal(a.reaches, true);
  });

  test('--netns-pool 0 keeps none, and starts make their own namespaces (control)', async () => {
    await sb.stopDaemon('SIGTERM');
    await sb.startDaemon(['--netns-pool', '0']);
    await sb.berthOk('run', '-d', '--name', 'c', '--', BUSYBOX, 'sleep', '3600');
    const c = await check('c');
    assert.equal(c.reaches, true);
    assert.equal(poolOf(sb).size, 0, 'no pool');
    assert.equal(fs.existsSync(legacyDir(sb)), false, 'and no pool directory');
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
