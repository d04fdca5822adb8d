/**
 * Times of the event stream, in nanoseconds since the epoch (bigint: a Number cannot hold every
 * nanosecond of today). The daemon reads `since`/`until` as the docker CLI sends them, Unix
 * seconds with an optional fraction ("1765000000.123456789"), or as RFC 3339; the CLI turns what
 * a user types (a duration, a date, a timestamp) into that form first, as Docker's CLI does.
 */
import { invalid } from '../errors.js';

const NANOS_PER_SECOND = 1_000_000_000n;
const NANOS_PER_MS = 1_000_000n;

const UNIX_SECONDS = /^(\d+)(?:\.(\d{0,9})\d*)?$/;
/** Date, optional time (hours, minutes, seconds, fraction), optional zone: the forms Docker's CLI accepts. */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?(Z|[+-]\d{2}:\d{2})?$/i;
const GO_DURATION = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/;
const GO_DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g;
const GO_UNIT_NANOS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

const fractionNanos = (digits: string | undefined) => BigInt((digits ?? '').padEnd(9, '0') || '0');

export const nowNanos = (): bigint => BigInt(Date.now()) * NANOS_PER_MS;

/** Nanoseconds as Docker's wire form of a time: "seconds.nanoseconds". */
export function toUnixSeconds(nanos: bigint): string {
  return `${nanos / NANOS_PER_SECOND}.${String(nanos % NANOS_PER_SECOND).padStart(9, '0')}`;
}

function dateTimeNanos(m: RegExpExecArray, zoneless: 'local' | 'refuse', what: string, value: string): bigint {
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac, zone] = m;
  const parts = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
  let ms: number;
  if (zone) {
    const offsetMin = zone.toUpperCase() === 'Z' ? 0 : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
    ms = Date.UTC(...parts) - offsetMin * 60_000;
  } else if (zoneless === 'local') {
    ms = new Date(...parts).getTime();
  } else {
    throw invalid(`invalid ${what} "${value}": an RFC 3339 time needs a zone (Z or ±hh:mm)`);
  }
  const check = new Date(Date.UTC(...parts));
  if (Number.isNaN(ms) || check.getUTCMonth() !== parts[1] || check.getUTCDate() !== parts[2] || parts[3] > 23 || parts[4] > 59 || parts[5] > 59) {
    throw invalid(`invalid ${what} "${value}": no such date or time`);
  }
  return BigInt(ms) * NANOS_PER_MS + fractionNanos(frac);
}

/**
 * The daemon's `since`/`until`: Unix seconds[.nanoseconds] (Docker's `timetypes.ParseTimestamps`)
 * or an RFC 3339 time with its zone. Returns nanoseconds.
 */
export function parseEventTime(value: string, what: 'since' | 'until'): bigint {
  const unix = UNIX_SECONDS.exec(value);
  if (unix) return BigInt(unix[1]!) * NANOS_PER_SECOND + fractionNanos(unix[2]);
  const date = DATE_TIME.exec(value);
  if (date && date[4] !== undefined && date[6] !== undefined) return dateTimeNanos(date, 'refuse', what, value);
  throw invalid(`invalid ${what} "${value}": give Unix seconds (e.g. 1765000000.5) or an RFC 3339 time (e.g. 2026-12-06T05:30:00Z)`);
}

/**
 * What a user may type for `berth events --since/--until`, as Docker's CLI (`timetypes.GetTimestamp`)
 * takes it: a Go duration before `now` ("10m", "1h30m"), Unix seconds, or a date or date-time,
 * in the local zone unless one is given. Returns the "seconds.nanoseconds" the daemon reads.
 */
export function cliTimestamp(value: string, flag: string, now = Date.now()): string {
  if (value !== '0' && GO_DURATION.test(value)) {
    let nanos = 0;
    for (const [, n, unit] of value.matchAll(GO_DURATION_PART)) nanos += Number(n) * GO_UNIT_NANOS[unit!]!;
    // Whole seconds, as Docker's CLI sends for a duration.
    return String(Math.floor((now - nanos / 1e6) / 1000));
  }
  const unix = UNIX_SECONDS.exec(value);
  if (unix) return toUnixSeconds(BigInt(unix[1]!) * NANOS_PER_SECOND + fractionNanos(unix[2]));
  const date = DATE_TIME.exec(value);
  if (date) return toUnixSeconds(dateTimeNanos(date, 'local', flag, value));
  throw invalid(`invalid ${flag} "${value}": give a duration (10m, 1h30m), Unix seconds (1765000000.5) or a date (2026-12-06, 2026-12-06T05:30:00Z)`);
}

/** Docker's `RFC3339NanoFixed` ("2006-01-02T15:04:05.000000000Z07:00") in the local zone, as `docker events` prints. */
export function formatEventTime(nanos: bigint): string {
  const ms = Number(nanos / NANOS_PER_MS);
  const date = new Date(ms);
  const offsetMin = -date.getTimezoneOffset();
  const local = new Date(ms + offsetMin * 60_000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const zone = offsetMin === 0 ? 'Z' : `${offsetMin < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(offsetMin) / 60))}:${pad(Math.abs(offsetMin) % 60)}`;
  const fraction = String(((nanos % NANOS_PER_SECOND) + NANOS_PER_SECOND) % NANOS_PER_SECOND).padStart(9, '0');
  return (
    `${local.getUTCFullYear()}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}` +
    `T${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}.${fraction}${zone}`
  );
}
