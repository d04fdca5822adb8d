/**
 * The tracer's TCP and UDP probe, run as its own short process inside the source's namespace
 * (`nsenter --net=…`): a socket belongs to the namespace it is made in, and the daemon's event
 * loop must stay in the host's. Prints one JSON line {outcome, detail} and exits.
 *   node probe-socket.js tcp|udp ADDRESS PORT TIMEOUT_MS
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';

type Outcome = 'answered' | 'refused' | 'timeout' | 'unreachable' | 'silent' | 'error';

function done(outcome: Outcome, detail: string): never {
  process.stdout.write(`${JSON.stringify({ outcome, detail })}\n`);
  process.exit(0);
}

function outcomeOf(err: NodeJS.ErrnoException): Outcome {
  if (err.code === 'ECONNREFUSED') return 'refused';
  if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') return 'unreachable';
  return 'error';
}

const [protocol, address, portText, timeoutText] = process.argv.slice(2) as [string, string, string, string];
const port = Number(portText);
const timeoutMs = Number(timeoutText);
const started = Date.now();

if (protocol === 'tcp') {
  const sock = net.connect({ host: address, port });
  sock.setTimeout(timeoutMs, () => done('timeout', `no answer to a TCP SYN within ${timeoutMs} ms`));
  sock.on('connect', () => done('answered', `TCP connection established in ${Date.now() - started} ms`));
  sock.on('error', (err: NodeJS.ErrnoException) => done(outcomeOf(err), `TCP connect failed: ${err.code ?? err.message}`));
} else {
  const sock = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  setTimeout(() => done('silent', `no answer to a UDP datagram within ${timeoutMs} ms and no ICMP error (open but silent, or dropped)`), timeoutMs).unref();
  sock.on('message', () => done('answered', `UDP answer in ${Date.now() - started} ms`));
  // A connected UDP socket gets the ICMP port-unreachable as ECONNREFUSED.
  sock.on('error', (err: NodeJS.ErrnoException) => done(outcomeOf(err), `UDP: ${err.code ?? err.message}`));
  sock.connect(port, address, () => sock.send(Buffer.from('berth-trace\n')));
  setTimeout(() => undefined, timeoutMs + 100);
}
