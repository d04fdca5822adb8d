/**
 * Issue 12, faults: host liveness on etcd leases (a host gone past its TTL disappears from its
 * peers within TTL + 1 s and its addresses return to the pool; a quick daemon restart disturbs
 * nothing; a host that comes back converges), etcd members lost (one of three: nothing fails;
 * quorum lost: cluster calls fail fast naming etcd, local ones and existing traffic carry on;
 * quorum back: converges without a restart), and the ruleset flushed on one host.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, eventually, must, sleep } from '../../helpers/sandbox.js';
import { Cluster } from '../../helpers/cluster.js';

describe('cluster faults', () => {
  let c: Cluster;
  before(async () => {
    c = await Cluster.create({ hosts: 3, members: 3, ttl: 3 });
    await c.hosts[0]!.berthOk('network', 'create', '-d', 'overlay', '--subnet', '10.93.0.0/24', 'ov');
    for (let i = 0; i < 3; i++) {
      assert.ok(await eventually(async () => (await c.hosts[i]!.berth('network', 'inspect', 'ov')).code === 0, 5000));
      await c.hosts[i]!.berthOk('run', '-d', '--name', `c${i}`, '--network', 'ov', '--', BUSYBOX, 'sleep', '3600');
    }
  });
  after(async () => {
    await c?.destroy();
  });

  const h = (i: number) => c.hosts[i]!;
  const ipOf = async (i: number, name: string) => (await h(i).inspect(name)).NetworkSettings.Networks.ov!.IPAddress;
  const macOf = async (i: number, name: string) => (await h(i).inspect(name)).NetworkSettings.Networks.ov!.MacAddress;
  const ping = async (i: number, from: string, target: string) => (await h(i).inNs(await h(i).netnsOf(from), BUSYBOX, ['ping', '-c', '1', '-W', '1', target])).code === 0;
  const fdbHas = async (i: number, mac: string) => must(await h(i).inHost('bridge', ['fdb', 'show']), 'fdb').includes(`${mac} dev bvx`);
  // Asked from the container's namespace to its resolver (the network's gateway, 10.93.0.1).
  const resolves = async (i: number, from: string, name: string) =>
    /^\d+\.\d+\.\d+\.\d+$/m.test((await h(i).inNs(await h(i).netnsOf(from), 'dig', ['+short', '+time=1', '+tries=1', '@10.93.0.1', name])).stdout);

  test('a daemon restart shorter than the TTL disturbs no cross-host traffic', async () => {
    const target = await ipOf(1, 'c1');
    assert.ok(await eventually(() => ping(0, 'c0', target), 3000));
    const ns = await h(0).netnsOf('c0');
    // 30 pings, 0.1 s apart, while host 1's daemon stops and starts again.
    const pinging = h(0).inNs(ns, BUSYBOX, ['ping', '-c', '30', '-i', '0.1', '-W', '1', target], 15_000);
    await sleep(300);
    await h(1).stopDaemon('SIGTERM');
    await c.startDaemon(1);
    const r = await pinging;
    assert.match(r.stdout, /30 packets transmitted, 30 packets received/, r.stdout);
    assert.match(h(1).daemonLog, /rejoined the cluster on its previous lease/);
    assert.ok(await fdbHas(0, await macOf(1, 'c1')), 'host 0 still has host 1’s endpoint');
  });

  test('a host gone longer than the TTL disappears from its peers within TTL + 1 s and its addresses return to the pool; back, it converges', async () => {
    const mac = await macOf(2, 'c2');
    const ip = await ipOf(2, 'c2');
    assert.ok(await fdbHas(0, mac));
    assert.ok(await resolves(0, 'c0', 'c2'), 'c2 resolves on host 0 before');
    const killedAt = Date.now();
    await h(2).stopDaemon('SIGKILL');
    assert.ok(await eventually(async () => !(await fdbHas(0, mac)), (c.ttl + 3) * 1000, 50), 'host 0 dropped host 2’s endpoint');
    const gone = Date.now() - killedAt;
    assert.ok(gone <= (c.ttl + 1) * 1000, `dropped after ${gone} ms (TTL ${c.ttl} s)`);
    assert.equal(must(await h(0).inHost('ip', ['neigh', 'show', ip]), 'neigh').trim(), '', 'its neighbour entry went too');
    assert.equal(await resolves(0, 'c0', 'c2'), false, 'and its name');
    const held = await c.etcdList('/berth/v1/ipam/');
    assert.ok(!held.some((kv) => kv.key.endsWith(`/${ip}`)), 'its address is back in the pool');
    // Back: it re-announces its container, and the peers program it again.
    await c.startDaemon(2);
    assert.ok(await eventually(() => fdbHas(0, mac), 5000), 'host 0 has it again');
    assert.ok(await eventually(() => ping(0, 'c0', ip), 5000), 'and reaches it');
    assert.ok(await eventually(() => resolves(0, 'c0', 'c2'), 3000), 'by name too');
  });

  test('one etcd member of three down: nothing fails', async () => {
    await c.killEtcd(2);
    // If it led, the other two elect a new leader first (about one election timeout, 1 s).
    assert.ok(await eventually(async () => (await c.etcdHealthy()) === 2, 10_000, 100), 'two members with a leader');
    await h(0).berthOk('network', 'create', '-d', 'overlay', 'ov2');
    await h(1).berthOk('run', '-d', '--name', 'one-down', '--network', 'ov', '--', BUSYBOX, 'sleep', '3600');
    const ip = await ipOf(1, 'one-down');
    assert.ok(await eventually(() => ping(0, 'c0', ip), 3000), 'a container started with a member down is reachable');
  });

  test('quorum lost: cluster calls fail within 2 s naming etcd, local ones work, traffic flows; back, it converges', async () => {
    await c.killEtcd(1);
    const started = Date.now();
    const r = await h(0).berth('network', 'create', '-d', 'overlay', 'noquorum');
    const took = Date.now() - started;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /etcd \(the cluster store\) did not answer .* within 2000 ms/);
    // The daemon's own figure (the CLI's start-up varies with the machine's load): the 2 s deadline.
    const loggedNow = () =>
      h(0)
        .daemonLog.split('\n')
        .filter((l) => l.includes('"msg":"network create"') && l.includes('"name":"noquorum"'))
        .map((l) => JSON.parse(l) as { ms: number; outcome: string });
    // The daemon's log lines are written in batches: wait for this one.
    await eventually(() => loggedNow().length > 0, 2000);
    const logged = loggedNow();
    assert.equal(logged.at(-1)?.outcome, 'error');
    assert.ok(logged.at(-1)!.ms < 2500, `the daemon gave up after ${logged.at(-1)!.ms} ms`);
    assert.ok(took < 10_000, `the CLI returned after ${took} ms`);
    const run = await h(0).berth('run', '-d', '--name', 'stuck', '--network', 'ov', '--', BUSYBOX, 'sleep', '3600');
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /etcd/);
    assert.equal((await h(0).berth('inspect', 'stuck')).code, 1, 'nothing half-made');
    // Local-scoped operations carry on.
    await h(0).berthOk('network', 'create', 'local-only');
    await h(0).berthOk('run', '-d', '--name', 'local', '--network', 'local-only', '--', BUSYBOX, 'sleep', '3600');
    // Existing overlay traffic keeps flowing.
    assert.ok(await ping(0, 'c0', await ipOf(1, 'c1')), 'c0 → c1 with quorum lost');
    // Longer than the TTL without quorum: etcd cannot expire leases without a leader.
    await sleep((c.ttl + 1) * 1000);
    assert.ok(await ping(0, 'c0', await ipOf(2, 'c2')), 'c0 → c2 after a TTL without quorum');
    c.startEtcd(1);
    c.startEtcd(2);
    assert.ok(await eventually(async () => (await c.etcdHealthy()) === 3, 20_000, 200), 'quorum back');
    // A container started now on host 1 is programmed on host 0 by the resumed watch.
    assert.ok(await eventually(async () => (await h(1).berth('run', '-d', '--name', 'after', '--network', 'ov', '--', BUSYBOX, 'sleep', '3600')).code === 0, 10_000, 500));
    const ip = await ipOf(1, 'after');
    assert.ok(await eventually(() => ping(0, 'c0', ip), 5000), 'converged without a restart');
    assert.ok(await eventually(() => resolves(0, 'c0', 'after'), 3000));
  });

  test('the ruleset flushed on one host: berth restores it and the overlay keeps working', async () => {
    must(await h(0).inHost('nft', ['flush', 'ruleset']), 'flush');
    assert.ok(await eventually(async () => (await h(0).inHost('nft', ['list', 'tables'])).stdout.includes('berth'), 3000), 'berth’s tables are back');
    assert.ok(await ping(0, 'c0', await ipOf(2, 'c2')));
    assert.ok(await resolves(0, 'c0', 'c1'), 'names still resolve (the DNS redirect is back)');
  });
});
