/**
 * `GET /events`, Docker's event stream: one JSON message per line, first the kept events since
 * `since` (or, with only `until`, every kept one up to it), then live ones, until `until` passes
 * (the response ends) or the client goes away (the subscription ends with it).
 */
import type * as http from 'node:http';
import { invalid } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { EVENT_FILTERS, checkEventFilters, eventMatcher } from '../engine/event-filter.js';
import type { BerthEvent, EngineEvents } from '../engine/events.js';
import { nowNanos, parseEventTime } from './event-time.js';
import { parseFilters } from './schemas.js';
import type { Route } from './server.js';

/** An event as Docker's `events.Message` marshals it, legacy fields first. */
export interface DockerEventMessage extends Omit<BerthEvent, 'Type'> {
  status?: string;
  id?: string;
  from?: string;
  Type: BerthEvent['Type'];
}

/**
 * Docker (API < 1.52) also fills the pre-1.22 fields for container events: `status` (the action),
 * `id` (the container) and `from` (its image; berth containers have none, and Docker omits an
 * empty one).
 */
export function toDockerMessage(e: BerthEvent): DockerEventMessage {
  if (e.Type !== 'container') return { ...e };
  const image = e.Actor.Attributes.image;
  return { status: e.Action, id: e.Actor.ID, ...(image && { from: image }), ...e };
}

export interface EventQuery {
  since?: bigint;
  until?: bigint;
  filters: Record<string, string[]>;
}

export function parseEventQuery(query: URLSearchParams): EventQuery {
  const since = query.get('since') ? parseEventTime(query.get('since')!, 'since') : undefined;
  const until = query.get('until') ? parseEventTime(query.get('until')!, 'until') : undefined;
  if (until !== undefined && until < (since ?? 0n)) {
    throw invalid(`\`since\` time (${query.get('since')}) cannot be after \`until\` time (${query.get('until')})`);
  }
  return { since, until, filters: checkEventFilters(parseFilters(query.get('filters'), EVENT_FILTERS)) };
}

/**
 * An event's time to the nanosecond. `timeNano` is a Number, which holds today's nanoseconds only
 * to within ~128 ns; its shortest decimal form (what JSON carries, and what a client sends back
 * as `since`) is the exact time, so comparisons go through that.
 */
export const eventNanos = (e: BerthEvent): bigint => BigInt(String(e.timeNano));

/**
 * A subscriber that does not read (a stopped `docker events | less`) is cut off past this much
 * unsent output, rather than holding the daemon's memory: Docker drops slow subscribers too.
 */
const MAX_BACKLOG_BYTES = 8 << 20;
/** setTimeout's longest delay; a later `until` is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function streamEvents(events: EngineEvents, q: EventQuery, res: http.ServerResponse): void {
  const keep = eventMatcher(q.filters);
  const beforeUntil = (e: BerthEvent) => q.until === undefined || eventNanos(e) <= q.until;
  const send = (e: BerthEvent) => {
    if (res.destroyed || res.writableEnded || !keep(e) || !beforeUntil(e)) return;
    res.write(`${JSON.stringify(toDockerMessage(e))}\n`);
    if (res.writableLength > MAX_BACKLOG_BYTES) res.destroy();
  };
  // As Docker: no replay unless a time bound was asked for.
  const since = q.since ?? 0n;
  const past = q.since !== undefined || q.until !== undefined ? events.since(Number(since)).filter((e) => eventNanos(e) >= since) : [];
  const now = nowNanos();
  if (q.until !== undefined && q.until <= now) {
    past.forEach(send);
    res.end();
    return;
  }
  // Subscribing in the same tick as reading the past: no event can fall between the two.
  const unsubscribe = events.onEvent(send);
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    unsubscribe();
    clearTimeout(timer);
    if (!res.writableEnded) res.end();
  };
  const waitUntil = () => {
    const left = Number((q.until! - nowNanos()) / 1_000_000n);
    if (left <= 0) return stop();
    timer = setTimeout(waitUntil, Math.min(left + 1, MAX_TIMER_MS));
  };
  res.on('close', stop);
  past.forEach(send);
  if (q.until !== undefined) waitUntil();
}

export function eventRoutes(engine: Engine): Route[] {
  return [
    [
      'GET',
      /^\/events$/,
      (req) => {
        const q = parseEventQuery(req.query);
        return { status: 200, stream: (res) => streamEvents(engine.ctx.events, q, res) };
      },
    ],
  ];
}
