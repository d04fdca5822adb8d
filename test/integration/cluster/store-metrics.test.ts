/**
 * Issue 15, cluster-store metrics on a real cluster: a host's /metrics shows etcd up and its calls
 * counted as they happen (an overlay network created adds calls with outcome ok); with its only
 * etcd member killed, the next scrape says down and failed calls are counted as errors; with the
 * member back, up again. The same daemon and scrape path serve every state (positive and negative
 * controls through one path).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../../helpers/sandbox.js';
import { Cluster } from '../../helpers/cluster.js';

const METRICS_ADDR = '127.0.0.1:9324';

/** The value of a sample line `name{labels…} value` (labels as written, in the exporter's order), or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}}` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('cluster store metrics', () => {
  let c: Cluster;
  before(async () => {
    c = await Cluster.create({ hosts: 1, members: 1, startDaemons: false });
    await c.startDaemon(0, ['--metrics-addr', METRICS_ADDR]);
  });
  after(async () => {
    await c?.destroy();
  });

  const scrape = async (): Promise<string> => {
    const r = await c.hosts[0]!.inHost('curl', ['-s', '--max-time', '5', `http://${METRICS_ADDR}/metrics`]);
    assert.equal(r.code, 0, `scrape failed: ${r.stderr}`);
    return r.stdout;
  };
  const calls = (text: string, outcome: 'ok' | 'error') => sample(text, 'berth_cluster_store_request_duration_seconds_count', `outcome="${outcome}"`) ?? 0;

  test('etcd up and calls counted; down and errors counted when its member dies; up again when it is back', async () => {
    const first = await scrape();
    assert.equal(sample(first, 'berth_cluster_store_up'), 1, 'etcd answers: up');
    // The metrics subscribe once the engine is open (after the join): lease renewals (every TTL/3) show up next.
    assert.ok(await eventually(async () => calls(await scrape(), 'ok') > 0, 10_000, 300), 'lease renewals counted');
    const okBefore = calls(await scrape(), 'ok');
    await c.hosts[0]!.berthOk('network', 'create', '-d', 'overlay', '--subnet', '10.97.0.0/24', 'm-ov');
    const afterCreate = await scrape();
    assert.ok(calls(afterCreate, 'ok') > okBefore, `creating an overlay adds etcd calls: ${okBefore} -> ${calls(afterCreate, 'ok')}`);
    assert.equal(calls(afterCreate, 'error'), 0, 'no failed call while etcd is up');
    assert.match(afterCreate, /berth_cluster_store_request_duration_seconds_bucket\{le="0.005",outcome="ok"\} \d+/, 'latency histogram buckets');

    await c.killEtcd(0);
    try {
      // The lease renewal (every TTL/3) and the watch fail against a dead member.
      assert.ok(await eventually(async () => {
        const t = await scrape();
        return sample(t, 'berth_cluster_store_up') === 0 && calls(t, 'error') > 0;
      }, 15_000, 500), 'down, with failed calls counted as errors');
    } finally {
      c.startEtcd(0);
    }
    assert.ok(await eventually(async () => sample(await scrape(), 'berth_cluster_store_up') === 1, 20_000, 500), 'up again once the member is back');
    await c.hosts[0]!.berthOk('network', 'rm', 'm-ov');
  });
});
