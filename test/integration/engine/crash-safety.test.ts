/**
 * Fault injection: the daemon is killed with SIGKILL at random moments of a mixed concurrent
 * workload, 50 times. After each restart the store and the kernel must agree (no leaked veth,
 * bridge port or namespace), no address may be held twice, and every running container must be
 * reachable.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ApiClient } from '../../../src/api/client.js';
import { BUSYBOX, Sandbox, sleep } from '../../helpers/sandbox.js';

const KILLS = 50;

interface NetworkInspect {
  Id: string;
  Name: string;
  Driver: string;
  Options: Record<string, string>;
  IPAM: { Config: { Gateway: string }[] };
  Containers: Record<string, { Name: string; IPv4Address: string }>;
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

describe('crash safety under fault injection', () => {
  let sb: Sandbox;
  let api: ApiClient;
  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 100000);
  const random = rng(seed);
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)]!;

  before(async () => {
    sb = await Sandbox.create('c');
    api = new ApiClient(`unix://${sb.socket}`);
    await sb.berthOk('network', 'create', '--subnet', '10.120.0.0/24', 'crash-a');
    await sb.berthOk('network', 'create', '--subnet', '10.121.0.0/24', 'crash-b');
  });
  after(async () => {
    await sb?.destroy();
  });

  /** One random operation through the API; failures (including the kill itself) are expected. */
  async function randomOperation(n: number): Promise<void> {
    const containers = (await api.request<{ Names: string[] }[]>('GET', '/containers/json?all=1')).map((c) => c.Names[0]!.slice(1));
    const op = random();
    if (op < 0.4 || containers.length < 3) {
      const { Id } = await api.request<{ Id: string }>('POST', '/containers/create', {
        name: `w${n}`,
        cmd: [BUSYBOX, 'sleep', '3600'],
        networkMode: pick(['crash-a', 'crash-b', 'bridge', 'none']),
        ports: random() < 0.3 ? [{ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 0, containerPort: 80 }] : [],
      });
      await api.request('POST', `/containers/${Id}/start?detach=1`);
    } else if (op < 0.6) {
      await api.request('DELETE', `/containers/${pick(containers)}?force=1`);
    } else if (op < 0.8) {
      await api.request('POST', `/networks/${pick(['crash-a', 'crash-b'])}/connect`, { Container: pick(containers) });
    } else if (op < 0.9) {
      await api.request('POST', `/networks/${pick(['crash-a', 'crash-b'])}/disconnect`, { Container: pick(containers), Force: true });
    } else {
      const name = `tmp${n}`;
      await api.request('POST', '/networks/create', { Name: name });
      await api.request('DELETE', `/networks/${name}`);
    }
  }

  async function checkInvariants(round: number): Promise<void> {
    const where = `round ${round} (CRASH_SEED=${seed})`;
    const list = await api.request<{ Id: string }[]>('GET', '/networks');
    const networks = await Promise.all(list.map((n) => api.request<NetworkInspect>('GET', `/networks/${n.Id}`)));
    const links = (await sb.inHost('ip', ['-o', 'link'])).stdout;
    const portsOf = (bridge: string) => links.split('\n').filter((l) => l.includes(` master ${bridge} `)).length;
    for (const net of networks) {
      if (net.Driver !== 'bridge' || net.IPAM.Config.length === 0) continue;
      const bridge = net.Options['com.docker.network.bridge.name'] ?? `berth-${net.Id.slice(0, 9)}`;
      const addresses = Object.values(net.Containers).map((c) => c.IPv4Address);
      assert.equal(new Set(addresses).size, addresses.length, `${where}: an address is held twice on ${net.Name}`);
      assert.equal(portsOf(bridge), addresses.length, `${where}: ${net.Name} has ${addresses.length} endpoints but ${portsOf(bridge)} bridge ports`);
      for (const c of Object.values(net.Containers)) {
        const ip = c.IPv4Address.split('/')[0]!;
        const ping = await sb.inHost('/bin/busybox', ['ping', '-c', '1', '-W', '2', ip]);
        assert.equal(ping.code, 0, `${where}: ${c.Name} (${ip}) on ${net.Name} is unreachable`);
      }
    }
    const running = await api.request<{ Id: string; HostConfig: { NetworkMode: string } }[]>('GET', '/containers/json');
    const owned = running.filter((c) => !['host'].includes(c.HostConfig.NetworkMode)).map((c) => c.Id).sort();
    const nsDir = sb.netnsDir;
    const namespaces = fs.readdirSync(nsDir).sort();
    assert.deepEqual(namespaces, owned, `${where}: namespaces under the root must be exactly the running containers'`);
    const orphans = links.split('\n').filter((l) => /: bv[0-9a-f]+@/.test(l) && !/ master /.test(l));
    assert.deepEqual(orphans, [], `${where}: veths outside any bridge`);
  }

  test(`${KILLS} kills at random moments leave nothing broken`, { timeout: 900_000 }, async () => {
    let n = 0;
    for (let round = 1; round <= KILLS; round++) {
      const workload = Array.from({ length: 4 }, () => randomOperation(n++).catch(() => undefined));
      await sleep(Math.floor(random() * 120));
      await sb.stopDaemon('SIGKILL');
      await Promise.all(workload);
      await sb.startDaemon();
      // Dropped namespaces take their veths with them asynchronously: allow the kernel a moment.
      for (let attempt = 0; ; attempt++) {
        try {
          await checkInvariants(round);
          break;
        } catch (err) {
          if (attempt >= 30) {
            const links = (await sb.inHost('ip', ['-d', '-o', 'link'])).stdout;
            throw new Error(`${(err as Error).message}\nlinks:\n${links}\ndaemon log:\n${sb.daemonLog.slice(-3000)}`);
          }
          await sleep(100);
        }
      }
    }
  });
});
