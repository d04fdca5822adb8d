/**
 * The topology page's test rig: `berth ui` and Debian's chromium, both started inside a sandbox's
 * host namespace (never the machine's), so the page is served and reached on the sandbox's
 * loopback. Both are stopped by PID in `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { BERTH, sleep, type Sandbox } from '../../helpers/sandbox.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser test cannot run here, or undefined if it can. */
export function chromiumMissing(): string | undefined {
  return fs.existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium; scripts/setup.sh does)`;
}

export interface UiProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** `berth ui` in the sandbox host namespace; resolves once it says where it serves. */
export async function startUi(sb: Sandbox, args: string[], env: NodeJS.ProcessEnv = sb.env): Promise<UiProcess> {
  const child = spawn('nsenter', [`--net=${sb.hostNs}`, '--', process.execPath, BERTH, 'ui', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const url = /serving the topology page at (\S+)/.exec(out)?.[1];
    if (url) return { child, url, output: () => out };
    if (child.exitCode !== null) throw new Error(`berth ui exited (${child.exitCode}): ${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`berth ui did not start within 10 s: ${out}`);
    }
    await sleep(20);
  }
}

/** Runs `berth ui` to its end (for bad input, which must fail at once). */
export function runUi(sb: Sandbox, args: string[], timeoutMs = 10_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('nsenter', [`--net=${sb.hostNs}`, '--', process.execPath, BERTH, 'ui', ...args], { env: sb.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output: out });
    });
  });
}

/**
 * Chromium in the sandbox host namespace: puppeteer starts a wrapper that enters the namespace
 * and execs chromium (nsenter and Debian's launcher both exec, so the PID is chromium's).
 */
export async function launchChromium(sb: Sandbox): Promise<Browser> {
  const wrapper = path.join(sb.root, 'chromium-in-sandbox');
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec nsenter --net=${sb.hostNs} -- ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  return puppeteer.launch({
    executablePath: wrapper,
    pipe: true,
    headless: true,
    userDataDir: path.join(sb.root, 'chromium-profile'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
    defaultViewport: { width: 1400, height: 900 },
    timeout: 30_000,
  });
}

/** Closes the browser (bounded), then makes sure its process and the UI server are gone, by PID. */
export async function stopAll(browser: Browser | undefined, ui: UiProcess | undefined): Promise<void> {
  const chromium = browser?.process();
  if (browser) await Promise.race([browser.close().catch(() => undefined), sleep(5000)]);
  for (const child of [chromium, ui?.child]) {
    if (child && child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}
