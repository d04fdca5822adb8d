/**
 * Routed networks (docs/routed.md § Figures), on two simulated hosts with a router running BIRD:
 * the setup cost of a routed container beside a bridge container (berth run, p50 of 10), the
 * cross-host container-to-container throughput (iperf3) as a ratio to the bare underlay, and
 * route convergence after a container start: from `berth run` returning on a host with no block
 * yet, to the router's BIRD having the new block. Run as root: node dist/bench/routed.js
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster } from '../test/helpers/cluster.js';
import { BUSYBOX, must, run, sleep, type Sandbox } from '../test/helpers/sandbox.js';

const ROUTER = '192.168.90.1';

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function startCost(h: Sandbox, network: string, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await h.berthOk('run', '-d', '--name', `${network}-${i}`, '--network', network, '--', BUSYBOX, 'sleep', '3600');
    times.push(performance.now() - t);
  }
  return Math.round(p50(times));
}

async function iperf(server: Sandbox, serverNs: string, client: Sandbox, clientNs: string, target: string): Promise<number> {
  const srv = server.spawnIn(serverNs, 'iperf3', ['-s', '-1']);
  try {
    await sleep(500);
    const r = await client.inNs(clientNs, 'iperf3', ['-c', target, '-t', '3', '-J'], 30_000);
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return Math.round(j.end.sum_received.bits_per_second / 1e7) / 100;
  } finally {
    srv.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const c = await Cluster.create({ hosts: 2, members: 1, ttl: 3, startDaemons: false });
  try {
    const h0 = c.hosts[0]!;
    const h1 = c.hosts[1]!;
    const routerNs = await h0.makeNetns('rt');
    must(await run('ip', ['-n', path.basename(c.underlayNs), 'link', 'add', 'rt', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', path.basename(routerNs)]), 'router veth');
    must(await run('ip', ['-n', path.basename(c.underlayNs), 'link', 'set', 'rt', 'master', 'ul', 'up']), 'router port');
    for (const args of [['addr', 'add', `${ROUTER}/24`, 'dev', 'eth0'], ['link', 'set', 'eth0', 'up'], ['link', 'set', 'lo', 'up']]) must(await run('ip', ['-n', path.basename(routerNs), ...args]), 'router');
    const conf = path.join(h0.root, 'router-bird.conf');
    const sock = path.join(h0.root, 'router-bird.ctl');
    fs.writeFileSync(
      conf,
      [`router id ${ROUTER};`, 'protocol device {}', ...[0, 1].map((i) => `protocol bgp h${i} { local ${ROUTER} as 65000; neighbor ${c.address(i)} as 64512; hold time 9; ipv4 { import all; export none; }; }`), ''].join('\n'),
    );
    h0.spawnIn(routerNs, 'bird', ['-f', '-c', conf, '-s', sock]);
    const flags = ['--bgp-asn', '64512', '--bgp-peer', `${ROUTER}:65000`];
    await c.startDaemon(0, flags);
    await c.startDaemon(1, flags);
    await h0.berthOk('network', 'create', '-d', 'routed', '--subnet', '10.150.0.0/16', 'rnet');
    await h0.berthOk('network', 'create', '--subnet', '10.151.0.0/24', 'bnet');
    for (let i = 0; i < 50 && (await h1.berth('network', 'inspect', 'rnet')).code !== 0; i++) await sleep(100);
    // Wait for the sessions, so the convergence figure is BGP's, not a session's start.
    for (let i = 0; i < 200; i++) {
      const out = (await run('birdc', ['-s', sock, 'show', 'protocols'])).stdout;
      if ((out.match(/Established/g) ?? []).length === 2) break;
      await sleep(100);
    }

    // Convergence: host 1 has no block yet; its first container claims one and BIRD advertises it.
    const t = performance.now();
    await h1.berthOk('run', '-d', '--name', 'first', '--network', 'rnet', '--', BUSYBOX, 'sleep', '3600');
    const runMs = performance.now() - t;
    const ip = (await h1.inspect('first')).NetworkSettings.Networks.rnet!.IPAddress;
    const block = `${ip.split('.').slice(0, 3).join('.')}.`;
    let convergedMs = -1;
    for (let i = 0; i < 2000; i++) {
      if ((await run('birdc', ['-s', sock, 'show', 'route'])).stdout.includes(block)) {
        convergedMs = Math.round(performance.now() - t);
        break;
      }
      await sleep(5);
    }

    const routedMs = await startCost(h0, 'rnet', 10);
    const bridgeMs = await startCost(h0, 'bnet', 10);

    const ns0 = await h0.netnsOf('rnet-0');
    const ns1 = await h1.netnsOf('first');
    for (let i = 0; i < 100; i++) {
      if ((await h0.inNs(ns0, BUSYBOX, ['ping', '-c', '1', '-W', '1', ip])).code === 0) break;
      await sleep(100);
    }
    const routed = await iperf(h1, ns1, h0, ns0, ip);
    const bare = await iperf(h1, h1.hostNs, h0, h0.hostNs, c.address(1));
    const figures = {
      setupMs: { routed: routedMs, bridge: bridgeMs },
      throughputGbps: { routed, underlay: bare, ratio: Math.round((routed / bare) * 100) / 100 },
      convergenceMs: { runReturned: Math.round(runMs), routerHasBlock: convergedMs },
    };
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    await c.destroy();
  }
}

await main();
