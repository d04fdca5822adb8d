/**
 * `berth ui` and `GET /berth/topology` without a browser, in a sandbox: bad --listen values are
 * refused with what to do, a non-loopback address is served only with a warning, the server
 * answers only to its own Host and forwards only the page's calls, an unreachable daemon is named,
 * and the topology reports a veth host end the kernel has down (and up again, the control).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { BUSYBOX, Sandbox, eventually, must } from '../../helpers/sandbox.js';
import { runUi, startUi, stopAll, type UiProcess } from './in-sandbox.js';

interface TopologyJson {
  containers: { name: string; endpoints: { ifname: string; interface: { present: boolean; up?: boolean }; hostLink: { name: string; present: boolean; up?: boolean } | null }[] }[];
}

describe('berth ui server and the topology data', () => {
  let sb: Sandbox;
  const started: UiProcess[] = [];

  /** curl in the sandbox host namespace: status code and body. */
  async function curl(args: string[]): Promise<{ status: number; body: string }> {
    const r = must(await sb.inHost('curl', ['-s', '-o', '-', '-w', '\n%{http_code}', '--max-time', '5', ...args]), `curl ${args.join(' ')}`);
    const cut = r.lastIndexOf('\n');
    return { status: Number(r.slice(cut + 1)), body: r.slice(0, cut) };
  }

  const topology = async () => JSON.parse(must(await sb.inHost('curl', ['-s', '--max-time', '5', '--unix-socket', sb.socket, 'http://berth/berth/topology']), 'topology')) as TopologyJson;

  before(async () => {
    sb = await Sandbox.create('us');
    await sb.berthOk('network', 'create', 'usnet');
    await sb.berthOk('run', '-d', '--name', 'one', '--network', 'usnet', '--', BUSYBOX, 'sleep', '3600');
  });

  after(async () => {
    for (const ui of started) await stopAll(undefined, ui);
    await sb?.destroy();
  });

  test('a bad --listen is refused, naming the value and the form to use', async () => {
    for (const [value, why] of [
      ['8088', /HOST:PORT/],
      ['127.0.0.1:99999', /out of range/],
      ['example.com:8088', /not an IP address/],
    ] as const) {
      const r = await runUi(sb, ['--listen', value]);
      assert.equal(r.code, 1, `${value}: ${r.output}`);
      assert.match(r.output, new RegExp(`invalid --listen "${value.replace(/[.]/g, '\\.')}"`));
      assert.match(r.output, why);
    }
  });

  test('a non-loopback --listen is served, with a warning', async () => {
    const ui = await startUi(sb, ['--listen', '0.0.0.0:8090']);
    started.push(ui);
    assert.match(ui.output(), /warning: --listen 0\.0\.0\.0:8090 is not a loopback address/);
    assert.equal((await curl(['http://127.0.0.1:8090/api/topology'])).status, 200);
  });

  test('on loopback: the page and its calls are served; another Host, another path or a bad name are not', async () => {
    const ui = await startUi(sb, ['--listen', '127.0.0.1:8089']);
    started.push(ui);
    assert.doesNotMatch(ui.output(), /warning/);
    const page = await curl([ui.url]);
    assert.equal(page.status, 200);
    assert.match(page.body, /<script src="\/vendor\/cytoscape\.min\.js">/);
    for (const asset of ['app.js', 'graph-elements.js', 'vendor/cytoscape.min.js', 'vendor/cytoscape-dagre.js']) {
      assert.equal((await curl([`${ui.url}${asset}`])).status, 200, asset);
    }
    const inspect = await curl([`${ui.url}api/containers/one/json`]);
    assert.equal(inspect.status, 200);
    assert.equal((JSON.parse(inspect.body) as { Name: string }).Name, '/one');
    // A page on another origin that rebinds its name to 127.0.0.1 gets nothing.
    const rebound = await curl(['-H', 'Host: attacker.example:8089', `${ui.url}api/topology`]);
    assert.equal(rebound.status, 421);
    const foreignPost = await curl(['-X', 'POST', '-H', 'Origin: http://attacker.example', '-H', 'Content-Type: application/json', '-d', '{"from":"one","to":"one"}', `${ui.url}api/trace`]);
    assert.equal(foreignPost.status, 403);
    assert.match(foreignPost.body, /origin http:\/\/attacker\.example refused/);
    const other = await curl([`${ui.url}api/networks`]);
    assert.equal(other.status, 404);
    const badName = await curl([`${ui.url}api/containers/..%2Fnetworks/json`]);
    assert.equal(badName.status, 400);
    assert.match(badName.body, /invalid container name/);
  });

  test('an unreachable daemon is named in the answer', async () => {
    const socket = path.join(sb.root, 'no-daemon.sock');
    const ui = await startUi(sb, ['--listen', '127.0.0.1:8091'], { ...process.env, BERTH_HOST: `unix://${socket}` });
    started.push(ui);
    // Said right after the "serving" line, once the daemon's ping failed.
    assert.ok(await eventually(() => /warning: cannot reach the berth daemon/.test(ui.output()), 5000), ui.output());
    const r = await curl([`${ui.url}api/topology`]);
    assert.equal(r.status, 502);
    assert.match(r.body, new RegExp(`cannot reach the berth daemon at unix://${socket.replace(/[.]/g, '\\.')}`));
  });

  test('the topology reports what the kernel has: a veth host end set down shows down, and up again', async () => {
    const endpointOf = async () => (await topology()).containers.find((c) => c.name === 'one')!.endpoints[0]!;
    const before = await endpointOf();
    assert.deepEqual({ present: before.interface.present, up: before.interface.up }, { present: true, up: true });
    const veth = before.hostLink!;
    assert.deepEqual({ present: veth.present, up: veth.up }, { present: true, up: true });
    must(await sb.inHost('ip', ['link', 'set', veth.name, 'down']), 'veth down');
    try {
      const down = (await endpointOf()).hostLink!;
      assert.deepEqual({ name: down.name, present: down.present, up: down.up }, { name: veth.name, present: true, up: false });
    } finally {
      must(await sb.inHost('ip', ['link', 'set', veth.name, 'up']), 'veth up');
    }
    assert.equal((await endpointOf()).hostLink!.up, true);
  });
});
