/**
 * A daemon killed between spawning a container's process and recording its PID must not leave that
 * process running once the container's namespace goes (found by the crash-safety test): processes
 * left in a berth container namespace die with it, whether the container is reaped later (no PID
 * on record) or its record is gone and the reconciler drops the namespace. Nor may a child that
 * daemonized out of the container's process tree outlive `rm -f` or `stop`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { BUSYBOX, Sandbox, eventually } from '../../helpers/sandbox.js';

const alive = (pid: number) => {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

describe('no process outlives its container namespace', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create('sp');
    await sb.berthOk('network', 'create', 'spnet');
  });
  after(async () => {
    await sb?.destroy();
  });

  const db = (fn: (d: Database.Database) => void) => {
    const d = new Database(path.join(sb.root, 'state', 'berth.db'));
    try {
      fn(d);
    } finally {
      d.close();
    }
  };

  test('a running container whose PID was never recorded gets it back at start-up, and stop ends it', async () => {
    await sb.berthOk('run', '-d', '--name', 'unrecorded', '--network', 'spnet', '--', 'sleep', '3600');
    const { Id, State } = await sb.inspect('unrecorded');
    await sb.stopDaemon('SIGKILL');
    assert.ok(alive(State.Pid), 'control: the process runs on after the daemon died');
    db((d) => d.prepare('UPDATE containers SET pid = NULL, pid_start = NULL WHERE id = ?').run(Id));
    await sb.startDaemon();
    const after = await sb.inspect('unrecorded');
    assert.equal(after.State.Running, true);
    assert.equal(after.State.Pid, State.Pid, 'the process found in its namespace is the container\'s again');
    await sb.berthOk('stop', 'unrecorded');
    assert.ok(await eventually(() => !alive(State.Pid), 5000, 100), 'and berth stop ends it');
  });

  /** The PID of the busybox httpd that daemonized out of `name`'s process tree, once it serves. */
  const escapedHttpd = async (name: string, www: string): Promise<number> => {
    const netns = await sb.netnsOf(name);
    const ino = fs.statSync(netns).ino;
    assert.ok(await eventually(async () => (await sb.inNs(netns, 'curl', ['-s', '--max-time', '2', 'http://127.0.0.1/'])).stdout.includes('escaped'), 5000), `${name}'s daemonized httpd serves`);
    const pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
      try {
        return fs.statSync(`/proc/${pid}/ns/net`).ino === ino && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('httpd') && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(www);
      } catch {
        return false;
      }
    });
    assert.equal(pids.length, 1, `one httpd in ${name}'s namespace: ${pids}`);
    return pids[0]!;
  };

  for (const how of [['rm', '-f'], ['stop']]) {
    test(`a child that daemonized out of the container's process tree dies with it (berth ${how.join(' ')})`, async () => {
      const name = `escaper-${how[0]}`;
      const www = path.join(sb.root, `www-${name}`);
      fs.mkdirSync(www, { recursive: true });
      fs.writeFileSync(path.join(www, 'index.html'), 'escaped\n');
      // httpd without -f forks into the background, in a session of its own, and its parent exits.
      await sb.berthOk('run', '-d', '--name', name, '--network', 'spnet', '--', '/bin/sh', '-c', `${BUSYBOX} httpd -p 80 -h ${www}; exec sleep 3600`);
      const { State } = await sb.inspect(name);
      const httpd = await escapedHttpd(name, www);
      assert.notEqual(httpd, State.Pid, 'control: the httpd is not the container\'s recorded process');
      await sb.berthOk(...how, name);
      assert.ok(await eventually(() => !alive(httpd), 5000, 100), `the daemonized httpd (pid ${httpd}) is gone after berth ${how.join(' ')}`);
      assert.ok(!alive(State.Pid));
    });
  }

  test('a namespace no container record claims: dropped by the reconciler, its process killed', async () => {
    await sb.berthOk('run', '-d', '--name', 'forgotten', '--network', 'spnet', '--', 'sleep', '3600');
    const { Id, State } = await sb.inspect('forgotten');
    await sb.stopDaemon('SIGKILL');
    db((d) => {
      d.prepare('DELETE FROM endpoints WHERE container_id = ?').run(Id);
      d.prepare('DELETE FROM containers WHERE id = ?').run(Id);
    });
    assert.ok(alive(State.Pid));
    await sb.startDaemon();
    assert.ok(await eventually(() => !alive(State.Pid), 5000, 100), 'the stray process is killed at start-up');
    assert.ok(!fs.existsSync(path.join(sb.netnsDir, Id)), 'and its namespace is gone');
    assert.match(sb.daemonLog, /killed processes left in a dropped container namespace/);
  });
});
