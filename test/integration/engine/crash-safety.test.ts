/**
 * Fault injection: the daemon is killed with SIGKILL at random moments of a mixed concurrent
 * workload (containers on user networks, one of them dual stack, the default bridge and `none`, `container:NAME` sharers,
 * published ports, connect/disconnect, network create/rm, CNI ADD/DEL), and in some rounds killed
 * again while it is starting up and reconciling. After each recovery the kernel must match the
 * store: the addresses inside every container namespace (none held twice), each endpoint's veth on
 * its network's bridge, berth's nft elements, the names on each network's resolver, the
 * namespaces under the root and the container processes. Invariants are checked once per round,
 * right after one bounded wait for the daemon to be ready; only the deletion of a dropped
 * namespace's veths, which the kernel does asynchronously, gets one bounded wait at the end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { ApiClient } from '../../../src/api/client.js';
import { BUSYBOX, Sandbox, eventually, sleep, type ContainerInspect } from '../../helpers/sandbox.js';
import { digA } from '../../helpers/net-probes.js';

/** Rounds run until this much time has passed (the whole test stays under a minute)… */
const ROUNDS_BUDGET_MS = 38_000;
/** …but never fewer than this many kills, nor more than the maximum. */
const MIN_ROUNDS = 8;
const MAX_ROUNDS = 50;
const CNI_NAMESPACES = 3;
const USER_NETWORKS = ['crash-a', 'crash-b'];

interface NetworkInspect {
  Id: string;
  Name: string;
  Driver: string;
  Options: Record<string, string>;
  IPAM: { Config: { Subnet: string; Gateway: string }[] };
  Containers: Record<string, { Name: string; IPv4Address: string; IPv6Address: string }>;
}

interface Summary {
  Id: string;
  Names: string[];
  State: string;
  HostConfig: { NetworkMode: string };
}

/** Random choice, reproducible per seed so a failure can be replayed (CRASH_SEED). */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const bridgeOf = (net: NetworkInspect) => net.Options['com.docker.network.bridge.name'] ?? `berth-${net.Id.slice(0, 9)}`;
/** How an interface set holds a bridge: the name twice (`ifname . ifname`, see src/firewall/names.ts). */
const bridgePair = (net: NetworkInspect) => `${bridgeOf(net)} . ${bridgeOf(net)}`;
const isSharer = (c: ContainerInspect | Summary) => ('HostConfig' in c ? (c as Summary).HostConfig.NetworkMode : '').startsWith('container:');
const isCni = (name: string) => name.replace(/^\//, '').startsWith('cni-');

/** One CNI call to the daemon, as the CNI shim (dist/bin/berth-cni) makes it; resolves true on success. */
function cniCall(socketPath: string, command: 'ADD' | 'DEL', containerId: string, netns: string): Promise<boolean> {
  const body = JSON.stringify({ cniVersion: '1.1.0', name: 'crash-a', type: 'berth', network: 'crash-a' });
  return new Promise((resolve) => {
    const req = http.request(
      {
        socketPath,
        method: 'POST',
        path: '/cni',
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          'CNI-Command': command,
          'CNI-ContainerId': containerId,
          'CNI-Netns': netns,
          'CNI-Ifname': 'eth0',
          'CNI-Args': '',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve((res.statusCode ?? 500) < 300));
      },
    );
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

interface IpAddr {
  ifname: string;
  ifindex: number;
  link_index?: number;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

describe('crash safety under fault injection', () => {
  let sb: Sandbox;
  let api: ApiClient;
  const cniNetns: string[] = [];
  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 100000);
  const random = rng(seed);
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)]!;
  // Marks this test's container processes (busybox sleep adds its arguments up).
  const marker = `0.0${process.pid}${seed}`;
  const completed: Record<string, number> = {};
  const done = (what: string) => (completed[what] = (completed[what] ?? 0) + 1);

  before(async () => {
    sb = await Sandbox.create('c');
    api = new ApiClient(`unix://${sb.socket}`);
    await sb.berthOk('network', 'create', '--subnet', '10.120.0.0/24', 'crash-a');
    // Dual stack: its IPv6 addresses, ip6 elements and IPv6 reachability are checked too.
    await sb.berthOk('network', 'create', '--ipv6', '--subnet', '10.121.0.0/24', '--subnet', 'fd21::/64', 'crash-b');
    for (let i = 0; i < CNI_NAMESPACES; i++) cniNetns.push(await sb.makeNetns(`k${i}`));
  });
  after(async () => {
    api?.close();
    await sb?.destroy();
  });

  /** One random operation through the API; failures (including the kill itself) are expected. */
  async function runOne(n: number): Promise<void> {
    const { Id } = await api.request<{ Id: string }>('POST', '/containers/create', {
      name: `w${n}`,
      cmd: [BUSYBOX, 'sleep', '3600', marker],
      networkMode: pick([...USER_NETWORKS, 'bridge', 'none']),
      ports: random() < 0.3 ? [{ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 0, containerPort: 80 }] : [],
    });
    await api.request('POST', `/containers/${Id}/start?detach=1`);
    done('run');
  }

  async function randomOperation(n: number): Promise<void> {
    const all = await api.request<Summary[]>('GET', '/containers/json?all=1');
    const names = all.map((c) => c.Names[0]!.slice(1));
    const owners = all.filter((c) => c.State === 'running' && !isSharer(c) && !isCni(c.Names[0]!) && c.HostConfig.NetworkMode !== 'host').map((c) => c.Names[0]!.slice(1));
    const op = random();
    if (op < 0.35 || names.length < 3) {
      await runOne(n);
    } else if (op < 0.45 && owners.length) {
      const { Id } = await api.request<{ Id: string }>('POST', '/containers/create', { name: `s${n}`, cmd: [BUSYBOX, 'sleep', '3600', marker], networkMode: `container:${pick(owners)}` });
      await api.request('POST', `/containers/${Id}/start?detach=1`);
      done('run container:');
    } else if (op < 0.6) {
      await api.request('DELETE', `/containers/${pick(names)}?force=1`);
      done('rm -f');
    } else if (op < 0.7 && owners.length) {
      await api.request('POST', `/networks/${pick(USER_NETWORKS)}/connect`, { Container: pick(owners) });
      done('connect');
    } else if (op < 0.78 && owners.length) {
      await api.request('POST', `/networks/${pick(USER_NETWORKS)}/disconnect`, { Container: pick(owners), Force: true });
      done('disconnect');
    } else if (op < 0.83) {
      const name = `tmp${n}`;
      await api.request('POST', '/networks/create', { Name: name });
      await api.request('DELETE', `/networks/${name}`);
      done('network create+rm');
    } else {
      const i = Math.floor(random() * CNI_NAMESPACES);
      const attached = names.includes(`cni-k${i}`);
      if (await cniCall(sb.socket, attached ? 'DEL' : 'ADD', `k${i}`, cniNetns[i]!)) done(attached ? 'cni DEL' : 'cni ADD');
    }
  }

  async function addressesIn(nsPath: string): Promise<IpAddr[]> {
    const r = await sb.inNs(nsPath, 'ip', ['-j', '-d', 'addr']);
    assert.equal(r.code, 0, `ip addr in ${nsPath}: ${r.stderr}`);
    return (JSON.parse(r.stdout) as IpAddr[]).filter((l) => l.ifname !== 'lo');
  }

  /** berth's nft elements of one set or map (of table `family berth`), as `key` or `key : value` strings. */
  async function nftElements(family = 'ip'): Promise<Map<string, string[]>> {
    const r = await sb.inHost('nft', ['-j', 'list', 'table', family, 'berth']);
    assert.equal(r.code, 0, `nft list table ${family} berth: ${r.stderr}`);
    const text = (v: unknown): string => {
      if (typeof v === 'string' || typeof v === 'number') return String(v);
      if (Array.isArray(v)) return v.map(text).join(' : ');
      const o = v as Record<string, unknown>;
      if ('elem' in o) return text((o['elem'] as Record<string, unknown>)['val']);
      if ('concat' in o) return (o['concat'] as unknown[]).map(text).join(' . ');
      if ('prefix' in o) return `${(o['prefix'] as { addr: string }).addr}/${(o['prefix'] as { len: number }).len}`;
      if ('range' in o) return (o['range'] as unknown[]).map(text).join('-');
      return JSON.stringify(v);
    };
    const sets = new Map<string, string[]>();
    for (const obj of (JSON.parse(r.stdout) as { nftables: Record<string, Record<string, unknown>>[] }).nftables) {
      const set = obj['set'] ?? obj['map'];
      if (set) sets.set(String(set['name']), ((set['elem'] as unknown[] | undefined) ?? []).map(text).sort());
    }
    return sets;
  }

  async function checkInvariants(where: string): Promise<number> {
    const networks = await Promise.all((await api.request<{ Id: string }[]>('GET', '/networks')).map((n) => api.request<NetworkInspect>('GET', `/networks/${n.Id}`)));
    const summaries = await api.request<Summary[]>('GET', '/containers/json');
    const running = await Promise.all(summaries.map(async (s) => ({ s, c: await api.request<ContainerInspect>('GET', `/containers/${s.Id}/json`) })));
    const bridges = new Map(networks.filter((n) => n.Driver === 'bridge' && n.IPAM.Config.length > 0).map((n) => [n.Name, n]));

    // Namespaces under the root: exactly those of running containers (sharers use their owner's).
    const nsDir = sb.netnsDir;
    const expectedNs = new Set(running.map(({ c }) => c.NetworkSettings.SandboxKey).filter((k) => k.startsWith(`${nsDir}/`)).map((k) => path.basename(k)));
    assert.deepEqual(fs.readdirSync(nsDir).sort(), [...expectedNs].sort(), `${where}: namespaces under the root must be exactly the running containers'`);

    // Addresses inside each namespace match the store; no address is held in two namespaces; each
    // endpoint's interface is one end of a veth whose host end is a port of its network's bridge.
    const hostLinks = JSON.parse((await sb.inHost('ip', ['-j', '-d', 'link'])).stdout) as { ifindex: number; ifname: string; master?: string }[];
    const hostByIndex = new Map(hostLinks.map((l) => [l.ifindex, l]));
    const holder = new Map<string, string>();
    const seen = new Set<string>();
    for (const { s, c } of running) {
      const key = c.NetworkSettings.SandboxKey;
      if (isSharer(s) || !key || seen.has(key) || s.HostConfig.NetworkMode === 'host') continue;
      seen.add(key);
      const links = await addressesIn(key);
      const actual = links.flatMap((l) => l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).sort();
      const expected = Object.values(c.NetworkSettings.Networks).map((e) => `${e.IPAddress}/${e.IPPrefixLen}`).sort();
      assert.deepEqual(actual, expected, `${where}: addresses in ${c.Name}'s namespace`);
      const actual6 = links.flatMap((l) => l.addr_info.filter((a) => a.family === 'inet6' && !a.local.startsWith('fe80:')).map((a) => `${a.local}/${a.prefixlen}`)).sort();
      const expected6 = Object.values(c.NetworkSettings.Networks).filter((e) => e.GlobalIPv6Address).map((e) => `${e.GlobalIPv6Address}/${e.GlobalIPv6PrefixLen}`).sort();
      assert.deepEqual(actual6, expected6, `${where}: IPv6 addresses in ${c.Name}'s namespace`);
      for (const a of actual6) {
        assert.equal(holder.get(a), undefined, `${where}: ${a} is in the namespaces of ${holder.get(a)} and ${c.Name}`);
        holder.set(a, c.Name);
      }
      for (const a of actual) {
        assert.equal(holder.get(a), undefined, `${where}: ${a} is in the namespaces of ${holder.get(a)} and ${c.Name}`);
        holder.set(a, c.Name);
      }
      for (const [netName, e] of Object.entries(c.NetworkSettings.Networks)) {
        const link = links.find((l) => l.addr_info.some((a) => a.local === e.IPAddress))!;
        const hostEnd = link.link_index === undefined ? undefined : hostByIndex.get(link.link_index);
        const bridge = bridges.get(netName);
        assert.ok(bridge, `${where}: ${c.Name} is on ${netName}, which is no bridge network`);
        assert.equal(hostEnd?.master, bridgeOf(bridge), `${where}: ${c.Name}'s ${link.ifname} on ${netName}: host end ${hostEnd?.ifname} must be a port of ${bridgeOf(bridge)}`);
      }
    }
    // CNI namespaces nobody attached to carry no address (a half-done ADD leaves nothing).
    for (const [i, nsPath] of cniNetns.entries()) {
      if (seen.has(nsPath)) continue;
      assert.deepEqual((await addressesIn(nsPath)).map((l) => l.ifname), [], `${where}: CNI namespace k${i} has no attachment in the store but interfaces in the kernel`);
    }
    const orphans = hostLinks.filter((l) => /^bv[0-9a-f]+$/.test(l.ifname) && !l.master).map((l) => l.ifname);
    assert.deepEqual(orphans, [], `${where}: veths outside any bridge`);

    // berth's nft elements are the store's networks and published ports, nothing more or less.
    const sets = await nftElements();
    assert.deepEqual(sets.get('bridges'), [...bridges.values()].map(bridgePair).sort(), `${where}: nft set bridges`);
    assert.deepEqual(sets.get('container_subnets') ?? sets.get('containerSubnets'), [...bridges.values()].map((n) => n.IPAM.Config[0]!.Subnet).sort(), `${where}: nft container subnets`);
    const expectedDnat: string[] = [];
    const expectedDnat6: string[] = [];
    for (const { c } of running) {
      for (const [spec, bindings] of Object.entries(c.NetworkSettings.Ports)) {
        const [containerPort, proto] = spec.split('/');
        for (const b of bindings ?? []) {
          if (b.HostIp === '::') expectedDnat6.push(`${proto} . ${b.HostPort} : ${c.NetworkSettings.GlobalIPv6Address} . ${containerPort}`);
          else expectedDnat.push(`${proto} . ${b.HostPort} : ${c.NetworkSettings.IPAddress} . ${containerPort}`);
        }
      }
    }
    assert.deepEqual(sets.get('dnat_any'), expectedDnat.sort(), `${where}: nft published ports`);
    const sets6 = await nftElements('ip6');
    const dual = [...bridges.values()].filter((n) => n.IPAM.Config[1]);
    assert.deepEqual(sets6.get('bridges'), dual.map(bridgePair).sort(), `${where}: nft ip6 set bridges`);
    assert.deepEqual(sets6.get('container_subnets'), dual.map((n) => n.IPAM.Config[1]!.Subnet).sort(), `${where}: nft ip6 container subnets`);
    assert.deepEqual(sets6.get('dnat_any'), expectedDnat6.sort(), `${where}: nft ip6 published ports`);

    // Each network's resolver answers every attached container's name with its address, asked
    // from a container of the network; and every endpoint answers a ping from the host.
    for (const net of bridges.values()) {
      const members = Object.values(net.Containers);
      const asker = running.find(({ s, c }) => !isSharer(s) && c.NetworkSettings.Networks[net.Name]);
      for (const m of members) {
        const ip = m.IPv4Address.split('/')[0]!;
        assert.equal((await sb.inHost(BUSYBOX, ['ping', '-c', '1', '-W', '2', ip])).code, 0, `${where}: ${m.Name} (${ip}) on ${net.Name} is unreachable`);
        const ip6 = m.IPv6Address.split('/')[0]!;
        if (ip6) assert.equal((await sb.inHost(BUSYBOX, ['ping', '-6', '-c', '1', '-W', '2', ip6])).code, 0, `${where}: ${m.Name} (${ip6}) on ${net.Name} is unreachable over IPv6`);
        if (!USER_NETWORKS.includes(net.Name) || !asker) continue;
        const dns = await digA(sb, asker.c.NetworkSettings.SandboxKey, net.IPAM.Config[0]!.Gateway, m.Name);
        if (dns.answers.length !== 1 || dns.answers[0] !== ip) {
          const sockets = (await sb.inHost('ss', ['-lunp'])).stdout;
          const redirect = (await sb.inHost('nft', ['list', 'map', 'ip', 'berth', 'dns_redirect'])).stdout;
          assert.fail(`${where}: ${m.Name} on ${net.Name}'s resolver, asked from ${asker.c.Name}: ${dns.status} ${JSON.stringify(dns.answers)}, expected ${ip}\nresolver sockets:\n${sockets}\n${redirect}`);
        }
      }
    }

    // Container processes: exactly the running containers' (none left behind by a killed operation).
    const pids: number[] = [];
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(marker)) pids.push(Number(pid));
      } catch {
        /* exited meanwhile */
      }
    }
    const expectedPids = running.filter(({ c }) => c.State.Pid > 0).map(({ c }) => c.State.Pid);
    const describeProcess = (pid: number) => {
      try {
        return `${pid} (parent ${/PPid:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]}, ${fs.readlinkSync(`/proc/${pid}/ns/net`)})`;
      } catch {
        return `${pid} (gone)`;
      }
    };
    const stray = pids.filter((p) => !expectedPids.includes(p)).map(describeProcess);
    const missing = expectedPids.filter((p) => !pids.includes(p));
    assert.deepEqual({ stray, missing }, { stray: [], missing: [] }, `${where}: container processes must be exactly the running containers' (stray: left running with no running container; missing: a running container without its process)`);
    return running.length;
  }

  test('random kills, during operations and during recovery, leave the kernel matching the store', { timeout: 120_000 }, async (t) => {
    const started = Date.now();
    let n = 0;
    let rounds = 0;
    let recoveryKills = 0;
    let bootMs = 300;
    let checked = 0;
    for (; rounds < MAX_ROUNDS && (rounds < MIN_ROUNDS || Date.now() - started < ROUNDS_BUDGET_MS); rounds++) {
      const where = `round ${rounds + 1} (CRASH_SEED=${seed})`;
      const workload = Array.from({ length: 4 }, () => randomOperation(n++).catch(() => undefined));
      if (!completed['run'] && rounds >= MIN_ROUNDS / 2) {
        // On a loaded machine every kill can land before any start ends, and the test would cover
        // no start: this round lets one finish (bounded) before its kill.
        await Promise.race([runOne(n++).catch(() => undefined), sleep(20_000)]);
      } else await sleep(Math.floor(random() * 150));
      await sb.stopDaemon('SIGKILL');
      await Promise.all(workload);
      if (random() < 0.4) {
        // Kill it again while it boots: late in start-up, where it opens the store and reconciles.
        if (await sb.startDaemonAndKill(Math.floor(bootMs * (0.4 + 0.6 * random())))) recoveryKills++;
      }
      const bootStarted = Date.now();
      await sb.startDaemon();
      bootMs = Date.now() - bootStarted;
      try {
        checked += await checkInvariants(where);
      } catch (err) {
        const links = (await sb.inHost('ip', ['-d', '-o', 'link'])).stdout;
        if (process.env.CRASH_LOG) fs.writeFileSync(process.env.CRASH_LOG, sb.daemonLog);
        throw new Error(`${(err as Error).message}\nlinks:\n${links}\ndaemon log:\n${sb.daemonLog.slice(-3000)}`);
      }
    }
    // The kernel deletes a dropped namespace's veths asynchronously: one bounded wait, then no
    // bridge may have a port more than its network has endpoints.
    const portCounts = async () => {
      const links = (await sb.inHost('ip', ['-o', 'link'])).stdout.split('\n');
      const nets = await Promise.all((await api.request<{ Id: string }[]>('GET', '/networks')).map((x) => api.request<NetworkInspect>('GET', `/networks/${x.Id}`)));
      return nets.filter((x) => x.Driver === 'bridge' && x.IPAM.Config.length > 0).map((x) => ({
        network: x.Name,
        endpoints: Object.keys(x.Containers).length,
        ports: links.filter((l) => l.includes(` master ${bridgeOf(x)} `)).length,
      }));
    };
    await eventually(async () => (await portCounts()).every((p) => p.ports === p.endpoints), 5000, 100);
    for (const p of await portCounts()) assert.equal(p.ports, p.endpoints, `${p.network}: ${p.endpoints} endpoints but ${p.ports} bridge ports (CRASH_SEED=${seed})`);

    const total = Object.values(completed).reduce((a, b) => a + b, 0);
    t.diagnostic(`seed ${seed}: ${rounds} rounds, ${recoveryKills} kills during recovery, ${Date.now() - started} ms, ${checked} container checks; completed ${JSON.stringify(completed)}`);
    assert.ok(total > 0, `no operation completed in ${rounds} rounds: the workload tested nothing`);
    assert.ok(recoveryKills > 0, 'no kill landed during recovery');
    assert.ok((completed['run'] ?? 0) > 0, `no container was started: ${JSON.stringify(completed)}`);
  });
});
