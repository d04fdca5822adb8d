// Runs the compiled tests with node's test runner: unit tests first, then the integration tests,
// which need root and create their own sandbox namespaces. Node's TAP output (ending with its
// "# pass N" / "# fail N" summary) goes to stdout; then every skipped test is listed with its
// reason, so a missing kernel feature can never pass silently.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

function files(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(files(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const only = process.argv.slice(2);
const pick = (list) => (only.length ? list.filter((f) => only.some((o) => f.includes(o))) : list);
const unit = pick(files('dist/test/unit'));
const integration = pick([...files('dist/test/integration'), ...files('dist/test/e2e')]);
if (integration.length && process.getuid() !== 0) {
  console.error('integration tests need root (they create network namespaces)');
  process.exit(1);
}
const all = [...unit, ...integration];
const work = mkdtempSync(join(tmpdir(), 'berth-test-run-'));
const skipsFile = join(work, 'skips.jsonl');
const skipsReporter = fileURLToPath(new URL('./test-skips-reporter.mjs', import.meta.url));
const result = spawnSync(
  process.execPath,
  [
    '--test', '--test-concurrency=2', '--test-timeout=300000',
    '--test-reporter=tap', '--test-reporter-destination=stdout',
    `--test-reporter=${skipsReporter}`, `--test-reporter-destination=${skipsFile}`,
    ...all,
  ],
  { stdio: 'inherit' },
);
let skips = [];
try {
  skips = readFileSync(skipsFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
} catch {
  // No file: the runner died before reporting anything; its exit status says so below.
}
rmSync(work, { recursive: true, force: true });
const skipReport = [skips.length ? `${skips.length} skipped, with their reasons:` : 'no test was skipped', ...skips.map(({ test, reason }) => `skipped: ${test} — ${reason}`)].join('\n');
console.log(skipReport);
// .ci/run repeats the list at the very end of its log, after the benchmark smoke run.
if (process.env.BERTH_TEST_SKIPS_OUT) writeFileSync(process.env.BERTH_TEST_SKIPS_OUT, `${skipReport}\n`);
process.exit(result.status ?? 1);
