/**
 * Where berth's time goes: a daemon started with a CPU profiler on its main thread (see
 * tools/cpu-profile-preload.ts), driven through the same operations as §1, §2 and §5, one
 * profile per phase:
 * - start-up: module loading, opening the store, the first reconcile and ruleset, one network;
 * - steady: network-only setup + teardown cycles, then cycles that spawn the process;
 * - DNS: container-name and forwarded-name query loads (32 in flight);
 * - crowded: the same network-only cycles with N other containers (one port each) present.
 * Each cycle phase also gets the daemon's own per-operation durations and the client-side times,
 * so the HTTP share shows. The profiler adds overhead; these runs are not the headline figures.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchContext } from '../lib/context.js';
import { daemonOps } from '../lib/context.js';
import { BerthHost } from '../lib/berth.js';
import { summarizeProfile, type ProfileSummary } from '../lib/cpu-profile.js';
import { sleep } from '../lib/exec.js';
import { addPeer } from '../lib/links.js';
import { RESULTS_DIR, REPO, tool } from '../lib/paths.js';
import { runTool, startNodeServer } from '../lib/procs.js';
import { Scope } from '../lib/scope.js';
import { summarize, type Summary } from '../lib/stats.js';
import type { DnsRun } from './dns.js';

export interface ProfilePhase {
  name: string;
  /** Operations in the phase: setup + teardown cycles, or answered DNS queries. */
  ops: number;
  opLabel: string;
  /** Containers present besides the ones the phase works with. */
  others: number;
  client?: { setup: Summary; teardown: Summary };
  daemon?: Record<string, Summary>;
  dns?: DnsRun;
  profile?: ProfileSummary;
  /** Daemon main-thread CPU per operation, ms. */
  busyMsPerOp?: number;
}

export interface ProfileResult {
  dir: string;
  phases: ProfilePhase[];
}

export async function profile(ctx: BenchContext): Promise<ProfileResult> {
  const scope = new Scope('profile');
  const dir = path.join(RESULTS_DIR, 'profiles');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  try {
    const berth = await BerthHost.createStopped(scope, 'bbp');
    const up = await addPeer(scope, berth.hostNsName, 'bb-up-prof', '10.254.4');
    await startNodeServer(scope, up.nsPath, 'fake-resolver', ['--address', up.address]);
    fs.writeFileSync(berth.sb.resolvConf, `nameserver ${up.address}\n`);
    await berth.startTimed({ NODE_OPTIONS: `--import=${pathToFileURL(tool('cpu-profile-preload')).href}`, BB_CPU_PROFILE_DIR: dir });
    await berth.createNetwork('bb-prof', '10.85.0.0/16');
    const pid = berth.sb.daemonPid!;
    let part = 0;
    const cut = async (): Promise<ProfileSummary | undefined> => {
      const file = path.join(dir, `daemon-${pid}-${part++}.cpuprofile`);
      process.kill(pid, 'SIGUSR2');
      for (let k = 0; k < 200 && !fs.existsSync(file); k++) await sleep(50);
      return fs.existsSync(file) ? summarizeProfile(file) : undefined;
    };
    const phases: ProfilePhase[] = [];
    const startProfile = await cut();
    phases.push({ name: 'daemon start-up, then one network create', ops: 1, opLabel: 'start', others: 0, profile: startProfile, busyMsPerOp: startProfile?.busyMs });

    const cycles = async (name: string, n: number, netOnly: boolean, others: number) => {
      const logStart = berth.sb.daemonLog.length;
      const setup: number[] = [];
      const teardown: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = await berth.setup({ network: 'bb-prof', ports: [{ hostPort: 9000, containerPort: 80 }], netOnly });
        setup.push(t.ms);
        teardown.push(await berth.teardown(t.id));
      }
      const prof = await cut();
      const ops = daemonOps(berth.sb.daemonLog.slice(logStart));
      const daemon: Record<string, Summary> = {};
      for (const msg of ['container create', 'container start', 'container rm']) {
        const list = ops.filter((o) => o.msg === msg).map((o) => o.ms);
        if (list.length) daemon[msg] = summarize(list);
      }
      phases.push({
        name,
        ops: n,
        opLabel: 'setup + teardown cycle',
        others,
        client: { setup: summarize(setup), teardown: summarize(teardown) },
        daemon,
        profile: prof,
        busyMsPerOp: prof ? Math.round((prof.busyMs / n) * 100) / 100 : undefined,
      });
      ctx.log(`profile ${name}: ${n} cycles`);
    };

    await cycles('steady, network only', ctx.quick ? 20 : 200, true, 0);
    await cycles('steady, with process', ctx.quick ? 5 : 40, false, 0);

    const target = await berth.setup({ name: 'bb-prof-target', network: 'bb-prof', netOnly: true });
    const asker = await berth.setup({ name: 'bb-prof-client', network: 'bb-prof', netOnly: true });
    for (const id of [target.id, asker.id]) await berth.adopt(id, berth.placeholderPid());
    const askerNs = (await berth.info(asker.id)).netns;
    await cut();
    for (const [kind, name] of [
      ['container name', 'bb-prof-target'],
      ['forwarded name', 'fwd.bench.test'],
    ] as const) {
      const run = await runTool<DnsRun>(askerNs, 'dns-load', ['--server', '10.85.0.1', '--name', name, '--window', '32', '--duration', ctx.quick ? '700' : '3000']);
      const prof = await cut();
      phases.push({ name: `DNS, ${kind}`, ops: run.answered, opLabel: 'query', others: 2, dns: run, profile: prof, busyMsPerOp: prof && run.answered ? Math.round((prof.busyMs / run.answered) * 1000) / 1000 : undefined });
      ctx.log(`profile DNS ${kind}: ${run.answered} answers`);
    }

    const crowd = ctx.quick ? 100 : Math.min(1000, Math.max(100, Math.floor(ctx.left() / 60)));
    const placeholder = berth.placeholderPid();
    for (let i = 1; i <= crowd; i++) {
      const t = await berth.setup({ network: 'bb-prof', ports: [{ hostPort: 20000 + i, containerPort: 80 }], netOnly: true });
      await berth.adopt(t.id, placeholder);
    }
    await cut(); // drop the filling itself
    await cycles(`crowded, network only`, ctx.quick ? 20 : 100, true, crowd + 2);
    return { dir: path.relative(REPO, dir), phases };
  } finally {
    await scope.close();
  }
}
