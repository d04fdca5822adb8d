/** `berth daemon`: the engine and its API, in the foreground, in the namespace it was started in. */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_HOST, DEFAULT_ROOT } from '../../constants.js';
import { socketPathOf } from '../../api/client.js';
import { claimSocketPath, startServer } from '../../api/server.js';
import { Engine } from '../../engine/engine.js';
import { lockRoot } from '../../kernel/root-lock.js';
import { createHooks } from '../../engine/hooks.js';
import { createLogger, type Level } from '../../log.js';
import { fail } from '../output.js';

export function registerDaemonCommand(program: Command): void {
  program
    .command('daemon')
    .description('Run the berth daemon in the foreground (treats its network namespace as the host)')
    .option('--root <dir>', 'state directory (env BERTH_ROOT)', process.env.BERTH_ROOT || DEFAULT_ROOT)
    .option('--host <unix://path>', 'API socket (env BERTH_HOST)', process.env.BERTH_HOST || DEFAULT_HOST)
    .option('--resolv-conf <path>', "the host's resolver configuration, for upstream DNS", '/etc/resolv.conf')
    .option('--group <gid>', 'group allowed to use the socket (mode 0660)')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .action(async (o) => {
      const log = createLogger(o.logLevel as Level);
      try {
        const socketPath = socketPathOf(o.host);
        // Refuse before touching anything: a second daemon must not reconcile away the first one's objects.
        const rootLock = lockRoot(o.root);
        await claimSocketPath(socketPath);
        // BERTH_REAP_GRACE_MS shortens the reaper's grace for an unreported PID: a test hook only.
        const reapGraceMs = process.env.BERTH_REAP_GRACE_MS ? Number(process.env.BERTH_REAP_GRACE_MS) : undefined;
        const engine = await Engine.open({ root: o.root, log, resolvConfPath: o.resolvConf, hooks: createHooks, reapGraceMs });
        const server = await startServer(engine, { socketPath, log, group: o.group === undefined ? undefined : Number(o.group) });
        log.info('daemon ready', { root: o.root, socket: socketPath, pid: process.pid });
        const shutdown = async (signal: string) => {
          log.info('daemon stopping', { signal });
          server.close();
          await engine.close();
          fs.rmSync(socketPath, { force: true });
          rootLock.release();
          process.exit(0);
        };
        process.once('SIGTERM', () => void shutdown('SIGTERM'));
        process.once('SIGINT', () => void shutdown('SIGINT'));
      } catch (err) {
        fail(err);
      }
    });
}
