/**
 * Cluster IPAM, measured: K hosts allocate addresses of one /24 at the same time against a real
 * etcd, with berth's scheme (one key per address, compare-and-swap, lowest free first, re-read
 * after a lost race) and with per-host blocks (a /28 claimed per host by CAS, then addresses from
 * it with one put each). Reports ms per address, CAS conflicts, and whether any address was held
 * twice. Runs etcd in a namespace of its own on loopback; removes everything after.
 *
 *   node dist/bench/tools/ipam-race.js [--hosts 3] [--per-host 60]
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EtcdClient } from '../../src/cluster/etcd.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const HOSTS = opt('hosts', 3);
const PER_HOST = opt('per-host', 60);
const NS = `bipam${process.pid}`;
const URL = 'http://127.0.0.1:23795';

/** berth's scheme: each host scans from its own share of the range (host i of K starts at i/K), lowest free from there. */
async function perAddress(etcd: EtcdClient, host: number, prefix: string): Promise<{ ms: number[]; conflicts: number; got: string[] }> {
  return perAddressFrom(etcd, host, prefix, 2 + Math.floor((host * 253) / HOSTS));
}

/** The same, every host scanning from the bottom (Docker's single-host rule applied cluster-wide). */
async function perAddressLowest(etcd: EtcdClient, host: number, prefix: string): Promise<{ ms: number[]; conflicts: number; got: string[] }> {
  return perAddressFrom(etcd, host, prefix, 2);
}

/**
 * One CAS per address when the host's view of the held addresses is current (berth keeps it from
 * its watch; here from its own allocations), a re-read only after a lost race.
 */
async function perAddressFrom(etcd: EtcdClient, host: number, prefix: string, start: number): Promise<{ ms: number[]; conflicts: number; got: string[] }> {
  const ms: number[] = [];
  const got: string[] = [];
  let conflicts = 0;
  let used = new Set<number>();
  for (let n = 0; n < PER_HOST; n++) {
    const t0 = performance.now();
    for (;;) {
      let ip = start;
      while (used.has(ip)) ip = ip >= 254 ? 2 : ip + 1;
      const key = `${prefix}${ip}`;
      const txn = await etcd.txn([{ key, target: 'CREATE', value: 0 }], [{ put: { key, value: `h${host}` } }]);
      if (txn.succeeded) {
        got.push(String(ip));
        used.add(ip);
        break;
      }
      conflicts++;
      const { kvs } = await etcd.list(prefix);
      used = new Set(kvs.map((kv) => Number(kv.key.slice(prefix.length))));
    }
    ms.push(performance.now() - t0);
  }
  return { ms, conflicts, got };
}

async function perBlock(etcd: EtcdClient, host: number, prefix: string): Promise<{ ms: number[]; conflicts: number; got: string[] }> {
  const ms: number[] = [];
  const got: string[] = [];
  let conflicts = 0;
  let block: number[] = [];
  for (let n = 0; n < PER_HOST; n++) {
    const t0 = performance.now();
    while (block.length === 0) {
      // Claim the lowest free /28 (16 addresses) of the /24.
      const { kvs } = await etcd.list(`${prefix}blocks/`);
      const taken = new Set(kvs.map((kv) => Number(kv.key.split('/').pop())));
      let b = 0;
      while (taken.has(b)) b++;
      if (b >= 16) throw new Error('pool exhausted');
      const key = `${prefix}blocks/${b}`;
      const txn = await etcd.txn([{ key, target: 'CREATE', value: 0 }], [{ put: { key, value: `h${host}` } }]);
      if (txn.succeeded) block = Array.from({ length: 16 }, (_, i) => b * 16 + i).filter((ip) => ip > 1 && ip < 255);
      else conflicts++;
    }
    const ip = block.shift()!;
    await etcd.put(`${prefix}addr/${ip}`, `h${host}`);
    got.push(String(ip));
    ms.push(performance.now() - t0);
  }
  return { ms, conflicts, got };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function client(): Promise<void> {
  const rows: string[] = [];
  const schemes = [
    ['per-address keys, each host from its share of the range (berth)', perAddress],
    ['per-address keys, every host lowest first', perAddressLowest],
    ['per-host /28 blocks', perBlock],
  ] as const;
  for (const [i, [name, fn]] of schemes.entries()) {
    const clients = Array.from({ length: HOSTS }, () => new EtcdClient([URL]));
    const prefix = `/race/${i}/`;
    const t0 = performance.now();
    const results = await Promise.all(clients.map((c, i) => fn(c, i, prefix)));
    const wall = performance.now() - t0;
    const all = results.flatMap((r) => r.got);
    const ms = results.flatMap((r) => r.ms);
    const conflicts = results.reduce((a, r) => a + r.conflicts, 0);
    rows.push(`| ${name} | ${HOSTS} | ${all.length} | ${pct(ms, 50).toFixed(2)} | ${pct(ms, 99).toFixed(2)} | ${(wall / all.length).toFixed(2)} | ${conflicts} | ${all.length - new Set(all).size} |`);
    clients.forEach((c) => c.close());
  }
  console.log('| scheme | hosts | addresses | ms/address p50 | p99 | wall ms/address | CAS conflicts | held twice |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

async function main(): Promise<void> {
  if (process.argv.includes('--client')) return client();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ipam-race-'));
  spawnSync('ip', ['netns', 'add', NS]);
  let etcd: ReturnType<typeof spawn> | undefined;
  try {
    spawnSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
    etcd = spawn('nsenter', [`--net=/run/netns/${NS}`, '--', 'etcd', '--data-dir', dir, '--listen-client-urls', URL, '--advertise-client-urls', URL, '--listen-peer-urls', 'http://127.0.0.1:23805'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const r = spawnSync('nsenter', [`--net=/run/netns/${NS}`, '--', 'curl', '-s', '-m', '1', `${URL}/health`]);
      if (String(r.stdout).includes('"health":"true"')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = spawnSync('nsenter', [`--net=/run/netns/${NS}`, '--', process.execPath, process.argv[1]!, '--client', ...args], { stdio: 'inherit', timeout: 300_000 });
    if (r.status !== 0) process.exitCode = 1;
  } finally {
    etcd?.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', NS]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
