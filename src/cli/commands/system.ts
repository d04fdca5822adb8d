/** `berth system reconcile`: repair drift between the store and the kernel now, and report it; `berth system bgp`: the BGP speaker's state. */
import type { Command } from 'commander';
import type { ApiClient } from '../../api/client.js';
import { fail, printJson } from '../output.js';

export function registerSystemCommands(program: Command, api: () => ApiClient): void {
  const system = program.command('system').description('Maintenance');
  system
    .command('reconcile')
    .description('Compare the store with the kernel, repair what drifted, remove what leaked; print what was fixed')
    .action(async () => {
      try {
        printJson(await api().request('POST', '/system/reconcile'));
      } catch (err) {
        fail(err);
      }
    });
  system
    .command('bgp')
    .description("The BGP speaker's sessions (which peers are down), and the blocks this host advertises")
    .action(async () => {
      try {
        printJson(await api().request('GET', '/system/bgp'));
      } catch (err) {
        fail(err);
      }
    });
}
