/**
 * The udp backend of per-host subnets, driven directly (test/helpers/udp-runner.ts, one process
 * per sandbox host, peers given statically): each host has a bridge holding its subnet's gateway
 * and a "container" namespace on it. Containers on different hosts ping and connect to each other
 * with their own addresses; datagrams from a stranger and spoofed inner sources are dropped (each
 * against a positive control through the same socket); stopping removes the device and the process
 * exits 0; stopping without `remove` keeps the device, and a new run takes it back. Last, it
 * measures RTT and throughput over the backend against the bare underlay.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BUSYBOX, eventually, must, run, sleep, type Sandbox } from '../../helpers/sandbox.js';
import { Cluster, OUTSIDE_ADDRESS } from '../../helpers/cluster.js';

const RUNNER = fileURLToPath(new URL('../../helpers/udp-runner.js', import.meta.url));
const CLUSTER_CIDR = '10.5.0.0/16';
const subnetOf = (i: number) => `10.5.${i + 1}.0/24`;
const containerIp = (i: number) => `10.5.${i + 1}.2`;

/** One backend process in a host's namespace, spoken to a JSON line at a time. */
class Runner {
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | undefined;
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(line);
      } else this.lines.push(line);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  next(timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(JSON.parse(line));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the udp runner did not answer')), timeoutMs);
      this.waiting = (l) => {
        clearTimeout(timer);
        resolve(JSON.parse(l));
      };
    });
  }

  ask(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return this.next();
  }

  async counters(): Promise<Record<string, number>> {
    return (await this.ask({ op: 'counters' })) as Record<string, number>;
  }
}

/** An IPv4 ICMP echo request from `src` to `dst`, checksums right, as hex. */
function echoPacket(src: string, dst: string): string {
  const p = Buffer.alloc(28);
  p[0] = 0x45;
  p.writeUInt16BE(28, 2);
  p[8] = 64;
  p[9] = 1;
  Buffer.from(src.split('.').map(Number)).copy(p, 12);
  Buffer.from(dst.split('.').map(Number)).copy(p, 16);
  const sum = (b: Buffer) => {
    let s = 0;
    for (let i = 0; i < b.length; i += 2) s += b.readUInt16BE(i);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    return ~s & 0xffff;
  };
  p.writeUInt16BE(sum(p.subarray(0, 20)), 10);
  p[20] = 8;
  p.writeUInt16BE(0x4242, 24);
  p.writeUInt16BE(sum(p.subarray(20)), 22);
  return p.toString('hex');
}

describe('udp backend of per-host subnets', () => {
  let c: Cluster;
  const runners: (Runner | undefined)[] = [];
  const containers: string[] = [];
  const host = (i: number): Sandbox => c.hosts[i]!;
  const peerOf = (i: number) => ({ subnet: subnetOf(i), publicIp: c.address(i), backendType: 'udp', backendData: null });

  const startRunner = async (i: number): Promise<Runner> => {
    const local = { subnet: subnetOf(i), clusterCidr: CLUSTER_CIDR, publicIp: c.address(i), underlay: { ifname: 'eth0', mtu: 1500 }, root: host(i).root };
    const peers = [0, 1].filter((j) => j !== i).map(peerOf);
    const child = spawn('nsenter', [`--net=${host(i).hostNs}`, '--', process.execPath, RUNNER, JSON.stringify({ local, peers })], { stdio: ['pipe', 'pipe', 'inherit'] });
    const r = new Runner(child);
    runners[i] = r;
    const hello = await r.next();
    assert.deepEqual(hello, { ready: true }, `runner on h${i}`);
    return r;
  };

  const stopRunner = async (i: number, remove: boolean): Promise<number | null> => {
    const r = runners[i]!;
    assert.deepEqual(await r.ask({ op: 'stop', remove }), { stopped: true });
    const code = await Promise.race([r.exited, sleep(5000).then(() => 'hung' as const)]);
    runners[i] = undefined;
    assert.notEqual(code, 'hung', `the runner on h${i} exits after stop`);
    return code as number | null;
  };

  before(async () => {
    c = await Cluster.create({ hosts: 2, members: 0, startDaemons: false });
    for (const i of [0, 1]) {
      const h = host(i);
      const gw = `10.5.${i + 1}.1`;
      for (const args of [['link', 'add', 'br0', 'type', 'bridge'], ['addr', 'add', `${gw}/24`, 'dev', 'br0'], ['link', 'set', 'br0', 'up']]) must(await h.inHost('ip', args), `ip ${args.join(' ')}`);
      must(await h.inHost('sysctl', ['-qw', 'net.ipv4.ip_forward=1']), 'ip_forward');
      const ns = await h.makeNetns('c');
      containers[i] = ns;
      must(await h.inHost('ip', ['link', 'add', 'vc', 'mtu', '1472', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]), 'veth');
      must(await h.inHost('ip', ['link', 'set', 'vc', 'master', 'br0', 'up']), 'veth up');
      for (const args of [['addr', 'add', `${containerIp(i)}/24`, 'dev', 'eth0'], ['link', 'set', 'eth0', 'up'], ['link', 'set', 'lo', 'up'], ['route', 'add', 'default', 'via', gw]]) must(await h.inNs(ns, 'ip', args), `container ip ${args.join(' ')}`);
    }
    await Promise.all([startRunner(0), startRunner(1)]);
  });

  after(async () => {
    for (const r of runners) {
      if (r && r.child.exitCode === null) r.child.kill('SIGKILL');
      if (r) await r.exited;
    }
    await c?.destroy();
  });

  test('the device: berth-marked TUN, MTU underlay − 28, the subnet address as /32, the cluster CIDR routed through it', async () => {
    const [link] = JSON.parse(must(await host(0).inHost('ip', ['-j', '-d', 'link', 'show', 'berthudp0']), 'link'));
    assert.equal(link.linkinfo?.info_kind, 'tun');
    assert.equal(link.mtu, 1472);
    assert.match(link.ifalias, /^berth:[0-9a-f]{8}:tunnel:udp$/);
    const addrs = must(await host(0).inHost('ip', ['-4', '-o', 'addr', 'show', 'dev', 'berthudp0']), 'addr');
    assert.match(addrs, /inet 10\.5\.1\.0\/32/);
    const routes = must(await host(0).inHost('ip', ['route', 'show', 'dev', 'berthudp0']), 'routes');
    assert.match(routes, /^10\.5\.0\.0\/16 /m);
  });

  test('a container pings and TCP-connects a container on the other host, which sees its own address', async () => {
    const ping = (i: number, target: string) => host(i).inNs(containers[i]!, BUSYBOX, ['ping', '-c', '2', '-W', '2', target]);
    assert.equal((await ping(0, containerIp(1))).code, 0, 'c0 → c1');
    assert.equal((await ping(1, containerIp(0))).code, 0, 'c1 → c0');
    // The host itself reaches a remote container (its packets leave with the device's address).
    assert.equal((await host(0).inHost(BUSYBOX, ['ping', '-c', '1', '-W', '2', containerIp(1)])).code, 0, 'h0 → c1');
    const listener = host(1).spawnIn(containers[1]!, 'socat', ['TCP-LISTEN:7000,reuseaddr,fork', 'SYSTEM:echo $SOCAT_PEERADDR']);
    try {
      await eventually(async () => (await host(1).inNs(containers[1]!, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(':7000'), 3000);
      const got = await host(0).inNs(containers[0]!, BUSYBOX, ['nc', '-w', '2', containerIp(1), '7000'], 5000);
      assert.equal(got.stdout.trim(), containerIp(0), 'the receiver sees the sender container’s address');
    } finally {
      listener.kill('SIGKILL');
    }
    const counts = await runners[0]!.counters();
    assert.ok(counts.txPackets! > 0 && counts.rxPackets! > 0, `h0 sent and received: ${JSON.stringify(counts)}`);
  });

  test('a subnet no peer leases is dropped and counted at the sender', async () => {
    const before = await runners[0]!.counters();
    const r = await host(0).inNs(containers[0]!, BUSYBOX, ['ping', '-c', '1', '-W', '1', '10.5.9.2']);
    assert.notEqual(r.code, 0);
    const after = await runners[0]!.counters();
    assert.ok(after.noPeer! > before.noPeer!, `noPeer counted: ${JSON.stringify(after)}`);
  });

  test('datagrams from a stranger and with a spoofed inner source are dropped; a known peer’s is accepted', async () => {
    const send = (ns: string, hex: string) =>
      run('nsenter', [`--net=${ns}`, '--', process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.send(Buffer.from('${hex}','hex'),8285,'${c.address(1)}',(e)=>{if(e)throw e;s.close();});`]);
    const delta = async (ns: string, hex: string) => {
      const before = await runners[1]!.counters();
      must(await send(ns, hex), 'send datagram');
      let after = before;
      await eventually(async () => {
        after = await runners[1]!.counters();
        return Object.keys(after).some((k) => after[k] !== before[k]);
      }, 3000);
      return Object.fromEntries(Object.keys(after).filter((k) => after[k] !== before[k]).map((k) => [k, after[k]! - before[k]!]));
    };
    const genuine = echoPacket(containerIp(0), containerIp(1));
    // Positive control: h0 is a peer, the inner source is in its subnet.
    assert.deepEqual(pick(await delta(host(0).hostNs, genuine), ['rxPackets', 'unknownSender', 'spoofed']), { rxPackets: 1 });
    assert.deepEqual(pick(await delta(c.outsideNs, genuine), ['rxPackets', 'unknownSender', 'spoofed']), { unknownSender: 1 }, `a stranger (${OUTSIDE_ADDRESS}) is no peer`);
    assert.deepEqual(pick(await delta(host(0).hostNs, echoPacket('10.5.7.7', containerIp(1))), ['rxPackets', 'unknownSender', 'spoofed']), { spoofed: 1 });
  });

  test('stop without remove keeps the device (and route); a new run takes it back; stop with remove deletes it and the process exits 0', async () => {
    assert.equal(await stopRunner(1, false), 0);
    must(await host(1).inHost('ip', ['link', 'show', 'berthudp0']), 'device kept');
    assert.match(must(await host(1).inHost('ip', ['route', 'show', 'dev', 'berthudp0']), 'route'), /10\.5\.0\.0\/16/);
    await startRunner(1);
    assert.equal((await host(0).inNs(containers[0]!, BUSYBOX, ['ping', '-c', '1', '-W', '2', containerIp(1)])).code, 0, 'c0 → c1 after the restart');
    assert.equal(await stopRunner(1, true), 0);
    const gone = await host(1).inHost('ip', ['link', 'show', 'berthudp0']);
    assert.notEqual(gone.code, 0, 'no device after stop with remove');
    assert.doesNotMatch(must(await host(1).inHost('ip', ['route']), 'routes'), /10\.5\.0\.0\/16/);
    await startRunner(1);
  });

  test('measured: RTT and throughput container to container over udp, against the bare underlay', async (t) => {
    const rtt = async (ns: string, target: string) => {
      const out = must(await run('nsenter', [`--net=${ns}`, '--', BUSYBOX, 'ping', '-c', '20', '-i', '0.05', '-q', target], { timeoutMs: 20_000 }), 'ping');
      return /= ([\d.]+)\/([\d.]+)\//.exec(out)?.[2];
    };
    const iperf = async (serverNs: string, clientNs: string, target: string) => {
      const server = host(1).spawnIn(serverNs, 'iperf3', ['-s', '-1', '-p', '5201']);
      try {
        await eventually(async () => (await run('nsenter', [`--net=${serverNs}`, '--', BUSYBOX, 'netstat', '-ltn'])).stdout.includes(':5201'), 3000);
        const out = must(await run('nsenter', [`--net=${clientNs}`, '--', 'iperf3', '-c', target, '-t', '3', '-J'], { timeoutMs: 30_000 }), 'iperf3');
        const j = JSON.parse(out);
        return { mbps: Math.round(j.end.sum_received.bits_per_second / 1e6), retransmits: j.end.sum_sent.retransmits, senderCpu: Math.round(j.end.cpu_utilization_percent.host_total) };
      } finally {
        server.kill('SIGKILL');
      }
    };
    // CPU seconds (user + system) of each backend process, from /proc (clock ticks of 10 ms).
    const cpu = (i: number) => {
      const fields = fs.readFileSync(`/proc/${runners[i]!.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    };
    const figures = {
      underlayRttMs: await rtt(host(0).hostNs, c.address(1)),
      udpRttMs: await rtt(containers[0]!, containerIp(1)),
      underlay: await iperf(host(1).hostNs, host(0).hostNs, c.address(1)),
    };
    const before = await runners[0]!.counters();
    const cpuBefore = [cpu(0), cpu(1)];
    const udp = await iperf(containers[1]!, containers[0]!, containerIp(1));
    const pumpCpuSeconds = [cpu(0) - cpuBefore[0]!, cpu(1) - cpuBefore[1]!].map((s) => Number(s.toFixed(2)));
    const after = await runners[0]!.counters();
    const h0Counters = Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - before[k]!]));
    t.diagnostic(`udp backend figures: ${JSON.stringify({ ...figures, udp, pumpCpuSecondsOver3s: { sender: pumpCpuSeconds[0], receiver: pumpCpuSeconds[1] }, h0Counters })}`);
    assert.ok(udp.mbps > 0 && figures.underlay.mbps > 0, 'both paths carried traffic');
  });
});

function pick(o: Record<string, number>, keys: string[]): Record<string, number> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => keys.includes(k)));
}
