/**
 * berth's Prometheus metrics, one registry per engine (never prom-client's global one, so two
 * engines in one process, as in tests, never share a series). What each metric means and where it
 * comes from is in docs/metrics.md. Traffic counters are read from the kernel at each scrape;
 * operations, DNS queries, reconcile repairs and etcd calls are counted as they happen.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Engine } from '../engine/engine.js';
import { onReconcileReport, type ReconcileReport } from '../engine/reconcile.js';
import type { EtcdClient } from '../cluster/etcd.js';
import { MonotonicTotals } from './monotonic.js';
import type { DnsOutcome } from '../dns/resolver.js';
import { seriesKey, trafficSamples, type TrafficSample } from './traffic-series.js';

const DNS_OUTCOMES: readonly DnsOutcome[] = ['local', 'forwarded', 'nxdomain', 'refused', 'failed', 'malformed'];

/** Seconds: engine operations take from under a millisecond (a lookup) to seconds (a run). */
const OPERATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds: an etcd call's deadline is 2 s. */
const ETCD_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2];
/** One kernel read serves every traffic metric of one scrape. */
const TRAFFIC_READ_TTL_MS = 500;
/** A health probe of etcd at scrape time must not hold the scrape long. */
const ETCD_PROBE_DEADLINE_MS = 1000;

/** The repair kinds of a reconcile report, as label values. */
const REPAIR_KINDS: Record<keyof ReconcileReport, string> = {
  bridgesRestored: 'bridge_restored',
  bridgesUnrestorable: 'bridge_unrestorable',
  portsReattached: 'port_reattached',
  containersExited: 'container_exited',
  pidsAdopted: 'pid_adopted',
  endpointsRolledBack: 'endpoint_rolled_back',
  linksRemoved: 'link_removed',
  namespacesRemoved: 'namespace_removed',
  orphanRowsRemoved: 'orphan_row_removed',
  hostSubnetPeersRepaired: 'host_subnet_peer_repaired',
};

/** How many repairs of each kind a report holds (pure). */
export function repairCounts(report: ReconcileReport): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [field, kind] of Object.entries(REPAIR_KINDS)) {
    const value = report[field as keyof ReconcileReport];
    out[kind] = Array.isArray(value) ? value.length : Number(value) || 0;
  }
  return out;
}

export class EngineMetrics {
  readonly registry = new Registry();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly trafficTotals = new MonotonicTotals();
  private trafficRead: { at: number; samples: Promise<TrafficSample[]> } | undefined;

  constructor(private readonly engine: Engine) {
    collectDefaultMetrics({ register: this.registry });
    this.operations();
    this.traffic();
    this.dns();
    this.reconcile();
    this.netnsPool();
    const etcd = engine.ctx.cluster?.etcd;
    if (etcd) this.clusterStore(etcd);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    for (const fn of this.unsubscribe) fn();
    this.registry.clear();
  }

  private operations(): void {
    const total = new Counter({ name: 'berth_operations_total', help: 'Engine operations, by kind and outcome', labelNames: ['kind', 'outcome'], registers: [this.registry] });
    const duration = new Histogram({
      name: 'berth_operation_duration_seconds',
      help: 'How long engine operations took, by kind and outcome',
      labelNames: ['kind', 'outcome'],
      buckets: OPERATION_BUCKETS,
      registers: [this.registry],
    });
    this.unsubscribe.push(
      this.engine.ctx.events.onOperation((op) => {
        total.inc({ kind: op.kind, outcome: op.outcome });
        duration.observe({ kind: op.kind, outcome: op.outcome }, op.ms / 1000);
      }),
    );
  }

  /** Starts that found a namespace made ahead of time, and starts that made their own. */
  private netnsPool(): void {
    const pool = this.engine.ctx.netnsPool;
    if (!pool) return;
    new Counter({
      name: 'berth_netns_pool_takes_total',
      help: 'Container starts by whether a namespace made ahead of time was ready (hit) or the start made its own (miss)',
      labelNames: ['outcome'],
      registers: [this.registry],
      collect(this: Counter) {
        this.reset();
        this.inc({ outcome: 'hit' }, pool.hits);
        this.inc({ outcome: 'miss' }, pool.misses);
      },
    });
  }

  private traffic(): void {
    const read = () => this.trafficSamples();
    const totals = this.trafficTotals;
    const series = (name: string, help: string, metric: TrafficSample['metric'], labelNames: string[], field: 'packets' | 'bytes') =>
      new Counter({
        name,
        help,
        labelNames,
        registers: [this.registry],
        async collect(this: Counter) {
          const samples = await read();
          this.reset();
          for (const s of samples) if (s.metric === metric) this.inc(s.labels, totals.total(`${field}|${seriesKey(s)}`, s[field]));
        },
      });
    const networkLabels = ['network', 'family', 'direction'];
    const portLabels = ['container', 'host_ip', 'host_port', 'protocol', 'family'];
    series('berth_network_packets_total', "Packets from or to a network's containers, as the host's netfilter hooks see them", 'network', networkLabels, 'packets');
    series('berth_network_bytes_total', "Bytes from or to a network's containers", 'network', networkLabels, 'bytes');
    series('berth_published_port_packets_total', 'Forwarded packets of connections to a published port, both directions', 'port', portLabels, 'packets');
    series('berth_published_port_bytes_total', 'Forwarded bytes of connections to a published port, both directions', 'port', portLabels, 'bytes');
  }

  /** The kernel's accounting counters, read at most once per scrape. */
  private trafficSamples(): Promise<TrafficSample[]> {
    const now = Date.now();
    if (this.trafficRead && now - this.trafficRead.at < TRAFFIC_READ_TTL_MS) return this.trafficRead.samples;
    const { store, kernel } = this.engine.ctx;
    const samples = kernel.call('firewallCounters').then((readings) => {
      const out = trafficSamples(readings, { network: (id) => store.network(id)?.name, container: (id) => store.container(id)?.name });
      this.trafficTotals.retain(new Set(out.flatMap((s) => [`packets|${seriesKey(s)}`, `bytes|${seriesKey(s)}`])));
      return out;
    });
    this.trafficRead = { at: now, samples };
    return samples;
  }

  private dns(): void {
    const queries = new Counter({
      name: 'berth_dns_queries_total',
      help: "Queries to the embedded resolver, by outcome: local (answered from berth's records), forwarded (answered by an upstream or the cache), nxdomain, refused, failed (SERVFAIL), malformed",
      labelNames: ['outcome'],
      registers: [this.registry],
    });
    // Every outcome is a series from the first scrape on, at 0 until a query has it.
    for (const outcome of DNS_OUTCOMES) queries.inc({ outcome }, 0);
    this.unsubscribe.push(this.engine.ctx.events.onDnsQuery((outcome) => queries.inc({ outcome })));
  }

  private reconcile(): void {
    const runs = new Counter({ name: 'berth_reconcile_runs_total', help: 'Reconciles run (start-up excepted: the metrics start after it)', registers: [this.registry] });
    const repairs = new Counter({ name: 'berth_reconcile_repairs_total', help: 'Drift the reconciler repaired, by kind', labelNames: ['kind'], registers: [this.registry] });
    for (const kind of Object.values(REPAIR_KINDS)) repairs.inc({ kind }, 0);
    this.unsubscribe.push(
      onReconcileReport(this.engine.ctx, (report) => {
        runs.inc();
        for (const [kind, n] of Object.entries(repairCounts(report))) if (n > 0) repairs.inc({ kind }, n);
      }),
    );
  }

  private clusterStore(etcd: EtcdClient): void {
    const latency = new Histogram({
      name: 'berth_cluster_store_request_duration_seconds',
      help: 'Calls to etcd (the cluster store), by outcome, fail-over between members included',
      labelNames: ['outcome'],
      buckets: ETCD_BUCKETS,
      registers: [this.registry],
    });
    this.unsubscribe.push(etcd.onCall((ms, ok) => latency.observe({ outcome: ok ? 'ok' : 'error' }, ms / 1000)));
    new Gauge({
      name: 'berth_cluster_store_up',
      help: 'Whether etcd answered a status call at this scrape (1) or not within 1 s (0)',
      registers: [this.registry],
      async collect(this: Gauge) {
        const up = await etcd.call('/v3/maintenance/status', {}, ETCD_PROBE_DEADLINE_MS).then(
          () => 1,
          () => 0,
        );
        this.set(up);
      },
    });
  }
}

const byEngine = new WeakMap<Engine, EngineMetrics>();

/** The engine's metrics, made (and subscribed to the engine) on first use. */
export function metricsOf(engine: Engine): EngineMetrics {
  let m = byEngine.get(engine);
  if (!m) {
    m = new EngineMetrics(engine);
    byEngine.set(engine, m);
  }
  return m;
}
