/**
 * A simulated cluster for multi-host tests: N sandbox hosts whose `eth0` sits on an underlay (a
 * bridge in a namespace of its own, 192.168.90.0/24), an "outside" namespace on that underlay
 * (192.168.90.254, a stand-in for the world beyond the hosts), and a real etcd cluster whose
 * members run inside the first hosts' namespaces on their underlay addresses. Every process is
 * started here and killed by PID; `destroy()` removes everything, even after a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Sandbox, eventually, must, run, sleep } from './sandbox.js';

export const UNDERLAY_PREFIX = '192.168.90';
export const OUTSIDE_ADDRESS = `${UNDERLAY_PREFIX}.254`;

export interface ClusterOptions {
  hosts?: number;
  /** etcd members (on the first hosts); default 1. */
  members?: number;
  /** The hosts' lease TTL in seconds. */
  ttl?: number;
  /** Start every host's daemon (default true). */
  startDaemons?: boolean;
}

export class Cluster {
  readonly hosts: Sandbox[] = [];
  underlayNs = '';
  outsideNs = '';
  private readonly etcd: (ChildProcess | undefined)[] = [];
  private readonly etcdLogs: string[] = [];
  readonly ttl: number;
  private readonly memberCount: number;

  private constructor(opts: ClusterOptions) {
    this.ttl = opts.ttl ?? 3;
    this.memberCount = opts.members ?? 1;
  }

  static async create(opts: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster(opts);
    try {
      const n = opts.hosts ?? 3;
      for (let i = 0; i < n; i++) c.hosts.push(await Sandbox.create(`h${i}`, { startDaemon: false }));
      const first = c.hosts[0]!;
      c.underlayNs = await first.makeNetns('ul');
      for (const args of [['link', 'add', 'ul', 'type', 'bridge'], ['link', 'set', 'ul', 'up'], ['link', 'set', 'lo', 'up']]) must(await first.inNs(c.underlayNs, 'ip', args), `underlay: ip ${args.join(' ')}`);
      for (let i = 0; i < n; i++) await c.plug(c.hosts[i]!.hostNs, `h${i}`, c.address(i));
      c.outsideNs = await first.makeNetns('out');
      await c.plug(c.outsideNs, 'out', OUTSIDE_ADDRESS);
      for (let i = 0; i < c.memberCount; i++) c.startEtcd(i, 'new');
      if (!(await eventually(async () => (await c.etcdHealthy()) === c.memberCount, 20_000, 200))) throw new Error(`etcd did not come up: ${c.etcdLogs.join('\n---\n').slice(-3000)}`);
      if (opts.startDaemons !== false) for (let i = 0; i < n; i++) await c.startDaemon(i);
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  /** Host i's underlay address. */
  address(i: number): string {
    return `${UNDERLAY_PREFIX}.${11 + i}`;
  }

  get store(): string {
    return `etcd://${Array.from({ length: this.memberCount }, (_, i) => `${this.address(i)}:2379`).join(',')}`;
  }

  clusterArgs(i: number): string[] {
    return ['--cluster-store', this.store, '--advertise-addr', this.address(i), '--cluster-ttl', String(this.ttl)];
  }

  startDaemon(i: number, extra: string[] = []): Promise<void> {
    return this.hosts[i]!.startDaemon([...this.clusterArgs(i), ...extra]);
  }

  /** A veth from `ns` (eth0 there, with `address`/24) to a port of the underlay bridge. */
  private async plug(ns: string, port: string, address: string): Promise<void> {
    const ul = path.basename(this.underlayNs);
    const target = path.basename(ns);
    must(await run('ip', ['-n', ul, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', target]), 'underlay veth');
    must(await run('ip', ['-n', ul, 'link', 'set', port, 'master', 'ul', 'up']), 'underlay port');
    for (const args of [['addr', 'add', `${address}/24`, 'dev', 'eth0'], ['link', 'set', 'eth0', 'up'], ['link', 'set', 'lo', 'up']]) must(await run('ip', ['-n', target, ...args]), `ip ${args.join(' ')}`);
  }

  private etcdDir(i: number): string {
    return path.join(this.hosts[i]!.root, 'etcd');
  }

  /** Starts member i (state 'new' for the first start, 'existing' to bring it back). */
  startEtcd(i: number, state: 'new' | 'existing' = 'existing'): void {
    const a = this.address(i);
    const initial = Array.from({ length: this.memberCount }, (_, j) => `m${j}=http://${this.address(j)}:2380`).join(',');
    const args = [
      `--net=${this.hosts[i]!.hostNs}`,
      '--',
      'etcd',
      '--name', `m${i}`,
      '--data-dir', this.etcdDir(i),
      '--listen-client-urls', `http://${a}:2379`,
      '--advertise-client-urls', `http://${a}:2379`,
      '--listen-peer-urls', `http://${a}:2380`,
      '--initial-advertise-peer-urls', `http://${a}:2380`,
      '--initial-cluster', initial,
      '--initial-cluster-state', state,
      '--initial-cluster-token', path.basename(this.hosts[0]!.root),
    ];
    const child = spawn('nsenter', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.etcdLogs[i] = '';
    child.stderr!.on('data', (d) => (this.etcdLogs[i] = (this.etcdLogs[i] + d).slice(-20_000)));
    this.etcd[i] = child;
  }

  async killEtcd(i: number): Promise<void> {
    const child = this.etcd[i];
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
    this.etcd[i] = undefined;
  }

  /** How many members answer their health endpoint. */
  async etcdHealthy(): Promise<number> {
    let ok = 0;
    for (let i = 0; i < this.memberCount; i++) {
      const r = await this.hosts[i]!.inHost('curl', ['-s', '-m', '1', `http://${this.address(i)}:2379/health`], 3000);
      if (r.stdout.includes('"health":"true"')) ok++;
    }
    return ok;
  }

  /** Reads keys under a prefix through member 0's gateway (values decoded). */
  async etcdList(prefix: string, member = 0): Promise<{ key: string; value: string }[]> {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const end = Buffer.from(prefix);
    end[end.length - 1]++;
    const r = await this.hosts[member]!.inHost('curl', ['-s', '-m', '2', '-X', 'POST', `http://${this.address(member)}:2379/v3/kv/range`, '-d', JSON.stringify({ key: b64(prefix), range_end: end.toString('base64') })], 4000);
    const body = JSON.parse(r.stdout || '{}') as { kvs?: { key: string; value: string }[] };
    return (body.kvs ?? []).map((kv) => ({ key: Buffer.from(kv.key, 'base64').toString(), value: Buffer.from(kv.value ?? '', 'base64').toString() }));
  }

  async destroy(): Promise<void> {
    for (let i = 0; i < this.etcd.length; i++) await this.killEtcd(i).catch(() => undefined);
    // Hosts in reverse: the first one owns the underlay and outside namespaces.
    for (const h of [...this.hosts].reverse()) {
      await h.destroy();
      // wireguard-go (killed with the host's processes) leaves its UAPI socket behind.
      const owner = createHash('sha256').update(path.resolve(path.join(h.root, 'state'))).digest('hex').slice(0, 8);
      fs.rmSync(`/var/run/wireguard/bwg${owner}.sock`, { force: true });
    }
    for (let i = 0; i < this.hosts.length; i++) fs.rmSync(this.etcdDir(i), { recursive: true, force: true });
    await sleep(0);
  }
}
