/**
 * A daemon killed between spawning a container's process and recording its PID must not leave that
 * process running once the container's namespace goes (found by the crash-safety test): processes
 * left in a berth container namespace die with it, whether the container is reaped later (no PID
 * on record) or its record is gone and the reconciler drops the namespace.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { Sandbox, eventually } from '../../helpers/sandbox.js';

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
