// Runs the compiled tests with node's test runner: unit tests first, then the integration tests,
// which need root and create their own sandbox namespaces.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

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
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...all], { stdio: 'inherit' });
process.exit(result.status ?? 1);
