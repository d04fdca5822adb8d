/**
 * `npm run bench [-- --quick] [-- --only setup,scale,…] [-- --render]`: berth's benchmark against netavark,
 * the CNI reference plugins and the kernel floor, all inside sandbox namespaces. Writes
 * bench/results/latest.json and BENCHMARKS.md. A full run stays under 15 minutes; --quick takes a
 * few samples of each figure (a CI smoke run, under 2 minutes); --render only rewrites BENCHMARKS.md
 * from bench/results/latest.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeContext, type BenchContext } from './lib/context.js';
import { machineInfo } from './lib/machine.js';
import { REPORT, RESULTS_DIR } from './lib/paths.js';
import { renderReport } from './report.js';
import { dataPlane } from './sections/data-plane.js';
import { dnsBench } from './sections/dns.js';
import { macvlanBench } from './sections/macvlan.js';
import { overlayBench } from './sections/overlay.js';
import { hostSubnetsBench } from './sections/host-subnets.js';
import { routedBench } from './sections/routed.js';
import { publishedPortFailure, scale } from './sections/scale.js';
import { setupTeardown } from './sections/setup-teardown.js';
import { startup } from './sections/startup.js';
import { profile } from './sections/profile.js';
import type { BenchResults } from './results.js';

const SECTIONS = ['setup', 'scale', 'dataplane', 'dns', 'startup', 'macvlan', 'overlay', 'hostsubnets', 'routed', 'profile'] as const;
type Section = (typeof SECTIONS)[number];
/** Where each section's figures live in BenchResults. */
const RESULT_KEY = { setup: 'setup', scale: 'scale', dataplane: 'dataPlane', dns: 'dns', startup: 'startup', macvlan: 'macvlan', overlay: 'overlay', hostsubnets: 'hostSubnets', routed: 'routed', profile: 'profile' } as const satisfies Record<Section, keyof BenchResults>;

function parseArgv(argv: string[]): { quick: boolean; only: Set<Section>; out?: string } {
  const quick = argv.includes('--quick');
  const onlyArg = argv.find((a) => a.startsWith('--only'));
  let only = new Set<Section>(SECTIONS);
  if (onlyArg) {
    const value = onlyArg.includes('=') ? onlyArg.split('=')[1]! : argv[argv.indexOf(onlyArg) + 1] ?? '';
    const picked = value.split(',').filter(Boolean);
    for (const p of picked) if (!(SECTIONS as readonly string[]).includes(p)) throw new Error(`unknown section ${p}: use ${SECTIONS.join(', ')}`);
    only = new Set(picked as Section[]);
  }
  return { quick, only };
}

async function section<T>(ctx: BenchContext, name: string, results: BenchResults, fn: () => Promise<T>): Promise<T | undefined> {
  const t0 = Date.now();
  const errors = results.errors;
  results.load[name] = os.loadavg().map((l) => Math.round(l * 100) / 100);
  ctx.log(`${name}: start (${Math.round(ctx.left() / 1000)} s left)`);
  try {
    return await fn();
  } catch (err) {
    errors[name] = (err as Error).stack ?? String(err);
    ctx.log(`${name}: FAILED: ${(err as Error).message}`);
    return undefined;
  } finally {
    ctx.log(`${name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

async function main(): Promise<void> {
  // --render: rewrite BENCHMARKS.md from the last results (e.g. after editing bench/analysis.md).
  if (process.argv.includes('--render')) {
    const results = JSON.parse(fs.readFileSync(path.join(RESULTS_DIR, 'latest.json'), 'utf8')) as BenchResults;
    fs.writeFileSync(REPORT, renderReport(results));
    return;
  }
  if (process.getuid?.() !== 0) throw new Error('the bench needs root: it creates network namespaces');
  // --smoke (CI): a quick run that writes bench/results/smoke.json, leaves BENCHMARKS.md alone, and
  // fails when any section failed, so the bench cannot rot unnoticed.
  const smoke = process.argv.includes('--smoke');
  const { quick: quickArg, only } = parseArgv(process.argv.slice(2));
  const quick = quickArg || smoke;
  const ctx = makeContext(quick, quick ? 110_000 : 14 * 60_000);
  const started = new Date();
  const errors: Record<string, string> = {};
  const results: BenchResults = { mode: quick ? 'quick' : 'full', started: started.toISOString(), machine: await machineInfo(), errors, load: {} };

  // Scale runs late: tearing down hundreds of namespaces keeps the kernel busy for a while after.
  if (only.has('setup')) results.setup = await section(ctx, 'setup', results, () => setupTeardown(ctx));
  if (only.has('dataplane')) results.dataPlane = await section(ctx, 'dataplane', results, () => dataPlane(ctx));
  if (only.has('dns')) results.dns = await section(ctx, 'dns', results, () => dnsBench(ctx));
  if (only.has('startup')) results.startup = await section(ctx, 'startup', results, () => startup(ctx));
  if (only.has('macvlan')) results.macvlan = await section(ctx, 'macvlan', results, () => macvlanBench(ctx));
  if (only.has('overlay')) results.overlay = await section(ctx, 'overlay', results, () => overlayBench(ctx));
  if (only.has('hostsubnets')) results.hostSubnets = await section(ctx, 'hostsubnets', results, () => hostSubnetsBench(ctx));
  if (only.has('routed')) results.routed = await section(ctx, 'routed', results, () => routedBench(ctx));
  if (only.has('scale')) {
    results.scale = await section(ctx, 'scale', results, () => scale(ctx));
    const failure = publishedPortFailure(results.scale?.publishedPort);
    if (failure) {
      errors.scale = failure;
      ctx.log(`scale: FAILED: ${failure}`);
    }
  }
  if (only.has('profile')) results.profile = await section(ctx, 'profile', results, () => profile(ctx));

  results.durationS = Math.round((Date.now() - started.getTime()) / 100) / 10;
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, smoke ? 'smoke.json' : 'latest.json');
  const partial = only.size < SECTIONS.length;
  const previous = partial && !smoke && fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResults) : undefined;
  const written = previous ? mergeInto(previous, results, [...only]) : results;
  fs.writeFileSync(file, `${JSON.stringify(written, null, 2)}\n`);
  // A partial run with no full results to merge into would turn BENCHMARKS.md into "Not run." for
  // every other section: it leaves the report alone.
  const render = !smoke && SECTIONS.every((s) => written[RESULT_KEY[s]] !== undefined || written.errors[s] !== undefined);
  if (render) fs.writeFileSync(REPORT, renderReport(written));
  ctx.log(`wrote ${file}${previous ? ` (merged: ${[...only].join(', ')})` : ''}${render ? ` and ${REPORT}` : ''} (${results.durationS} s)`);
  await leftovers(ctx);
  if (smoke && Object.keys(errors).length > 0) {
    console.log(`bench smoke: 0 passed, ${Object.keys(errors).length} failed`);
    process.exitCode = 1;
  }
}

/**
 * A partial run (`--only`) replaces just its sections in the last results, which keep the rest and
 * say which sections were re-run when (the report prints it).
 */
function mergeInto(previous: BenchResults, run: BenchResults, sections: Section[]): BenchResults {
  const merged: BenchResults = { ...previous, errors: { ...previous.errors }, load: { ...previous.load } };
  for (const s of sections) {
    const key = RESULT_KEY[s];
    (merged as unknown as Record<string, unknown>)[key] = run[key];
    delete merged.errors[s];
    if (run.errors[s]) merged.errors[s] = run.errors[s];
    if (run.load[s]) merged.load[s] = run.load[s];
  }
  // An earlier re-run whose sections this run all replaces no longer describes any figure.
  const still = (previous.rerun ?? []).filter((rr) => !rr.sections.every((s) => sections.includes(s as Section)));
  merged.rerun = [...still, { sections, started: run.started, mode: run.mode, loadAvgAtStart: run.machine.loadAvgAtStart }];
  return merged;
}

/** Reports any `bb-` namespace still present: every section should have removed its own. */
async function leftovers(ctx: BenchContext): Promise<void> {
  const left = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns').filter((n) => n.startsWith('bb-')) : [];
  if (left.length) ctx.log(`WARNING: namespaces left behind: ${left.join(' ')}`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
