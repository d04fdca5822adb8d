/**
 * Loaded into the daemon with NODE_OPTIONS=--import=… (Node refuses --cpu-prof in NODE_OPTIONS,
 * and the test Sandbox passes no Node flags): profiles the daemon's main thread with the inspector
 * and, on each SIGUSR2, writes what it has to $BB_CPU_PROFILE_DIR and starts a new profile.
 * Does nothing in worker threads or when the variable is unset.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Session } from 'node:inspector';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.BB_CPU_PROFILE_DIR;
// The daemon's children (container processes) must not inherit the hook.
delete process.env.NODE_OPTIONS;
delete process.env.BB_CPU_PROFILE_DIR;

if (dir && isMainThread) {
  const session = new Session();
  session.connect();
  let part = 0;
  const start = () => session.post('Profiler.start');
  session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: 250 }, start));
  process.on('SIGUSR2', () => {
    session.post('Profiler.stop', (err, res) => {
      const file = path.join(dir, `daemon-${process.pid}-${part++}.cpuprofile`);
      if (!err) fs.writeFileSync(`${file}.tmp`, JSON.stringify(res.profile));
      if (!err) fs.renameSync(`${file}.tmp`, file);
      start();
    });
  });
}
