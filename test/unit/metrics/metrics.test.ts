import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from '../../../src/errors.js';
import { MonotonicTotals } from '../../../src/metrics/monotonic.js';
import { parseCounterListing } from '../../../src/metrics/nft-counters.js';
import { parseMetricsAddr } from '../../../src/metrics/metrics-addr.js';
import { seriesKey, trafficSamples } from '../../../src/metrics/traffic-series.js';
import { repairCounts } from '../../../src/metrics/engine-metrics.js';

// What `nft -j list set` printed here (nftables 1.0.6) for a counted ifname set and a concatenation.
const IFNAME_LISTING = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    {
      set: {
        family: 'ip', name: 'traffic_from_network', table: 'berth', type: 'ifname', flags: ['interval'],
        elem: [
          { elem: { val: 'bpt12*', comment: 'network p', counter: { packets: 5, bytes: 100 } } },
          { elem: { val: 'br-a', comment: 'network a', counter: { packets: 8, bytes: 360 } } },
        ],
        stmt: [{ counter: null }],
      },
    },
  ],
});
const CONCAT_LISTING = JSON.stringify({
  nftables: [
    { set: { family: 'ip6', name: 'port_traffic_ip', table: 'berth', type: ['ipv6_addr', 'inet_proto', 'inet_service'], elem: [{ elem: { val: { concat: ['fd99::1', 'udp', 53] }, comment: 'container c1', counter: { packets: 7, bytes: 9 } } }] } },
    { set: { family: 'ip', name: 'port_traffic_any', table: 'berth', type: ['inet_proto', 'inet_service'], elem: [{ elem: { val: { concat: ['tcp', 8080] }, comment: 'container c2', counter: { packets: 1, bytes: 60 } } }, 'no-counter'] } },
  ],
});

test('counter listings give keys in the text the ruleset writes', () => {
  const ifnames = parseCounterListing(IFNAME_LISTING);
  assert.deepEqual(ifnames.map((r) => [r.key, r.comment, r.packets, r.bytes]), [
    ['"bpt12*"', 'network p', 5, 100],
    ['"br-a"', 'network a', 8, 360],
  ]);
  const concat = parseCounterListing(CONCAT_LISTING);
  assert.deepEqual(concat.map((r) => [r.family, r.set, r.key]), [
    ['ip6', 'port_traffic_ip', 'fd99::1 . udp . 53'],
    ['ip', 'port_traffic_any', 'tcp . 8080'],
  ]);
});

test('traffic samples name networks and containers, and ports published on every address get the any-address', () => {
  const readings = [...parseCounterListing(IFNAME_LISTING), ...parseCounterListing(CONCAT_LISTING)];
  const names = { network: (id: string) => ({ a: 'front' })[id], container: (id: string) => ({ c2: 'web' })[id] };
  const samples = trafficSamples(readings, names);
  assert.deepEqual(samples.map((s) => [s.metric, s.labels, s.packets]), [
    ['network', { network: 'p', family: 'ipv4', direction: 'from_containers' }, 5],
    ['network', { network: 'front', family: 'ipv4', direction: 'from_containers' }, 8],
    ['port', { container: 'c1', host_ip: 'fd99::1', host_port: '53', protocol: 'udp', family: 'ipv6' }, 7],
    ['port', { container: 'web', host_ip: '0.0.0.0', host_port: '8080', protocol: 'tcp', family: 'ipv4' }, 1],
  ]);
  assert.equal(seriesKey({ metric: 'm', labels: { b: '2', a: '1' } }), seriesKey({ metric: 'm', labels: { a: '1', b: '2' } }));
});

test('totals never go down when a source restarts from zero, and forget what is gone', () => {
  const t = new MonotonicTotals();
  assert.equal(t.total('k', 10), 10);
  assert.equal(t.total('k', 15), 15);
  assert.equal(t.total('k', 3), 18, 'restarted: 15 kept, 3 more');
  assert.equal(t.total('k', 5), 20);
  t.retain(new Set());
  assert.equal(t.total('k', 2), 2, 'a forgotten key starts afresh');
});

test('--metrics-addr takes IPv4:PORT and [IPv6]:PORT, and refuses the rest naming the fix', () => {
  assert.deepEqual(parseMetricsAddr('127.0.0.1:9323'), { host: '127.0.0.1', port: 9323 });
  assert.deepEqual(parseMetricsAddr('[::1]:9323'), { host: '::1', port: 9323 });
  assert.deepEqual(parseMetricsAddr('0.0.0.0:1'), { host: '0.0.0.0', port: 1 });
  for (const bad of ['', 'localhost:9323', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '::1:9323', '[127.0.0.1]:9323', '1.2.3.4:80x', ':9323']) {
    assert.throws(
      () => parseMetricsAddr(bad),
      (err: unknown) => isBerthError(err) && err.kind === 'invalid' && err.message.includes(`"${bad}" is not IP:PORT`) && err.message.includes('127.0.0.1:9323'),
      bad,
    );
  }
});

test('a reconcile report counts one repair per item, by kind', () => {
  const counts = repairCounts({
    bridgesRestored: ['br-a', 'br-b'],
    bridgesUnrestorable: [],
    portsReattached: ['v1'],
    containersExited: [],
    pidsAdopted: [],
    endpointsRolledBack: [],
    linksRemoved: ['x'],
    namespacesRemoved: [],
    orphanRowsRemoved: 3,
    hostSubnetPeersRepaired: [],
  });
  assert.equal(counts['bridge_restored'], 2);
  assert.equal(counts['port_reattached'], 1);
  assert.equal(counts['link_removed'], 1);
  assert.equal(counts['orphan_row_removed'], 3);
  assert.equal(counts['namespace_removed'], 0);
});

test('each engine has a registry of its own', async () => {
  const { EngineEvents } = await import('../../../src/engine/events.js');
  const { metricsOf } = await import('../../../src/metrics/engine-metrics.js');
  type AnEngine = Parameters<typeof metricsOf>[0];
  const fake = () => ({ ctx: { events: new EngineEvents(), store: { network: () => undefined, container: () => undefined }, kernel: { call: async () => [] }, log: console } }) as unknown as AnEngine;
  const [one, two] = [fake(), fake()];
  const m1 = metricsOf(one);
  const m2 = metricsOf(two);
  assert.equal(metricsOf(one), m1, 'one per engine');
  one.ctx.events.operation({ kind: 'network create', ms: 3, outcome: 'ok' });
  assert.match(await m1.text(), /^berth_operations_total\{kind="network create",outcome="ok"\} 1$/m);
  assert.doesNotMatch(await m2.text(), /^berth_operations_total\{/m);
  m1.close();
  m2.close();
});
