/**
 * Issue 15's topology page in a real browser: a sandbox daemon with two containers on a user
 * network, `berth ui` and chromium both in the sandbox host namespace. The page draws both
 * containers with their interfaces and veth host ends, follows a third one coming and going
 * within a second each, shows a clicked container's inspect, and sends a trace for two selected
 * containers. A screenshot is kept under the sandbox root and copied to /tmp/berth-topology.png.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { BUSYBOX, Sandbox, sleep } from '../../helpers/sandbox.js';
import { chromiumMissing, launchChromium, startUi, stopAll, type UiProcess } from './in-sandbox.js';

const SCREENSHOT_COPY = '/tmp/berth-topology.png';
/** The page must follow a change within this long (from the moment the CLI command returned). */
const LIVE_BOUND_MS = 1000;

interface DrawnNode {
  id: string;
  kind: string;
  name: string;
  bad: boolean;
}

/** The graph's nodes as the page holds them (window.berth.cy). */
function drawnNodes(page: Page): Promise<DrawnNode[]> {
  return page.evaluate(() => {
    const cy = (window as unknown as { berth: { cy: { nodes(): { map<T>(fn: (n: { id(): string; data(k: string): unknown }) => T): T[] } } } }).berth.cy;
    return cy.nodes().map((n) => ({ id: n.id(), kind: String(n.data('kind')), name: String(n.data('name')), bad: Boolean(n.data('bad')) }));
  });
}

const containerNames = async (page: Page) => (await drawnNodes(page)).filter((n) => n.kind === 'container').map((n) => n.name).sort();

/** Polls the page until `check` holds; returns how long it took, or undefined past `boundMs`. */
async function within(boundMs: number, check: () => Promise<boolean>): Promise<number | undefined> {
  const started = Date.now();
  // A few extra polls past the bound tell "late" from "never" in the failure message.
  while (Date.now() - started < boundMs * 3) {
    if (await check()) return Date.now() - started;
    await sleep(25);
  }
  return undefined;
}

/** Where a node is on the screen (page coordinates). */
function screenPointOf(page: Page, name: string): Promise<{ x: number; y: number }> {
  return page.evaluate((wanted) => {
    type Node = { data(k: string): unknown; renderedPosition(): { x: number; y: number } };
    const cy = (window as unknown as { berth: { cy: { nodes(sel: string): { filter(fn: (n: Node) => boolean): Node[] }; container(): HTMLElement } } }).berth.cy;
    const node = cy.nodes('[kind = "container"]').filter((n) => n.data('name') === wanted)[0];
    if (!node) throw new Error(`no container node ${wanted}`);
    const box = cy.container().getBoundingClientRect();
    const p = node.renderedPosition();
    return { x: box.left + p.x, y: box.top + p.y };
  }, name);
}

function pngSize(file: string): { width: number; height: number; bytes: number } {
  const png = fs.readFileSync(file);
  assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), `${file} is not a PNG`);
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20), bytes: png.length };
}

const missing = chromiumMissing();

describe('topology page in chromium', { skip: missing }, () => {
  let sb: Sandbox;
  let ui: UiProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;

  before(async () => {
    sb = await Sandbox.create('ui');
    await sb.berthOk('network', 'create', 'uinet');
    await sb.berthOk('run', '-d', '--name', 'web1', '--network', 'uinet', '-p', '8080:80', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'web2', '--network', 'uinet', '--', BUSYBOX, 'sleep', '3600');
    ui = await startUi(sb, ['--listen', '127.0.0.1:8088']);
    browser = await launchChromium(sb);
    page = await browser.newPage();
    await page.goto(ui.url, { waitUntil: 'load', timeout: 15_000 });
    await page.waitForFunction(() => (window as unknown as { berth?: { refreshes: number } }).berth?.refreshes, { timeout: 10_000 });
  });

  after(async () => {
    await stopAll(browser, ui);
    await sb?.destroy();
  });

  test('the page serves on the sandbox loopback and draws both containers with their interfaces and veths', async () => {
    assert.equal(new URL(ui!.url).hostname, '127.0.0.1');
    assert.deepEqual(await containerNames(page), ['web1', 'web2']);
    const nodes = await drawnNodes(page);
    const topology = await page.evaluate(() => (window as unknown as { berth: { topology: { containers: { name: string; endpoints: { ifname: string; hostLink: { name: string; present: boolean; up: boolean } | null }[] }[] } } }).berth.topology);
    for (const name of ['web1', 'web2']) {
      const c = topology.containers.find((x) => x.name === name)!;
      assert.equal(c.endpoints.length, 1);
      const hostLink = c.endpoints[0]!.hostLink!;
      // What the kernel has: the veth host end exists in the sandbox host namespace, and is up.
      assert.deepEqual({ present: hostLink.present, up: hostLink.up }, { present: true, up: true });
      assert.ok((await sb.inHost('ip', ['link', 'show', hostLink.name])).code === 0, `${hostLink.name} exists`);
      assert.ok(nodes.some((n) => n.kind === 'hostlink' && n.name === hostLink.name && !n.bad), `veth host end ${hostLink.name} drawn, healthy`);
    }
    assert.equal(nodes.filter((n) => n.kind === 'interface').length, 2, 'one interface node per container');
    assert.ok(nodes.some((n) => n.kind === 'network' && n.name === 'uinet'), 'the network is drawn');
    assert.ok(nodes.some((n) => n.kind === 'port' && n.name === '8080/tcp'), 'the published port is drawn');
  });

  test('a container started with berth run appears within 1 s, and is gone within 1 s of berth rm -f', async (t) => {
    await sb.berthOk('run', '-d', '--name', 'web3', '--network', 'uinet', '--', BUSYBOX, 'sleep', '3600');
    const appeared = await within(LIVE_BOUND_MS, async () => (await containerNames(page)).includes('web3'));
    assert.ok(appeared !== undefined && appeared <= LIVE_BOUND_MS, `web3 appeared after ${appeared ?? 'never'} ms (bound ${LIVE_BOUND_MS} ms)`);
    t.diagnostic(`web3 appeared ${appeared} ms after berth run returned`);
    await sb.berthOk('rm', '-f', 'web3');
    const gone = await within(LIVE_BOUND_MS, async () => !(await containerNames(page)).includes('web3'));
    assert.ok(gone !== undefined && gone <= LIVE_BOUND_MS, `web3 disappeared after ${gone ?? 'never'} ms (bound ${LIVE_BOUND_MS} ms)`);
    t.diagnostic(`web3 disappeared ${gone} ms after berth rm -f returned`);
    assert.deepEqual(await containerNames(page), ['web1', 'web2']);
  });

  test('clicking a container shows its inspect', async () => {
    const id = (await sb.inspect('web2')).Id;
    const at = await screenPointOf(page, 'web2');
    await page.mouse.click(at.x, at.y);
    await page.waitForFunction((wanted) => document.getElementById('inspect')?.textContent?.includes(wanted), { timeout: 5000 }, id);
    const shown = JSON.parse((await page.$eval('#inspect', (el) => el.textContent)) ?? '{}') as { Id: string; Name: string };
    assert.equal(shown.Id, id);
    assert.equal(shown.Name, '/web2');
    assert.match((await page.$eval('#inspect-title', (el) => el.textContent)) ?? '', /web2/);
  });

  test('selecting two containers sends a trace between them and shows its answer (or its error)', async () => {
    const sent: string[] = [];
    const onRequest = (r: { url(): string; method(): string; postData(): string | undefined }) => {
      if (r.method() === 'POST' && r.url().endsWith('/api/trace')) sent.push(r.postData() ?? '');
    };
    page.on('request', onRequest);
    try {
      const first = await screenPointOf(page, 'web1');
      await page.mouse.click(first.x, first.y);
      const second = await screenPointOf(page, 'web2');
      await page.keyboard.down('Control');
      await page.mouse.click(second.x, second.y);
      await page.keyboard.up('Control');
      // The answer is the trace endpoint's: a verdict with its hops, or the error it answered.
      await page.waitForFunction(() => document.querySelector('#trace .verdict, #trace .error'), { timeout: 15_000 });
    } finally {
      page.off('request', onRequest);
    }
    assert.deepEqual(sent.map((b) => JSON.parse(b)), [{ from: 'web1', to: 'web2' }]);
    const shown = (await page.$eval('#trace', (el) => el.textContent)) ?? '';
    assert.match(shown, /web1 → web2/);
  });

  test('a screenshot of the page is a real PNG, kept under the sandbox root and in /tmp', async () => {
    const file = path.join(sb.root, 'topology.png');
    await page.screenshot({ path: file as `${string}.png` });
    fs.copyFileSync(file, SCREENSHOT_COPY);
    const size = pngSize(SCREENSHOT_COPY);
    assert.deepEqual({ width: size.width, height: size.height }, { width: 1400, height: 900 });
    // A blank page compresses to a few kilobytes; a drawn graph with text does not.
    assert.ok(size.bytes > 20_000, `screenshot is ${size.bytes} bytes`);
  });
});
