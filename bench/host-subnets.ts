/**
 * Host subnets across two simulated hosts (docs/host-subnets.md § Figures): per backend, ping
 * RTT and iperf3 throughput between containers on the two hosts' default bridges, against the
 * bare underlay (host to host); and the time from a new host's lease appearing in etcd to the
 * first packet from a peer reaching its bridge. Run as root: node dist/bench/host-subnets.js
 */
import { spawn } from 'node:child_process';
import { Cluster } from '../test/helpers/cluster.js';
import { BUSYBOX, sleep, type Sandbox } from '../test/helpers/sandbox.js';

interface Figures {
  rttMs: number;
  gbps: number;
}

async function rtt(h: Sandbox, ns: string | undefined, target: string): Promise<number> {
  const args = ['ping', '-c', '50', '-i', '0.02', '-W', '1', target];
  const r = ns ? await h.inNs(ns, BUSYBOX, args, 30_000) : await h.inHost(BUSYBOX, args, 30_000);
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  if (!m) throw new Error(`ping ${target}: ${r.stdout} ${r.stderr}`);
  return Number(m[1]);
}

async function iperf(server: Sandbox, serverNs: string | undefined, client: Sandbox, clientNs: string | undefined, target: string): Promise<number> {
  const srv = serverNs ? server.spawnIn(serverNs, 'iperf3', ['-s', '-1']) : server.spawnIn(server.hostNs, 'iperf3', ['-s', '-1']);
  try {
    await sleep(500);
    const args = ['-c', target, '-t', '3', '-J'];
    const r = clientNs ? await client.inNs(clientNs, 'iperf3', args, 30_000) : await client.inHost('iperf3', args, 30_000);
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return Math.round(j.end.sum_received.bits_per_second / 1e7) / 100;
  } finally {
    srv.kill('SIGKILL');
  }
}

async function backend(type: string, cidr: string): Promise<{ figures: Figures; bare: Figures; firstPacketMs: number }> {
  const c = await Cluster.create({ hosts: 2, members: 1, ttl: 3, startDaemons: false });
  try {
    const flags = ['--cluster-cidr', cidr, '--backend', type];
    await c.startDaemon(0, flags);
    await c.hosts[0]!.berth('run', '-d', '--name', 'c0', '--', BUSYBOX, 'sleep', '3600');
    const ns0 = await c.hosts[0]!.netnsOf('c0');
    // Lease to first packet: host 1 starts; its lease is read from etcd as soon as it appears, and
    // c0 probes host 1's bridge gateway every 10 ms until one answers.
    const starting = c.startDaemon(1, flags);
    let leasedAt = 0;
    let gateway = '';
    for (let i = 0; i < 3000 && !leasedAt; i++) {
      const other = (await c.etcdList('/coreos.com/network/subnets/')).find((kv) => kv.value.includes(`"${c.address(1)}"`));
      if (other) {
        leasedAt = performance.now();
        gateway = other.key.split('/').pop()!.replace(/0-\d+$/, '1');
      } else await sleep(5);
    }
    // A continuous ping (every 10 ms): the first reply's arrival, not a retry's timeout, is timed.
    const pinger = spawn('nsenter', [`--net=${ns0}`, '--', BUSYBOX, 'ping', '-i', '0.01', '-w', '15', gateway], { stdio: ['ignore', 'pipe', 'ignore'] });
    const firstPacketMs = await new Promise<number>((resolve) => {
      pinger.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('bytes from')) resolve(Math.round(performance.now() - leasedAt));
      });
      pinger.once('exit', () => resolve(NaN));
    });
    pinger.kill('SIGKILL');
    await starting;
    await c.hosts[1]!.berth('run', '-d', '--name', 'c1', '--', BUSYBOX, 'sleep', '3600');
    const ns1 = await c.hosts[1]!.netnsOf('c1');
    const ip1 = (await c.hosts[1]!.inspect('c1')).NetworkSettings.Networks.bridge!.IPAddress;
    const figures = { rttMs: await rtt(c.hosts[0]!, ns0, ip1), gbps: await iperf(c.hosts[1]!, ns1, c.hosts[0]!, ns0, ip1) };
    const bare = { rttMs: await rtt(c.hosts[0]!, undefined, c.address(1)), gbps: await iperf(c.hosts[1]!, undefined, c.hosts[0]!, undefined, c.address(1)) };
    return { figures, bare, firstPacketMs };
  } finally {
    await c.destroy();
  }
}

for (const [type, cidr] of [['vxlan', '10.5.0.0/16'], ['host-gw', '10.6.0.0/16']] as const) {
  const r = await backend(type, cidr);
  console.log(JSON.stringify({ backend: type, ...r }));
}
