/**
 * `berth ui [--listen HOST:PORT]`: serves the live topology page (src/ui) and forwards its calls to
 * the daemon's socket. Loopback by default; another address only when given, with a warning.
 */
import type { Command } from 'commander';
import type { ApiClient } from '../../api/client.js';
import { messageOf } from '../../errors.js';
import { DEFAULT_LISTEN, parseListen } from '../../ui/listen-address.js';
import type { startUiServer } from '../../ui/ui-server.js';
import { fail } from '../output.js';

export function registerUiCommand(program: Command, api: () => ApiClient): void {
  program
    .command('ui')
    .description('Serve the live network topology page (on loopback unless --listen says otherwise)')
    .option('--listen <host:port>', 'address to serve the page on', DEFAULT_LISTEN)
    .action(async (opts: { listen: string }) => {
      let server: Awaited<ReturnType<typeof startUiServer>>;
      const client = api();
      try {
        const listen = parseListen(opts.listen);
        if (!listen.loopback) {
          process.stderr.write(
            `warning: --listen ${opts.listen} is not a loopback address: anyone who reaches it sees this host's networks and containers and can run traces, with no authentication\n`,
          );
        }
        // Loaded here: the page's server is not needed by any other command.
        const { startUiServer } = await import('../../ui/ui-server.js');
        server = await startUiServer(listen, client.socketPath);
      } catch (err) {
        const busy = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        // Nothing here came from the daemon: no "Error response from daemon" prefix.
        fail(new Error(busy ? `cannot serve on ${opts.listen}: the address is in use; choose another port with --listen HOST:PORT` : messageOf(err)));
      }
      console.log(`berth ui: serving the topology page at ${server.url} (daemon unix://${client.socketPath})`);
      // A daemon that is not running yet is not fatal (the page says so and retries); say it now too.
      await client.request('GET', '/_ping').catch((err) => process.stderr.write(`warning: ${messageOf(err)}\n`));
      client.close();
      const stop = () => void server.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
