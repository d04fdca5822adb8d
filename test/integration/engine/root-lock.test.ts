/**
 * Issue 10 item 15: two daemons on one root are prevented. A second daemon on a root in use (its
 * own socket, another namespace) exits non-zero naming the root and the first daemon's PID, and
 * touches nothing; once the first is gone, a daemon starts on that root normally.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { BERTH, BUSYBOX, Sandbox, run } from '../../helpers/sandbox.js';

describe('one daemon per root', () => {
  let first: Sandbox;
  let other: Sandbox;
  before(async () => {
    first = await Sandbox.create('l');
    other = await Sandbox.create('o', { startDaemon: false });
    await first.berthOk('run', '-d', '--name', 'keep', '--', BUSYBOX, 'sleep', '3600');
  });
  after(async () => {
    await other?.destroy();
    await first?.destroy();
  });

  const root = () => path.join(first.root, 'state');
  const secondDaemon = () =>
    run('nsenter', [`--net=${other.hostNs}`, '--', process.execPath, BERTH, 'daemon', '--root', root(), '--host', `unix://${other.socket}`], { timeoutMs: 8000 });

  test('a second daemon on the same root exits non-zero, naming the root and the holder, and changes nothing', async () => {
    const r = await secondDaemon();
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, /timed out/, 'it exits at once instead of serving');
    assert.match(r.stderr, new RegExp(`PID ${first.daemonPid}\\b`));
    assert.ok(r.stderr.includes(root()), r.stderr);
    const keep = await first.inspect('keep');
    assert.equal(keep.State.Status, 'running');
    assert.equal((await first.inNs(keep.NetworkSettings.SandboxKey, BUSYBOX, ['ping', '-c', '1', '-W', '2', '172.17.0.1'])).code, 0, 'the first daemon’s container is intact');
  });

  test('positive control: once the first daemon stops, a daemon starts on that root', async () => {
    await first.stopDaemon();
    const child = run('nsenter', [`--net=${first.hostNs}`, '--', process.execPath, BERTH, 'daemon', '--root', root(), '--host', `unix://${first.socket}`, '--resolv-conf', first.resolvConf], { timeoutMs: 4000 });
    const r = await child;
    assert.match(r.stderr, /daemon ready/, r.stderr);
    // The time bound's SIGTERM stops it: it exits non-zero ("timed out") or shuts down cleanly
    // and logs the signal (then execFile sees exit 0 and reports no time-out).
    assert.match(r.stderr, /timed out|daemon stopping.*SIGTERM/, `it kept serving until the test stopped it: ${r.stderr}`);
  });
});
