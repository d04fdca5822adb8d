/**
 * A TCP echo server for the data-plane and published-port runs: echoes whatever arrives and closes
 * when the client does. Prints one JSON line once listening. Exits by itself after --lifetime ms.
 */
import * as net from 'node:net';
import { num, parseArgs, str } from './args.js';

const args = parseArgs(process.argv.slice(2));
const port = num(args, 'port', 7007);
const host = str(args, 'host', '0.0.0.0');
const lifetime = num(args, 'lifetime', 900_000);

const server = net.createServer({ noDelay: true }, (sock) => {
  sock.on('data', (d) => sock.write(d));
  sock.on('end', () => sock.end());
  sock.on('error', () => sock.destroy());
});
server.maxConnections = 10_000;
server.listen({ port, host, backlog: 4096 }, () => process.stdout.write(`${JSON.stringify({ listening: port })}\n`));
setTimeout(() => process.exit(0), lifetime).unref();
