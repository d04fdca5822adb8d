/**
 * The kernel worker always comes back to the daemon's namespace, whatever its first call is.
 * Regression: "home" was taken lazily inside withNetns, after entering the target namespace, so a
 * worker whose first namespace call was a withNetns (a CNI ADD on a fresh daemon) stayed in the
 * container's namespace, and later host work (sysctls, new sockets) landed there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO, must, run } from '../../helpers/sandbox.js';

const script = `
const { Kernel } = await import(${JSON.stringify(path.join(REPO, 'dist/src/kernel/kernel.js'))});
const k = new Kernel();
await k.call('inspect', { netnsPath: process.argv[2] });
const view = await k.call('inspect', {});
console.log(JSON.stringify(view.links.map((l) => l.name)));
await k.close();
`;

describe('kernel worker namespace', () => {
  const hostNs = `bkw${process.pid % 100000}h`;
  const otherNs = `bkw${process.pid % 100000}o`;
  before(async () => {
    for (const ns of [hostNs, otherNs]) must(await run('ip', ['netns', 'add', ns]), 'netns');
    must(await run('ip', ['-n', hostNs, 'link', 'add', 'home-mark', 'type', 'veth', 'peer', 'name', 'home-peer']), 'marker link');
  });
  after(async () => {
    for (const ns of [hostNs, otherNs]) await run('ip', ['netns', 'del', ns]);
  });

  test('after a first call inside another namespace, host calls still see the host', async () => {
    // A file, not -e: the worker thread inherits the process's exec arguments.
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'berth-kw-')), 'probe.mjs');
    fs.writeFileSync(file, script);
    const r = await run('nsenter', [`--net=/run/netns/${hostNs}`, '--', process.execPath, file, `/run/netns/${otherNs}`]);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    assert.equal(r.code, 0, r.stderr);
    const links = JSON.parse(r.stdout) as string[];
    assert.ok(links.includes('home-mark'), `host links: ${links.join(', ')}`);
  });
});
