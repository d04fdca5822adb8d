/**
 * The floor under "as the caller sees it" in §1: a bare Node HTTP server on a unix socket that
 * answers a create (POST, a JSON body read and parsed) with 201 and an id, and a remove (DELETE)
 * with 204, doing nothing else. Driven by the same client as berth's API, its round trips are
 * what any Node daemon behind that socket costs before doing any work. Prints one JSON line once
 * listening; exits by itself after --lifetime ms.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { num, parseArgs, str } from './args.js';

const args = parseArgs(process.argv.slice(2));
const socket = str(args, 'socket');
const lifetime = num(args, 'lifetime', 900_000);

let n = 0;
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'POST') {
      JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      const body = `${JSON.stringify({ Id: (++n).toString(16).padStart(64, '0'), Warnings: [] })}\n`;
      res.writeHead(201, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) }).end(body);
    } else res.writeHead(204).end();
  });
});
fs.rmSync(socket, { force: true });
server.listen(socket, () => process.stdout.write(`${JSON.stringify({ listening: socket })}\n`));
setTimeout(() => process.exit(0), lifetime).unref();
