/**
 * `node dist/bench/tools/fan-figures.js [--samples N] [--seconds S]`: the fan's figures on a
 * simulated cluster as the tests build it (three sandbox hosts on a 192.168.90.0/24 underlay
 * bridge, no etcd, a daemon per host), printed as JSON (docs/fan.md quotes them):
 *
 * - first packet: a container is started on host B, and the first ICMP echo a container on host
 *   A sends it is timed (busybox ping's own RTT); the fan programs nothing per peer, so this
 *   should be an ordinary round trip. The same for a container on a host whose daemon has just
 *   started its fan, and the steady RTT afterwards (container → container, and host → host on
 *   the underlay);
 * - throughput: iperf3, one TCP stream, container on A → container on B over the fan against
 *   host A → host B on the bare underlay, interleaved.
 *
 * Until berth's firewall applies routedPeers, the network is made as the integration test makes
 * it (no masquerade, and the user-forward chain accepting overlay-to-overlay traffic).
 * Everything runs in sandbox namespaces; every process is killed by PID, the cluster destroyed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster } from '../../test/helpers/cluster.js';
import { BUSYBOX, REPO, eventually, must, sleep } from '../../test/helpers/sandbox.js';

const OVERLAY = '250.0.0.0/8';
const ROUTED_PEERS = fs.readFileSync(path.join(REPO, 'dist/src/firewall/ruleset.js'), 'utf8').includes('routedPeers');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const rttOf = (out: string) => Number(/time=([\d.]+) ms/.exec(out)?.[1] ?? NaN);
const median = (xs: number[]) => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
};
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const samples = arg('--samples', 20);
  const seconds = arg('--seconds', 5);
  const c = await Cluster.create({ hosts: 3, members: 0, startDaemons: false });
  try {
    const fan = async (i: number) => {
      const h = c.hosts[i]!;
      await h.startDaemon([]);
      const extra = ROUTED_PEERS ? [] : ['-o', 'com.docker.network.bridge.enable_ip_masquerade=false'];
      await h.berthOk('network', 'create', '-d', 'fan', '-o', 'underlay=192.168.0.0/16', '-o', `overlay=${OVERLAY}`, ...extra, 'fan');
      if (!ROUTED_PEERS) must(await h.inHost('nft', ['add', 'rule', 'ip', 'berth', 'user-forward', 'ip', 'saddr', OVERLAY, 'ip', 'daddr', OVERLAY, 'accept']), 'stand-in');
    };
    await fan(0);
    await fan(1);
    const [A, B, C] = c.hosts as [typeof c.hosts[0], typeof c.hosts[0], typeof c.hosts[0]];
    await A.berthOk('run', '-d', '--name', 'a', '--network', 'fan', '--', BUSYBOX, 'sleep', '3600');
    const nsA = await A.netnsOf('a');
    const ipOf = async (h: typeof A, name: string) => (await h.inspect(name)).NetworkSettings.Networks.fan!.IPAddress;
    const pingFrom = (ns: string, target: string, extra: string[] = []) => A.inNs(ns, BUSYBOX, ['ping', '-c', '1', '-W', '2', ...extra, target]);

    // First packet to containers that did not exist a moment ago.
    const first: number[] = [];
    let lost = 0;
    for (let k = 0; k < samples; k++) {
      await B.berthOk('run', '-d', '--name', `b${k}`, '--network', 'fan', '--', BUSYBOX, 'sleep', '3600');
      const r = await pingFrom(nsA, await ipOf(B, `b${k}`));
      if (r.code === 0) first.push(rttOf(r.stdout));
      else lost++;
      await B.berthOk('rm', '-f', `b${k}`);
    }
    // A host whose fan did not exist a moment ago.
    await fan(2);
    await C.berthOk('run', '-d', '--name', 'c', '--network', 'fan', '--', BUSYBOX, 'sleep', '3600');
    const newHost = await pingFrom(nsA, await ipOf(C, 'c'));

    await B.berthOk('run', '-d', '--name', 'b', '--network', 'fan', '--', BUSYBOX, 'sleep', '3600');
    const ipB = await ipOf(B, 'b');
    const steady = async (ns: string, target: string) => {
      const r = await A.inNs(ns, BUSYBOX, ['ping', '-c', String(samples * 5), '-i', '0.05', '-W', '2', target], 60_000);
      const m = /min\/avg\/max = ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(r.stdout);
      return m ? { min: Number(m[1]), avg: Number(m[2]), max: Number(m[3]) } : { error: r.stdout + r.stderr };
    };
    const rtt = { fan: await steady(nsA, ipB), underlay: await steady(A.hostNs, c.address(1)) };

    // Throughput, interleaved: fan, underlay, fan, underlay, …
    const nsB = await B.netnsOf('b');
    const iperf = async (serverNs: string, bind: string, clientNs: string) => {
      const server = B.spawnIn(serverNs, 'iperf3', ['-s', '-1', '-B', bind, '-p', '5201']);
      try {
        await eventually(async () => (await B.inNs(serverNs, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(':5201'), 3000);
        const r = await A.inNs(clientNs, 'iperf3', ['-c', bind, '-p', '5201', '-t', String(seconds), '-J'], (seconds + 15) * 1000);
        const json = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } } };
        return { gbps: round((json.end?.sum_received?.bits_per_second ?? NaN) / 1e9, 2), retransmits: json.end?.sum_sent?.retransmits ?? 0 };
      } finally {
        server.kill('SIGKILL');
        await sleep(200);
      }
    };
    const throughput: { fan: { gbps: number; retransmits: number }[]; underlay: { gbps: number; retransmits: number }[] } = { fan: [], underlay: [] };
    for (let k = 0; k < 3; k++) {
      throughput.fan.push(await iperf(nsB, ipB, nsA));
      throughput.underlay.push(await iperf(B.hostNs, c.address(1), A.hostNs));
    }
    const fanMedian = median(throughput.fan.map((t) => t.gbps));
    const underlayMedian = median(throughput.underlay.map((t) => t.gbps));
    console.log(
      JSON.stringify(
        {
          firewall: ROUTED_PEERS ? "berth's (routedPeers)" : 'stand-in (user-forward accept, masquerade off)',
          firstPacket: { samples, lost, medianMs: round(median(first)), maxMs: round(Math.max(...first)), rttsMs: first },
          newHostFirstPacketMs: newHost.code === 0 ? rttOf(newHost.stdout) : `lost: ${newHost.stdout}`,
          steadyRttMs: rtt,
          throughputGbps: { ...throughput, fanMedian, underlayMedian, ratio: round(fanMedian / underlayMedian, 2) },
        },
        null,
        2,
      ),
    );
  } finally {
    await c.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
