/**
 * Issue 18, memory: the daemon keeps V8's young generation near its first size through a burst of
 * setups, also after its kernel and DNS threads started (each new isolate makes V8 reset the growth
 * factor, src/kernel/daemon-memory.ts). The control is the same burst on a daemon started from
 * the CLI's module directly, bypassing bin/berth's settings: its young generation grows.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ApiClient } from '../../../src/api/client.js';
import { REPO, Sandbox } from '../../helpers/sandbox.js';
import { sample, scrapeSocket } from '../../helpers/metrics.js';

const BURST = 150;
const MB = 1024 * 1024;

/** The main isolate's new space (both semi-spaces), from the daemon's own /metrics. */
async function newSpaceBytes(sb: Sandbox): Promise<number> {
  const text = await scrapeSocket(sb);
  const bytes = sample(text, 'nodejs_heap_space_size_total_bytes', { space: 'new' });
  assert.ok(bytes !== undefined, `no new-space series in /metrics:\n${text.slice(0, 500)}`);
  return bytes;
}

/** A network, then BURST network-only containers with a published port each, through the API. */
async function burst(sb: Sandbox): Promise<void> {
  const api = new ApiClient(`unix://${sb.socket}`);
  try {
    await api.request('POST', '/networks/create', { Name: 'mem', IPAM: { Config: [{ Subnet: '10.93.0.0/16' }] } });
    for (let i = 0; i < BURST; i++) {
      await api.request('POST', '/containers/create?start=1&detach=0', { cmd: ['/bin/true'], networkMode: 'mem', ports: [{ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 21000 + i, containerPort: 80 }] });
    }
  } finally {
    api.close();
  }
}

describe('daemon memory settings', () => {
  const sandboxes: Sandbox[] = [];
  after(async () => {
    for (const sb of sandboxes) await sb.destroy();
  });

  const daemonAfterBurst = async (tag: string, entry?: string): Promise<number> => {
    const sb = await Sandbox.create(tag, { startDaemon: false });
    sandboxes.push(sb);
    await sb.startDaemon([], entry);
    await burst(sb);
    return newSpaceBytes(sb);
  };

  test('the young generation stays near its first 1 MB semi-spaces; without the settings it grows', async (t) => {
    const kept = await daemonAfterBurst('mk');
    const grown = await daemonAfterBurst('mg', path.join(REPO, 'dist/src/cli/main.js'));
    t.diagnostic(`new space after ${BURST} setups: ${kept / MB} MB with the settings, ${grown / MB} MB without`);
    // Two 1 MB semi-spaces, or one doubling: V8 may grow it between a thread's start and the moment
    // the setting is restored.
    assert.ok(kept <= 4 * MB, `with the settings the new space is ${kept / MB} MB (want at most 4)`);
    assert.ok(grown >= 8 * MB, `the control, without the settings, should grow to 8 MB or more in ${BURST} setups: ${grown / MB} MB`);
  });
});
