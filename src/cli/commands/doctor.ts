/** `berth doctor`: registered here; its checks (doctor-checks.ts) load only when it runs. */
import * as os from 'node:os';
import { Option, type Command } from 'commander';
import { DEFAULT_ROOT } from '../../constants.js';
import { printJson } from '../output.js';

export const PROBES = ['netns', 'veth', 'bridge', 'nftables', 'shared-mount', 'macvlan', 'ipvlan', '8021q', 'vxlan', 'fan'] as const;
export type ProbeName = (typeof PROBES)[number];

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('Check that this machine has what berth needs (kernel features, nftables, tools); probes run in throwaway namespaces')
    .option('--root <dir>', 'state directory to check (env BERTH_ROOT)', process.env.BERTH_ROOT || DEFAULT_ROOT)
    .option('--format <format>', 'text or json', 'text')
    .addOption(new Option('--probe <name>', 'run one probe here (internal: doctor runs it inside unshare)').choices([...PROBES]).hideHelp())
    .addOption(new Option('--probe-dir <dir>').hideHelp())
    .addOption(new Option('--probe-parent-netns <inode>').hideHelp())
    .action(async (o: { root: string; format: string; probe?: ProbeName; probeDir?: string; probeParentNetns?: string }) => {
      const { printChecks, runDoctor, runProbe } = await import('./doctor-checks.js');
      if (o.probe) {
        await runProbe(o.probe, o.probeDir ?? os.tmpdir(), o.probeParentNetns);
        return;
      }
      const checks = await runDoctor(o.root);
      if (o.format === 'json') printJson(checks);
      else printChecks(o.root, checks);
      process.exitCode = checks.some((c) => c.status === 'missing') ? 1 : 0;
    });
}
