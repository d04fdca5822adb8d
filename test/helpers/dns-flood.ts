/**
 * Many DNS queries in flight over UDP, every answer checked; run inside a container's namespace by
 * a test (`node dist/test/helpers/dns-flood.js SPEC_JSON`). The spec names the server, the queries
 * (each sent `each` times, interleaved, in the mixed case a 0x20 client uses) and what each must
 * get back. Bounded by `timeoutMs`; prints one JSON line: per query, how many came back right,
 * wrong (with the first wrong one) or not at all.
 */
import * as dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

export interface FloodQuery {
  name: string;
  type: 'A' | 'AAAA' | 'PTR';
  rcode: 'NOERROR' | 'NXDOMAIN';
  /** The answers' data, in any order. */
  answers: string[];
  /** Every answer's TTL, when it must be this. */
  ttl?: number;
}

export interface FloodSpec {
  server: string;
  queries: FloodQuery[];
  each: number;
  window: number;
  timeoutMs: number;
}

export interface FloodResult {
  sent: number;
  byQuery: { name: string; ok: number; wrong: number; lost: number; firstWrong?: string }[];
}

const RCODES = { NOERROR: 0, NXDOMAIN: 3 } as const;
const spec = JSON.parse(process.argv[2]!) as FloodSpec;
const sock = dgram.createSocket('udp4');
const results: FloodResult['byQuery'] = spec.queries.map((q) => ({ name: q.name, ok: 0, wrong: 0, lost: 0 }));
const inFlight = new Map<number, number>();
const total = spec.queries.length * spec.each;
let sent = 0;
let done = 0;

function check(q: FloodQuery, msg: Buffer): string | undefined {
  const p = dnsPacket.decode(msg);
  const question = p.questions?.[0];
  if (question?.name !== q.name) return `question came back as ${question?.name}, sent ${q.name}`;
  const rcode = msg[3]! & 0x0f;
  if (rcode !== RCODES[q.rcode]) return `rcode ${rcode}, want ${q.rcode}`;
  const answers = (p.answers ?? []).map((a) => String((a as { data: unknown }).data)).sort();
  if (JSON.stringify(answers) !== JSON.stringify([...q.answers].sort())) return `answers ${answers.join(',')}, want ${q.answers.join(',')}`;
  const ttls = (p.answers ?? []).map((a) => (a as { ttl?: number }).ttl);
  if (q.ttl !== undefined && ttls.some((t) => t !== q.ttl)) return `TTLs ${ttls.join(',')}, want ${q.ttl}`;
  return undefined;
}

function send(): void {
  if (sent >= total) return;
  const which = sent % spec.queries.length;
  const id = (sent % 65535) + 1;
  sent++;
  inFlight.set(id, which);
  const q = spec.queries[which]!;
  sock.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: q.type, name: q.name }] }), 53, spec.server);
}

function finish(): void {
  for (const which of inFlight.values()) results[which]!.lost++;
  console.log(JSON.stringify({ sent, byQuery: results } satisfies FloodResult));
  sock.close();
  clearTimeout(timer);
}

sock.on('message', (msg) => {
  const id = msg.readUInt16BE(0);
  const which = inFlight.get(id);
  if (which === undefined) return;
  inFlight.delete(id);
  const r = results[which]!;
  const wrong = check(spec.queries[which]!, msg);
  if (wrong === undefined) r.ok++;
  else {
    r.wrong++;
    r.firstWrong ??= wrong;
  }
  if (++done === total) finish();
  else send();
});

const timer = setTimeout(finish, spec.timeoutMs);
sock.bind(0, () => {
  for (let i = 0; i < spec.window; i++) send();
});
