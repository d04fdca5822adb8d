/** The `berth` command line: Docker's habits, talking to the daemon over its socket. */
import { Command } from 'commander';
import { ApiClient } from '../api/client.js';
import { BERTH_VERSION, DEFAULT_HOST } from '../constants.js';
import { registerContainerCommands } from './commands/container.js';
import { registerDaemonCommand } from './commands/daemon.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerNetworkCommands } from './commands/network.js';
import { registerSystemCommands } from './commands/system.js';
import { registerEventsCommand } from './commands/events.js';
import { registerTraceCommand } from './commands/trace.js';
import { registerUiCommand } from './commands/ui.js';

export function buildProgram(): Command {
  const program = new Command('berth')
    .description('Container networking engine for Linux')
    .version(BERTH_VERSION)
    .option('-H, --host <unix://path>', 'daemon socket (env BERTH_HOST)')
    .enablePositionalOptions()
    .showHelpAfterError();
  const api = () => new ApiClient(program.opts().host || process.env.BERTH_HOST || DEFAULT_HOST);
  registerDaemonCommand(program);
  registerDoctorCommand(program);
  registerNetworkCommands(program, api);
  registerContainerCommands(program, api);
  registerSystemCommands(program, api);
  registerEventsCommand(program, api);
  registerTraceCommand(program, api);
  registerUiCommand(program, api);
  // `run` and `exec` take the container's command after their own options, untouched.
  for (const name of ['run', 'exec']) program.commands.find((c) => c.name() === name)?.passThroughOptions();
  return program;
}

await buildProgram().parseAsync(process.argv);
