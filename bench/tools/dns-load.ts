/**
 * A UDP DNS query loop, run inside a container's namespace: A queries for --name sent to
 * --server:53. `--window 1` is a sequential loop (latency); a larger window keeps that many
 * queries in flight (throughput). Bounded by --duration ms and --max queries; a query unanswered
 * after 1 s counts as lost. Prints one JSON line.
 */
import * as dgram from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { num, parseArgs, quantiles, str } from './args.js';

const args = parseArgs(process.argv.slice(2));
const server = str(args, 'server');
const name = str(args, 'name');
const durationMs = num(args, 'duration', 2000);
const max = num(args, 'max', 200_000);
const window = Math.max(1, num(args, 'window', 1));
const LOST_AFTER_MS = 1000;

const sock = dgram.createSocket('udp4');
const inFlight = new Map<number, bigint>();
const latencies: number[] = [];
let sent = 0;
let answered = 0;
let failed = 0;
let lost = 0;
let nextId = 1;
let start = 0n;
let stopping = false;
let firstFailure = '';

const elapsedMs = () => Number(process.hrtime.bigint() - start) / 1e6;

function send(): void {
  if (stopping || sent >= max || elapsedMs() >= durationMs) return;
  let id = nextId;
  nextId = (nextId % 65535) + 1;
  while (inFlight.has(id)) {
    id = nextId;
    nextId = (nextId % 65535) + 1;
  }
  const buf = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
  inFlight.set(id, process.hrtime.bigint());
  sent++;
  sock.send(buf, 53, server);
}

sock.on('message', (msg) => {
  if (msg.length < 12) return;
  const id = msg.readUInt16BE(0);
  const t0 = inFlight.get(id);
  if (t0 === undefined) return;
  inFlight.delete(id);
  const rcode = msg[3]! & 0x0f;
  const ancount = msg.readUInt16BE(6);
  if (rcode === 0 && ancount > 0) {
    answered++;
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e3);
  } else {
    failed++;
    if (!firstFailure) firstFailure = `rcode ${rcode}, ${ancount} answers`;
  }
  send();
});

const reaper = setInterval(() => {
  const now = process.hrtime.bigint();
  for (const [id, t0] of inFlight) {
    if (Number(now - t0) / 1e6 > LOST_AFTER_MS) {
      inFlight.delete(id);
      lost++;
      send();
    }
  }
  if (elapsedMs() >= durationMs || sent >= max) {
    stopping = true;
    if (inFlight.size === 0 || elapsedMs() > durationMs + LOST_AFTER_MS) finish();
  }
}, 20);

function finish(): void {
  clearInterval(reaper);
  const seconds = elapsedMs() / 1000;
  lost += inFlight.size;
  process.stdout.write(
    `${JSON.stringify({ sent, answered, failed, lost, firstFailure, seconds, qps: Math.round(answered / Math.min(seconds, durationMs / 1000)), ...quantiles(latencies) })}\n`,
  );
  sock.close();
  process.exit(0);
}

sock.bind(0, () => {
  start = process.hrtime.bigint();
  for (let i = 0; i < window; i++) send();
});
