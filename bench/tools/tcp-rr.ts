/**
 * TCP request/response round trip: one connection, 1 byte out and 1 byte back, repeated for a
 * fixed time and at most --max times. Prints one JSON line with the round trip's p50/p95 in µs.
 * Node's event loop on both ends adds a fixed cost; compare these figures only with each other.
 */
import * as net from 'node:net';
import { num, parseArgs, quantiles, str } from './args.js';

const args = parseArgs(process.argv.slice(2));
const host = str(args, 'host');
const port = num(args, 'port', 7007);
const durationMs = num(args, 'duration', 2000);
const max = num(args, 'max', 50_000);

const sock = net.connect({ host, port, noDelay: true });
const rtts: number[] = [];
let t0 = 0n;
let start = 0n;
const giveUp = setTimeout(() => finish('timeout'), durationMs + 5000);

function finish(error?: string): void {
  clearTimeout(giveUp);
  const seconds = start ? Number(process.hrtime.bigint() - start) / 1e9 : 0;
  process.stdout.write(`${JSON.stringify({ count: rtts.length, seconds, error, ...quantiles(rtts) })}\n`);
  sock.destroy();
  process.exit(0);
}

function ping(): void {
  t0 = process.hrtime.bigint();
  sock.write('x');
}

sock.on('connect', () => {
  start = process.hrtime.bigint();
  ping();
});
sock.on('data', () => {
  rtts.push(Number(process.hrtime.bigint() - t0) / 1e3);
  if (rtts.length >= max || Number(process.hrtime.bigint() - start) / 1e6 >= durationMs) finish();
  else ping();
});
sock.on('error', (err) => finish(err.message));
