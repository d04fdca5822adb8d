/**
 * `berth trace` across hosts of an overlay (issue 15): two simulated hosts with one etcd member and
 * a short lease TTL. A healthy cross-host trace walks the peer, this host's three kernel entries
 * and the underlay route, then a real echo (the positive control). Then host 1 goes down: its
 * daemon is killed (SIGKILL; d1 still answers then, and the trace says reachable) and its underlay
 * link cut. Before its TTL passes the cluster still lists it, so the trace fails at the probe and
 * says so; once the TTL passed, the trace names the `overlay-peer` step and the host. Back up, the
 * same trace is reachable again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, eventually, must } from '../../helpers/sandbox.js';
import { Cluster } from '../../helpers/cluster.js';
import type { TraceReport } from '../../../src/trace/report.js';

describe('berth trace across an overlay', () => {
  let c: Cluster;
  let d1Ip = '';
  let peerId = '';
  const h = (i: number) => c.hosts[i]!;
  const trace = async (...args: string[]) => {
    const r = await h(0).berth('trace', ...args, '--format', 'json');
    assert.ok(r.code === 0 || r.code === 1, `trace ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    const report = JSON.parse(r.stdout) as TraceReport;
    assert.equal(r.code, report.reachable ? 0 : 1, 'exit 0 exactly when reachable');
    return report;
  };
  const show = (r: TraceReport) => JSON.stringify(r, null, 2);
  const hop = (r: TraceReport, step: string) => r.hops.find((x) => x.step === step);

  before(async () => {
    // Names that are not hex: `d1` could also be read as the id prefix of a local container.
    c = await Cluster.create({ hosts: 2, members: 1, ttl: 8 });
    await h(0).berthOk('network', 'create', '-d', 'overlay', '--subnet', '10.96.0.0/24', 'tov');
    assert.ok(await eventually(async () => (await h(1).berth('network', 'inspect', 'tov')).code === 0, 5000), 'host 1 mirrors tov');
    await h(0).berthOk('run', '-d', '--name', 'srcbox', '--network', 'tov', '--', BUSYBOX, 'sleep', '3600');
    await h(1).berthOk('run', '-d', '--name', 'dstbox', '--network', 'tov', '--', BUSYBOX, 'sleep', '3600');
    d1Ip = (await h(1).inspect('dstbox')).NetworkSettings.Networks.tov!.IPAddress;
    peerId = (JSON.parse(fs.readFileSync(path.join(h(1).root, 'state', 'cluster.json'), 'utf8')) as { hostId: string }).hostId;
  });
  after(async () => {
    await c?.destroy();
  });

  test('a healthy cross-host path is reachable, by name and by address, hop by hop', async () => {
    let report: TraceReport | undefined;
    // Host 0 programs d1 when the watch brings its announcement.
    assert.ok(await eventually(async () => (report = await trace('srcbox', 'dstbox')).reachable, 5000, 200), `srcbox → dstbox: ${report && show(report)}`);
    const steps = report!.hops.map((x) => x.step);
    for (const s of ['source', 'source-interface', 'route', 'overlay-peer', 'overlay-fdb', 'underlay-route', 'mtu', 'firewall', 'probe']) assert.ok(steps.includes(s), `step ${s} in ${steps}`);
    assert.ok(report!.hops.every((x) => x.ok), show(report!));
    assert.match(hop(report!, 'overlay-peer')!.detail, new RegExp(`dstbox \\(${d1Ip.replace(/\./g, '\\.')}\\).*192\\.168\\.90\\.12`));
    assert.match(hop(report!, 'overlay-fdb')!.evidence!, /dst 192\.168\.90\.12 self permanent.*master bov\S+ .*neigh .* permanent/);
    assert.match(hop(report!, 'underlay-route')!.evidence!, /dev eth0/);
    assert.match(hop(report!, 'mtu')!.detail, /1450/);
    const byAddress = await trace('srcbox', d1Ip);
    assert.equal(byAddress.reachable, true, show(byAddress));
    assert.ok(hop(byAddress, 'overlay-peer')?.ok, 'the address is recognised as d1 on host 1');
  });

  test('host 1 down: before its TTL the probe gets no answer from a host the cluster still lists; after it, overlay-peer names the host', async () => {
    await h(1).stopDaemon('SIGKILL');
    const killedAt = Date.now();
    // Its daemon alone dead, the data plane still carries d1's traffic (as faults.test.ts shows),
    // and the trace says so rather than inventing a failure.
    const daemonOnly = await trace('srcbox', 'dstbox');
    assert.equal(daemonOnly.reachable, true, show(daemonOnly));
    // A host that is down answers nothing: cut it off the underlay too.
    must(await h(1).inHost('ip', ['link', 'set', 'eth0', 'down']), 'cut host 1 off');
    const early = await trace('srcbox', 'dstbox');
    const tookMs = Date.now() - killedAt;
    assert.equal(early.reachable, false, show(early));
    assert.ok(tookMs < c.ttl * 1000, `the early trace ended within the TTL (${tookMs} ms)`);
    assert.ok(hop(early, 'overlay-peer')?.ok, `the cluster still lists host 1: ${show(early)}`);
    assert.equal(early.failure?.step, 'probe', show(early));
    assert.match(early.failure!.reason, /no answer from dstbox on host .*192\.168\.90\.12.*a host the cluster still lists/);
    assert.match(early.failure!.reason, /does not answer on the underlay either/);

    // Past the TTL: etcd drops host 1's record and endpoints with its lease.
    assert.ok(await eventually(async () => !(await c.etcdList('/berth/v1/hosts/')).some((kv) => kv.key.endsWith(peerId)), (c.ttl + 4) * 1000, 200), 'host 1 left the cluster');
    for (const dst of ['dstbox', d1Ip]) {
      const late = await trace('srcbox', dst);
      assert.equal(late.reachable, false, show(late));
      assert.equal(late.failure?.step, 'overlay-peer', show(late));
      assert.match(late.failure!.reason, new RegExp(`host .*192\\.168\\.90\\.12, id ${peerId}\\) holding dstbox is down: its lease expired and it is not in the cluster`));
      assert.match(late.failure!.fix, /start berth on .*192\.168\.90\.12.*or, if that host is gone for good, remove the container's endpoint/);
      assert.equal(late.hops.findIndex((x) => !x.ok), late.hops.findIndex((x) => x.step === 'overlay-peer'), 'overlay-peer is the first failing hop');
    }
  });

  test('host 1 back: the same trace is reachable again', async () => {
    must(await h(1).inHost('ip', ['link', 'set', 'eth0', 'up']), 'reconnect host 1');
    await c.startDaemon(1);
    let report: TraceReport | undefined;
    assert.ok(await eventually(async () => (report = await trace('srcbox', 'dstbox')).reachable, 10_000, 300), `after recovery: ${report && show(report)}`);
  });
});
