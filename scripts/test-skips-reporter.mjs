// A node:test reporter that writes one JSON line per skipped test or suite ({ test, reason }), so
// scripts/run-tests.mjs can list every skip and its reason after node's own summary.
import { relative } from 'node:path';

export default async function* skipsReporter(source) {
  // Names of the enclosing suites, per file (files run in parallel and their events interleave).
  const open = new Map();
  for await (const event of source) {
    const { name, nesting, file = '' } = event.data ?? {};
    if (event.type === 'test:start') {
      const stack = open.get(file) ?? [];
      stack.length = nesting;
      stack.push(name);
      open.set(file, stack);
    } else if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.skip !== undefined) {
      const path = [...(open.get(file) ?? []).slice(0, nesting), name];
      const test = `${file ? `${relative(process.cwd(), file)}: ` : ''}${path.join(' > ')}`;
      const reason = typeof event.data.skip === 'string' ? event.data.skip : '(no reason given)';
      yield `${JSON.stringify({ test, reason })}\n`;
    }
  }
}
