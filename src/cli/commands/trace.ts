/** `berth trace SRC DST[:PORT[/PROTO]]`: walks the path berth built and names the first hop that fails (issue 15). */
import type { Command } from 'commander';
import type { ApiClient } from '../../api/client.js';
import { formatReport, type TraceReport } from '../../trace/report.js';
import { parseDestinationSpec, parseEnd } from '../../trace/target.js';
import { messageOf } from '../../errors.js';
import { fail, printJson } from '../output.js';

export function registerTraceCommand(program: Command, api: () => ApiClient): void {
  program
    .command('trace')
    .description('Explain why SRC can or cannot reach DST: walk the path berth built, send a real probe, and name the first hop that fails with its fix. SRC and DST: a container, an IP address, or host. Exit 0 if reachable, 1 if not')
    .argument('<src>', 'container name or id, IP address, or host')
    .argument('<dst>', 'DST[:PORT[/tcp|udp]]: container name or id, IP address ([v6]:PORT), or host; no port sends an ICMP echo')
    .option('--format <format>', 'json prints the report as JSON')
    .action(async (srcText: string, dstText: string, opts: { format?: string }) => {
      let dst: ReturnType<typeof parseDestinationSpec>;
      // Checked here too, so a typo fails before the daemon is asked (exit 2: not an answer about reachability).
      try {
        if (opts.format !== undefined && opts.format !== 'json') throw new Error(`unknown --format ${opts.format}: the only format is json`);
        parseEnd(srcText, 'source');
        dst = parseDestinationSpec(dstText);
        parseEnd(dst.to, 'destination');
      } catch (err) {
        process.stderr.write(`Error: ${messageOf(err)}\n`);
        process.exit(2);
      }
      let report: TraceReport;
      try {
        report = await api().request<TraceReport>('POST', '/berth/trace', { from: srcText, to: dst.to, ...(dst.port !== undefined && { port: dst.port, protocol: dst.protocol }) });
      } catch (err) {
        fail(err, 2);
      }
      if (opts.format === 'json') printJson(report);
      else process.stdout.write(formatReport(report));
      process.exit(report.reachable ? 0 : 1);
    });
}
