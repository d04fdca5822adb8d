/** `berth events`: the engine's network and container events as they happen, printed as `docker events` prints them. */
import type { Command } from 'commander';
import type { ApiClient } from '../../api/client.js';
import { cliTimestamp, formatEventTime } from '../../api/event-time.js';
import { streamLines } from '../../api/stream-client.js';
import { invalid } from '../../errors.js';
import { collect, fail } from '../output.js';

interface EventLine {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

/**
 * One event as Docker's CLI prints it: time, type, action, actor ID, then the attributes sorted
 * by key: `2026-12-06T05:30:01.123000000Z network connect 3f…a1 (container=…, name=n, type=bridge)`.
 */
export function formatEvent(e: EventLine): string {
  // String(): the exact nanoseconds, which the Number itself may miss by a few (see events-routes.ts).
  const nanos = e.timeNano ? BigInt(String(e.timeNano)) : e.time ? BigInt(e.time) * 1_000_000_000n : undefined;
  const attrs = Object.entries(e.Actor?.Attributes ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  return `${nanos !== undefined ? `${formatEventTime(nanos)} ` : ''}${e.Type} ${e.Action} ${e.Actor?.ID ?? ''}${attrs.length ? ` (${attrs.join(', ')})` : ''}`;
}

/** `--filter k=v`… as Docker's `filters` query: {key: {value: true}}. */
function filtersJson(list: string[]): string | undefined {
  const filters: Record<string, Record<string, boolean>> = {};
  for (const f of list) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw invalid(`invalid filter "${f}": expected key=value (e.g. type=network, event=connect, container=web)`);
    (filters[f.slice(0, eq)] ??= {})[f.slice(eq + 1)] = true;
  }
  return Object.keys(filters).length ? JSON.stringify(filters) : undefined;
}

export function registerEventsCommand(program: Command, api: () => ApiClient): void {
  program
    .command('events')
    .description('Stream network and container events (Docker\'s `docker events`)')
    .option('--since <time>', 'also show events since this time: a duration (10m), Unix seconds or a date (2026-12-06T05:30:00Z)')
    .option('--until <time>', 'stop at this time (same forms); with a past time, show past events and exit')
    .option('-f, --filter <k=v>', 'type, event, container, network, label, scope… (repeatable; see docs/events.md)', collect, [])
    .option('--format <format>', '"json": one JSON event per line')
    .action(async (o: { since?: string; until?: string; filter: string[]; format?: string }) => {
      try {
        if (o.format !== undefined && o.format !== 'json') {
          throw invalid(`unsupported --format "${o.format}": berth events prints Docker's lines, or JSON with --format json (Go templates are not supported)`);
        }
        const query = new URLSearchParams();
        if (o.since !== undefined) query.set('since', cliTimestamp(o.since, '--since'));
        if (o.until !== undefined) query.set('until', cliTimestamp(o.until, '--until'));
        const filters = filtersJson(o.filter);
        if (filters) query.set('filters', filters);
        const qs = query.toString() ? `?${query}` : '';
        // Reading stops quietly when the reader does (`berth events | head`).
        process.stdout.on('error', () => process.exit(0));
        const stream = streamLines(api(), `/events${qs}`, (line) => {
          process.stdout.write(`${o.format === 'json' ? line : formatEvent(JSON.parse(line) as EventLine)}\n`);
        });
        process.once('SIGINT', () => stream.close());
        process.once('SIGTERM', () => stream.close());
        await stream.done;
      } catch (err) {
        fail(err);
      }
    });
}
