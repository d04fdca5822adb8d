/**
 * Connections per second: N sequential connect + 1-byte echo + close, for a fixed time and at
 * most --max connections. Prints one JSON line: count, errors, rate and per-connection latency.
 */
import * as net from 'node:net';
import { num, parseArgs, quantiles, str } from './args.js';

const args = parseArgs(process.argv.slice(2));
const host = str(args, 'host');
const port = num(args, 'port', 7007);
const durationMs = num(args, 'duration', 3000);
const max = num(args, 'max', 200_000);
const perConnTimeout = 2000;

function once(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const sock = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('timeout'));
    }, perConnTimeout);
    sock.once('connect', () => sock.write('x'));
    sock.once('data', () => {
      clearTimeout(timer);
      const us = Number(process.hrtime.bigint() - t0) / 1e3;
      sock.end();
      sock.once('close', () => resolve(us));
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    });
  });
}

async function main(): Promise<void> {
  const latencies: number[] = [];
  let errors = 0;
  let lastError = '';
  const start = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - start) / 1e6;
  while (elapsed() < durationMs && latencies.length + errors < max) {
    try {
      latencies.push(await once());
    } catch (err) {
      errors++;
      lastError = (err as Error).message;
      if (errors > 50 && latencies.length === 0) break;
    }
  }
  const seconds = elapsed() / 1000;
  process.stdout.write(
    `${JSON.stringify({ count: latencies.length, errors, lastError, seconds, perSecond: Math.round(latencies.length / seconds), ...quantiles(latencies) })}\n`,
  );
}

void main();
