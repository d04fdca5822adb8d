import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnExec } from '../../../bench/lib/spawn-exec.js';

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const opts = { env, timeoutMs: 10_000 };

test('input reaches the child and its output comes back', () => {
  const r = spawnExec('cat', [], { ...opts, input: '{"cniVersion":"1.0.0"}' });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '{"cniVersion":"1.0.0"}');
  assert.ok(r.ms > 0);
});

test('exit code, stdout and stderr are kept apart', () => {
  const r = spawnExec('sh', ['-c', 'echo out; echo err >&2; exit 3'], opts);
  assert.deepEqual([r.code, r.stdout, r.stderr], [3, 'out\n', 'err\n']);
});

test('the environment given is the whole environment', () => {
  const r = spawnExec('sh', ['-c', 'echo "$CNI_COMMAND:${HOME:-none}"'], { ...opts, env: { ...env, CNI_COMMAND: 'ADD' } });
  assert.equal(r.stdout, 'ADD:none\n');
});

test('output larger than a pipe holds is read whole', () => {
  const r = spawnExec('head', ['-c', '300000', '/dev/zero'], opts);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.length, 300000);
});

test('a command that cannot start gives 127 and says why', () => {
  const r = spawnExec('berth-no-such-command', [], opts);
  assert.equal(r.code, 127);
  assert.match(r.stderr, /posix_spawnp berth-no-such-command: errno 2/);
});

test('the child gets default signal dispositions (Node ignores SIGPIPE)', () => {
  const r = spawnExec('sh', ['-c', 'kill -PIPE $$'], opts);
  assert.equal(r.code, 128 + 13);
});

test('a child past its time is killed', () => {
  const r = spawnExec('sleep', ['5'], { env, timeoutMs: 200 });
  assert.equal(r.code, 128 + 9);
  assert.match(r.stderr, /killed after 200 ms/);
  assert.ok(r.ms < 4000, `took ${r.ms} ms`);
});

test('a process the child leaves behind with its stdout is not waited for', () => {
  // The background sleep keeps stdout open; the shell itself exits at once.
  const r = spawnExec('sh', ['-c', 'sleep 3 & echo $!'], opts);
  const leftBehind = Number(r.stdout.trim());
  try {
    assert.equal(r.code, 0);
    assert.ok(leftBehind > 0, `no pid in ${JSON.stringify(r.stdout)}`);
    assert.ok(r.ms < 2500, `took ${r.ms} ms`);
  } finally {
    if (leftBehind > 0) process.kill(leftBehind, 'SIGKILL');
  }
});
