/**
 * What the host-subnet suites share (test/integration/cluster/host-subnets-*.test.ts): a cluster
 * of simulated hosts with --cluster-cidr and one backend, and the checks on them.
 */
import * as path from 'node:path';
import { BERTH, BUSYBOX, eventually, run } from './sandbox.js';
import type { Cluster } from './cluster.js';

export const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** What both backends' suites share: the cluster, its hosts and the checks on them. */
export function harness(cidr: string, backend: string, hosts: number) {
  const state = { c: undefined as unknown as Cluster };
  const h = (i: number) => state.c.hosts[i]!;
  const flags = (extra: string[] = []) => ['--cluster-cidr', cidr, '--backend', backend, ...extra];
  const subnetOf = async (i: number) => {
    const [net] = JSON.parse(await h(i).berthOk('network', 'inspect', 'bridge'));
    return net.IPAM.Config[0].Subnet as string;
  };
  const ipOf = async (i: number, name: string) => (await h(i).inspect(name)).NetworkSettings.Networks.bridge!.IPAddress;
  const ping = async (i: number, from: string, target: string) => (await h(i).inNs(await h(i).netnsOf(from), BUSYBOX, ['ping', '-c', '1', '-W', '1', target])).code === 0;
  /** The address a TCP listener at `target` sees `from` connect from. */
  const seenFrom = async (fromHost: number, from: string, toNs: string, toHost: number, target: string, port: number) => {
    const listener = h(toHost).spawnIn(toNs, 'socat', [`TCP-LISTEN:${port},reuseaddr,fork`, 'SYSTEM:echo $SOCAT_PEERADDR']);
    try {
      await eventually(async () => (await h(toHost).inNs(toNs, BUSYBOX, ['netstat', '-ltn'])).stdout.includes(`:${port}`), 3000);
      const got = await h(fromHost).inNs(await h(fromHost).netnsOf(from), BUSYBOX, ['nc', '-w', '2', target, String(port)], 5000);
      return got.stdout.trim();
    } finally {
      listener.kill('SIGKILL');
    }
  };
  /** A daemon in host i's namespace on its own root, with these flags; it must exit on its own. */
  const daemonWith = (i: number, args: string[]) =>
    run('nsenter', [`--net=${h(i).hostNs}`, '--', process.execPath, BERTH, 'daemon', '--root', path.join(h(i).root, 'state'), '--host', `unix://${h(i).root}/bad.sock`, '--resolv-conf', h(i).resolvConf, ...args], { timeoutMs: 15_000 });
  const leases = async () => (await state.c.etcdList('/coreos.com/network/subnets/')).map((kv) => ({ key: kv.key, ...JSON.parse(kv.value) }));
  return { state, h, flags, subnetOf, ipOf, ping, seenFrom, daemonWith, leases, hosts };
}

