/**
 * Issue 12, `-o encrypted`: an encrypted overlay runs its VXLAN through WireGuard (wireguard-go
 * here, configured over its UAPI socket). A capture on the underlay shows a marker sent between
 * containers of a plain overlay in clear (the positive control) and never the one sent over the
 * encrypted overlay, which crosses as WireGuard (UDP 51820). Public keys travel through etcd,
 * private keys stay on their host (mode 0600, never in etcd).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, eventually, must, run, sleep } from '../../helpers/sandbox.js';
import { Cluster } from '../../helpers/cluster.js';

describe('encrypted overlay', () => {
  let c: Cluster;
  before(async () => {
    c = await Cluster.create({ hosts: 2, members: 1 });
    await c.hosts[0]!.berthOk('network', 'create', '-d', 'overlay', '--subnet', '10.94.0.0/24', 'plain');
    await c.hosts[0]!.berthOk('network', 'create', '-d', 'overlay', '--subnet', '10.95.0.0/24', '-o', 'encrypted', 'secret');
    for (let i = 0; i < 2; i++) {
      assert.ok(await eventually(async () => (await c.hosts[i]!.berth('network', 'inspect', 'secret')).code === 0, 5000));
      await c.hosts[i]!.berthOk('run', '-d', '--name', `p${i}`, '--network', 'plain', '--', BUSYBOX, 'sleep', '3600');
      await c.hosts[i]!.berthOk('run', '-d', '--name', `s${i}`, '--network', 'secret', '--', BUSYBOX, 'sleep', '3600');
    }
  });
  after(async () => {
    await c?.destroy();
  });

  const h = (i: number) => c.hosts[i]!;
  const ipOn = async (i: number, name: string, net: string) => (await h(i).inspect(name)).NetworkSettings.Networks[net]!.IPAddress;

  test('containers on two hosts reach each other over the encrypted overlay, with room for WireGuard in the MTU', async () => {
    const target = await ipOn(1, 's1', 'secret');
    const ns = await h(0).netnsOf('s0');
    assert.ok(await eventually(async () => (await h(0).inNs(ns, BUSYBOX, ['ping', '-c', '1', '-W', '1', target])).code === 0, 8000), 's0 → s1');
    const byName = await h(0).berth('exec', 's0', '--', BUSYBOX, 'ping', '-c', '1', '-W', '2', 's1');
    assert.equal(byName.code, 0, byName.stdout + byName.stderr);
    // 1500 − 60 (WireGuard) − 50 (VXLAN); the plain overlay keeps 1450.
    assert.match(must(await h(0).inNs(ns, 'ip', ['-o', 'link', 'show', 'eth0']), 'link'), / mtu 1390 /);
    assert.match(must(await h(0).inNs(await h(0).netnsOf('p0'), 'ip', ['-o', 'link', 'show', 'eth0']), 'link'), / mtu 1450 /);
    assert.ok((await h(0).inNs(ns, BUSYBOX, ['ping', '-c', '1', '-W', '2', '-s', '1362', target])).code === 0, 'a full 1390-byte packet crosses');
  });

  test('a capture on the underlay never shows the marker sent over the encrypted overlay, and does show it over the plain one', async () => {
    const pcap = path.join(h(1).root, 'underlay.pcap');
    // Captured in host 1's namespace, on its underlay interface.
    // --immediate-mode: without it libpcap hands packets over in blocks, up to 1 s late, and the
    // packets of the last second before the stop never reach the file.
    const dump = spawn('nsenter', [`--net=${h(1).hostNs}`, '--', 'tcpdump', '-i', 'eth0', '--immediate-mode', '-U', '-w', pcap, '-s', '0', 'udp'], { stdio: 'ignore' });
    try {
      await eventually(() => fs.existsSync(pcap), 3000);
      await sleep(300);
      for (const [net, from, to, marker] of [['secret', 's0', 's1', 'MARKER-SECRET-7f3a'], ['plain', 'p0', 'p1', 'MARKER-PLAIN-7f3a']] as const) {
        const ns1 = await h(1).netnsOf(to);
        // The receiver answers with what it got: proof the marker reached the other host.
        const listener = h(1).spawnIn(ns1, 'socat', ['TCP-LISTEN:7200,reuseaddr', 'SYSTEM:head -c 18 | sed s/^/got-/']);
        await eventually(async () => (await h(1).inNs(ns1, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(':7200'), 3000);
        const target = await ipOn(1, to, net);
        const sent = await run('nsenter', [`--net=${await h(0).netnsOf(from)}`, '--', BUSYBOX, 'nc', '-w', '2', target, '7200'], { input: `${marker}\n`.repeat(20), timeoutMs: 8000 });
        assert.equal(sent.stdout.trim(), `got-${marker}`, `${from} → ${to} (${target}) on ${net}: ${sent.stderr}`);
        listener.kill('SIGKILL');
      }
      await sleep(1000);
    } finally {
      dump.kill('SIGTERM');
      await new Promise((r) => dump.once('exit', r));
    }
    const bytes = fs.readFileSync(pcap);
    const summary = must(await run('tcpdump', ['-nn', '-r', pcap]), 'read capture');
    assert.ok(bytes.includes(Buffer.from('MARKER-PLAIN-7f3a')), `positive control: the plain overlay’s marker is in clear on the underlay; captured:\n${summary.slice(0, 3000)}`);
    assert.ok(!bytes.includes(Buffer.from('MARKER-SECRET-7f3a')), 'the encrypted overlay’s marker never appears');
    assert.match(summary, /\.51820: UDP/, 'encrypted traffic crosses as WireGuard');
  });

  test('public keys travel through etcd; private keys stay on their host, root-only', async () => {
    const hosts = (await c.etcdList('/berth/v1/hosts/')).map((kv) => JSON.parse(kv.value));
    assert.equal(hosts.length, 2);
    const all = JSON.stringify(await c.etcdList('/berth/v1/'));
    for (let i = 0; i < 2; i++) {
      const file = path.join(h(i).root, 'state', 'wireguard.json');
      const st = fs.statSync(file);
      assert.equal(st.mode & 0o777, 0o600);
      const keys = JSON.parse(fs.readFileSync(file, 'utf8'));
      assert.ok(hosts.some((x) => x.tunnel?.publicKey === keys.publicKey), `host ${i}'s public key is in its record`);
      assert.ok(!all.includes(keys.privateKey), `host ${i}'s private key is not in etcd`);
    }
  });

  test('a daemon restart keeps the tunnel: at most one of 30 packets lost', async () => {
    const target = await ipOn(1, 's1', 'secret');
    const ns = await h(0).netnsOf('s0');
    const pinging = h(0).inNs(ns, BUSYBOX, ['ping', '-c', '30', '-i', '0.1', '-W', '1', target], 15_000);
    await sleep(300);
    await h(1).stopDaemon('SIGTERM');
    await c.startDaemon(1);
    const r = await pinging;
    // At most one of 30 lost: under load a restart here has cost one packet, and a new WireGuard
    // handshake shows up across it (cause not found; see the closing note of issue 12). Before
    // peers were changed by difference, the restart cut the tunnel for minutes. The plain
    // overlay's restart test holds every packet.
    const received = Number(/30 packets transmitted, (\d+) packets received/.exec(r.stdout)?.[1] ?? 0);
    assert.ok(received >= 29, r.stdout);
  });

  test('removing the last encrypted network stops the tunnel; the plain overlay is untouched', async () => {
    for (let i = 0; i < 2; i++) await h(i).berthOk('rm', '-f', `s${i}`);
    assert.ok(await eventually(async () => (await h(0).berth('network', 'rm', 'secret')).code === 0, 5000));
    for (let i = 0; i < 2; i++) {
      assert.ok(await eventually(async () => !(await h(i).inHost('ip', ['link', 'show'])).stdout.includes(': bwg'), 5000), `host ${i} has no WireGuard device`);
    }
    const ns = await h(0).netnsOf('p0');
    assert.equal((await h(0).inNs(ns, BUSYBOX, ['ping', '-c', '1', '-W', '2', await ipOn(1, 'p1', 'plain')])).code, 0);
  });
});
