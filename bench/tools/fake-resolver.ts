/**
 * The fake upstream resolver for forwarded names, run in a test namespace so no query ever reaches
 * the machine's real resolvers: every A question gets 198.51.100.7 (TTL 60), every other type an
 * empty NOERROR. Prints one JSON line once listening; exits after --lifetime ms.
 */
import * as dgram from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { num, parseArgs, str } from './args.js';

const args = parseArgs(process.argv.slice(2));
const address = str(args, 'address');
const port = num(args, 'port', 53);
const lifetime = num(args, 'lifetime', 900_000);
const FAKE_ANSWER = '198.51.100.7';

const sock = dgram.createSocket('udp4');
sock.on('message', (msg, from) => {
  let q: dnsPacket.DecodedPacket;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return;
  }
  const question = q.questions?.[0];
  if (!question) return;
  const answers: dnsPacket.Answer[] = question.type === 'A' ? [{ type: 'A', name: question.name, ttl: 60, data: FAKE_ANSWER }] : [];
  const reply = dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [question],
    answers,
  });
  sock.send(reply, from.port, from.address);
});
sock.bind(port, address, () => process.stdout.write(`${JSON.stringify({ listening: `${address}:${port}` })}\n`));
setTimeout(() => process.exit(0), lifetime).unref();
