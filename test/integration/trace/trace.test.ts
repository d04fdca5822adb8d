/**
 * `berth trace` against paths set up for real in a sandbox: a healthy path and each way berth's
 * path can break — isolation between networks, icc=false, an --internal network going out, a
 * published port with nothing behind it, a 127.0.0.1-only port tried from a LAN peer, the user's
 * own drop in user-forward, a deleted veth, and an MTU mismatch. Each negative case is asserted
 * by the step it names and its reason, and has a positive control through the same path (a
 * reachable trace, and real traffic where the tracer cannot send).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, type Peer } from '../../helpers/sandbox.js';
import type { TraceReport } from '../../../src/trace/report.js';

describe('berth trace', () => {
  let sb: Sandbox;
  let lan: Peer;
  const trace = async (...args: string[]) => {
    const r = await sb.berth('trace', ...args, '--format', 'json');
    assert.ok(r.code === 0 || r.code === 1, `trace ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    const report = JSON.parse(r.stdout) as TraceReport;
    assert.equal(r.code, report.reachable ? 0 : 1, 'exit 0 exactly when reachable');
    return report;
  };
  const run = (name: string, net: string, opts: string[] = [], cmd: string[] = ['sleep', '3600']) => sb.berthOk('run', '-d', '--name', name, '--network', net, ...opts, '--', BUSYBOX, ...cmd);
  /** A TCP echo server on port 80 (busybox nc, persistent). */
  const ECHO = ['nc', '-ll', '-p', '80', '-e', '/bin/cat'];
  /** A real TCP connect from a namespace, as a control for what the tracer says. */
  const connects = async (nsPath: string, ip: string, port: number) => (await sb.inNs(nsPath, BUSYBOX, ['nc', '-w', '2', ip, String(port)], 8000)).code === 0;
  const noTraceTable = async () => {
    const tables = (await sb.inHost('nft', ['list', 'tables'])).stdout;
    assert.doesNotMatch(tables, /berth-trace/, 'the temporary trace table is gone');
  };

  before(async () => {
    sb = await Sandbox.create('tr');
    lan = await sb.addPeer('l', '10.207.0');
    await sb.berthOk('network', 'create', '--subnet', '10.61.0.0/24', 'neta');
    await sb.berthOk('network', 'create', '--subnet', '10.62.0.0/24', 'netb');
    await sb.berthOk('network', 'create', '--subnet', '10.63.0.0/24', '-o', 'com.docker.network.bridge.enable_icc=false', 'quiet');
    await sb.berthOk('network', 'create', '--subnet', '10.64.0.0/24', '--internal', 'inner');
    await run('a1', 'neta');
    await run('a2', 'neta', ['-p', '8081:80'], ECHO);
    await run('b1', 'netb');
    await run('q1', 'quiet');
    await run('q2', 'quiet');
    await run('i1', 'inner');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('a healthy path is reachable, hop by hop, with a real echo and a real TCP connect', async () => {
    const icmp = await trace('a1', 'a2');
    assert.equal(icmp.reachable, true, JSON.stringify(icmp, null, 2));
    assert.equal(icmp.failure, undefined);
    const steps = icmp.hops.map((h) => h.step);
    for (const s of ['source', 'source-interface', 'route', 'destination-interface', 'bridge-fdb', 'mtu', 'firewall', 'probe']) assert.ok(steps.includes(s), `step ${s} in ${steps}`);
    assert.ok(icmp.hops.every((h) => h.ok));
    const tcp = await trace('a1', 'a2:80/tcp');
    assert.equal(tcp.reachable, true, JSON.stringify(tcp, null, 2));
    assert.match(tcp.hops.find((h) => h.step === 'service')!.evidence!, /listening on/);
    await noTraceTable();
  });

  test('two containers on different networks: by name, the name does not resolve; by address, isolation named by its rule and counter', async () => {
    const byName = await trace('a1', 'b1');
    assert.equal(byName.reachable, false);
    assert.equal(byName.failure?.step, 'dns', JSON.stringify(byName, null, 2));
    assert.match(byName.failure!.reason, /b1 does not resolve from container a1 \((NXDOMAIN|SERVFAIL)\).*b1 is on netb while container a1 is on neta, none in common/);
    assert.match(byName.failure!.fix, /berth network connect netb a1/);
    // The probe still went, to the address the store knows: the firewall's drop is on record too.
    assert.equal(byName.hops.find((h) => h.step === 'firewall')?.ok, false);
    const b1 = (await sb.inspect('b1')).NetworkSettings.Networks.netb!.IPAddress;
    const r = await trace('a1', b1);
    assert.equal(r.failure?.step, 'firewall', JSON.stringify(r, null, 2));
    assert.match(r.failure!.reason, /chain forward of table ip berth/);
    assert.match(r.failure!.reason, /networks are isolated/);
    assert.match(r.failure!.fix, /berth network connect netb a1/);
    assert.match(r.hops.find((h) => h.step === 'firewall')!.evidence!, /its counter: [1-9]\d* packets, \d+ bytes dropped since the ruleset was loaded/);
    assert.equal(r.hops.find((h) => h.step === 'dns'), undefined, 'no name given, no DNS question');
    // Positive control through the same path once the containers share a network: the name resolves to b1's address there.
    await sb.berthOk('network', 'connect', 'netb', 'a1');
    try {
      const ok = await trace('a1', 'b1');
      assert.equal(ok.reachable, true, JSON.stringify(ok, null, 2));
      assert.match(ok.hops.find((h) => h.step === 'dns')!.detail, new RegExp(`^b1 → ${b1.replace(/\./g, '\\.')}`));
    } finally {
      await sb.berthOk('network', 'disconnect', 'netb', 'a1');
    }
    await noTraceTable();
  });

  test('the default bridge: no names between containers (as in Docker), addresses work', async () => {
    await run('d1', 'bridge');
    await run('d2', 'bridge');
    try {
      const r = await trace('d1', 'd2');
      assert.equal(r.failure?.step, 'dns', JSON.stringify(r, null, 2));
      assert.match(r.failure!.reason, /default bridge network only, where containers get no name resolution/);
      const d2 = (await sb.inspect('d2')).NetworkSettings.IPAddress;
      assert.match(r.failure!.fix, new RegExp(`use the address ${d2.replace(/\./g, '\\.')}`));
      // Positive control: the same two containers by address.
      assert.equal((await trace('d1', d2)).reachable, true);
    } finally {
      await sb.berthOk('rm', '-f', 'd1', 'd2');
    }
  });

  test('a LAN address nobody holds: the host\'s neighbour entry for it names the hop', async () => {
    const r = await trace('a1', '10.207.0.9');
    assert.equal(r.failure?.step, 'neighbour', JSON.stringify(r, null, 2));
    assert.match(r.failure!.reason, /10\.207\.0\.9 does not answer ARP on \S+ \((FAILED|INCOMPLETE)\)/);
    assert.ok(r.hops.findIndex((h) => h.step === 'neighbour') < r.hops.findIndex((h) => h.step === 'probe'), 'in path order, before the probe');
    // Positive control: the LAN peer on the same link answers, and its entry says so.
    const ok = await trace('a1', lan.address);
    assert.equal(ok.reachable, true, JSON.stringify(ok, null, 2));
    assert.ok(ok.hops.some((h) => h.step === 'neighbour' && h.ok && /is at [0-9a-f:]{17}/.test(h.detail)), JSON.stringify(ok.hops));
  });

  test('icc=false: the bridge drops traffic between two containers of the network', async () => {
    const r = await trace('q1', 'q2');
    assert.equal(r.reachable, false);
    assert.equal(r.failure?.step, 'firewall', JSON.stringify(r, null, 2));
    assert.match(r.failure!.reason, /icc_off/);
    assert.match(r.failure!.fix, /enable_icc=false/);
    // Positive control: the gateway (the host) stays reachable from the same container.
    assert.equal((await trace('q1', 'host')).reachable, true);
  });

  test('an --internal network cannot go out', async () => {
    const r = await trace('i1', lan.address);
    assert.equal(r.reachable, false);
    assert.ok(['route', 'firewall'].includes(r.failure!.step), JSON.stringify(r, null, 2));
    assert.match(`${r.failure!.reason} ${r.failure!.fix}`, /internal/);
    // Positive control: a container of a normal network reaches the same peer.
    assert.equal((await trace('a1', lan.address)).reachable, true);
  });

  test('a published port with nothing listening behind it: the service step, connection refused', async () => {
    await run('w1', 'neta', ['-p', '8080:80']);
    const r = await trace('host', `${lan.hostAddress}:8080`);
    assert.equal(r.reachable, false);
    assert.equal(r.failure?.step, 'service', JSON.stringify(r, null, 2));
    assert.match(r.failure!.reason, /nothing listens on 80\/tcp in w1 \(connection refused\)/);
    assert.ok(r.hops.find((h) => h.step === 'published-port')?.ok, 'the DNAT itself is fine');
    // Positive control: the same kind of port with a server behind it.
    const good = await trace('host', `${lan.hostAddress}:8081`);
    assert.equal(good.reachable, true, JSON.stringify(good, null, 2));
  });

  test('a port published on 127.0.0.1, tried from a LAN peer', async () => {
    await run('w2', 'neta', ['-p', '127.0.0.1:8082:80'], ECHO);
    const r = await trace(lan.address, `${lan.hostAddress}:8082`);
    assert.equal(r.reachable, false);
    assert.equal(r.failure?.step, 'published-port', JSON.stringify(r, null, 2));
    assert.match(r.failure!.reason, /published on 127\.0\.0\.1 only/);
    assert.match(r.failure!.reason, /never from a LAN peer/);
    const viaLoopback = await trace(lan.address, '127.0.0.1:8082');
    assert.equal(viaLoopback.failure?.step, 'published-port');
    assert.match(viaLoopback.failure!.reason, /raw-prerouting/);
    // Real traffic agrees: the peer gets nothing there, but does get a port published on all addresses,
    // which the tracer reports reachable; and the host reaches the 127.0.0.1 port (a real probe).
    assert.equal(await connects(lan.nsPath, lan.hostAddress, 8082), false);
    assert.equal(await connects(lan.nsPath, lan.hostAddress, 8081), true);
    assert.equal((await trace(lan.address, `${lan.hostAddress}:8081`)).reachable, true);
    assert.equal((await trace('host', '127.0.0.1:8082')).reachable, true);
  });

  test("a drop the user put in chain user-forward of table ip berth", async () => {
    await sb.inHost('nft', ['add', 'rule', 'ip', 'berth', 'user-forward', 'ip', 'daddr', lan.address, 'drop']);
    try {
      const r = await trace('a1', lan.address);
      assert.equal(r.reachable, false);
      assert.equal(r.failure?.step, 'firewall', JSON.stringify(r, null, 2));
      assert.match(r.failure!.reason, /your own rule in chain user-forward of table ip berth/);
      assert.match(r.failure!.reason, new RegExp(`ip daddr ${lan.address.replace(/\./g, '\\.')} drop`));
      assert.match(r.failure!.fix, /nft delete rule ip berth user-forward handle \d+/);
    } finally {
      await sb.inHost('nft', ['flush', 'chain', 'ip', 'berth', 'user-forward']);
    }
    assert.equal((await trace('a1', lan.address)).reachable, true, 'reachable again once the rule is gone');
    await noTraceTable();
  });

  test('a veth someone deleted (its host end, by hand)', async () => {
    await run('d1', 'neta');
    const healthy = await trace('a1', 'd1');
    assert.equal(healthy.reachable, true, JSON.stringify(healthy, null, 2));
    const hostEnd = /host end (\S+) up/.exec(healthy.hops.find((h) => h.step === 'destination-interface')!.evidence!)![1]!;
    const del = await sb.inHost('ip', ['link', 'del', hostEnd]);
    assert.equal(del.code, 0, del.stderr);
    const r = await trace('a1', 'd1');
    assert.equal(r.reachable, false);
    assert.equal(r.failure?.step, 'destination-interface', JSON.stringify(r, null, 2));
    // berth's periodic reconcile (every 60 s) may release the endpoint meanwhile: the tracer then
    // names the same loss from the store's side.
    assert.match(r.failure!.reason, new RegExp(`host end ${hostEnd} no longer exists|d1 lost its interface on network neta: its veth was deleted`));
    assert.match(r.failure!.fix, /berth network connect neta d1/);
  });

  test('an MTU mismatch: a container interface lowered by hand, shown by a large echo with DF', async () => {
    await run('m1', 'neta');
    const healthy = await trace('a1', 'm1');
    assert.equal(healthy.reachable, true);
    assert.match(healthy.hops.find((h) => h.step === 'mtu')!.detail, /1500 on every link/);
    const lowered = await sb.inNs(await sb.netnsOf('m1'), 'ip', ['link', 'set', 'eth0', 'mtu', '1200']);
    assert.equal(lowered.code, 0, lowered.stderr);
    const r = await trace('a1', 'm1');
    assert.equal(r.reachable, false);
    assert.equal(r.failure?.step, 'mtu', JSON.stringify(r, null, 2));
    assert.match(r.failure!.reason, /frames over 1200 bytes are dropped: eth0 has MTU 1200/);
    assert.ok(r.hops.find((h) => h.step === 'probe')?.ok, 'small packets still pass');
  });
});
