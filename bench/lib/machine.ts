/** The machine and the peers' versions, recorded with every result. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { run } from './exec.js';
import { AARDVARK, CNI_PATH, NETAVARK } from './paths.js';

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memGb: number;
  kernel: string;
  node: string;
  loadAvgAtStart: number[];
  peers: Record<string, string>;
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 10_000 });
  return (r.stdout || r.stderr).trim().split('\n')[0] ?? '';
}

async function debVersion(pkg: string): Promise<string> {
  return (await run('dpkg-query', ['-W', '-f=${Version}', pkg], { timeoutMs: 10_000 })).stdout.trim() || 'not installed';
}

export async function machineInfo(): Promise<MachineInfo> {
  const cniVersion = await run(`${CNI_PATH}/bridge`, [], { env: { ...process.env, CNI_COMMAND: 'VERSION' }, timeoutMs: 10_000 });
  return {
    nproc: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    memGb: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    loadAvgAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
    peers: {
      netavark: fs.existsSync(NETAVARK) ? `${await firstLine(NETAVARK, ['--version'])} (deb ${await debVersion('netavark')})` : 'missing',
      'aardvark-dns': fs.existsSync(AARDVARK) ? `${await firstLine(AARDVARK, ['--version'])} (deb ${await debVersion('aardvark-dns')})` : 'missing',
      'containernetworking-plugins': `deb ${await debVersion('containernetworking-plugins')}; bridge plugin: ${cniVersion.stdout.trim() || cniVersion.stderr.trim()}`,
      iptables: await firstLine('iptables', ['--version']),
      nftables: await firstLine('nft', ['--version']),
      iperf3: await firstLine('iperf3', ['--version']),
    },
  };
}
