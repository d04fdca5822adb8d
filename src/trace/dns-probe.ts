/**
 * The tracer's DNS question, asked as the source container asks it: from inside its namespace
 * (`nsenter --net=…`), to the nameserver its resolv.conf names, over UDP. Prints one JSON line
 * {rcode, addresses} or {error} and exits.
 *   node dns-probe.js NAMESERVER NAME A|AAAA TIMEOUT_MS
 */
import * as dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

const [server, name, type, timeoutText] = process.argv.slice(2) as [string, string, 'A' | 'AAAA', string];

function done(result: { rcode?: string; addresses?: string[]; error?: string }): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const sock = dgram.createSocket(server.includes(':') ? 'udp6' : 'udp4');
const id = Math.floor(Math.random() * 65536);
setTimeout(() => done({ error: `no answer from ${server} within ${timeoutText} ms` }), Number(timeoutText)).unref();
sock.on('error', (err: NodeJS.ErrnoException) => done({ error: `${err.code ?? err.message}` }));
sock.on('message', (msg) => {
  try {
    const reply = dnsPacket.decode(msg);
    if (reply.id !== id) return;
    const addresses = (reply.answers ?? []).filter((a) => a.type === type).map((a) => String((a as { data?: unknown }).data));
    done({ rcode: (reply as { rcode?: string }).rcode ?? 'NOERROR', addresses });
  } catch (err) {
    done({ error: `an answer that does not decode: ${(err as Error).message}` });
  }
});
sock.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] }), 53, server);
setTimeout(() => undefined, Number(timeoutText) + 100);
