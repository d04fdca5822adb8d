/**
 * Test helpers for the resolver tests: a stub client that sends queries over UDP and TCP, and a fake
 * upstream resolver on 127.0.0.1 whose every answer the test decides. Everything here talks to
 * loopback only and closes what it opens.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket as TcpSocket } from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, RecordType } from 'dns-packet';
import { FrameReader, frame } from '../../../src/dns/packet.js';

export const LOOPBACK = '127.0.0.1';
const RD = 0x0100;
const RA = 0x0080;
const TC = 0x0200;

export interface QueryOptions {
  id?: number;
  /** EDNS UDP payload size; no OPT record when absent. */
  edns?: number;
}

export function makeQuery(name: string, type: RecordType = 'A', options: QueryOptions = {}): Buffer {
  const additionals: Answer[] = options.edns === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: options.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }];
  return dnsPacket.encode({ type: 'query', id: options.id ?? randomId(), flags: RD, questions: [{ type, name, class: 'IN' }], additionals });
}

export function randomId(): number {
  return Math.floor(Math.random() * 0x10000);
}

export function rcodeOf(packet: Buffer): number {
  return packet.readUInt16BE(2) & 0xf;
}

export function decode(packet: Buffer): DecodedPacket {
  return dnsPacket.decode(packet);
}

/** The A addresses of an answer, in order. */
export function addressesOf(packet: Buffer): string[] {
  return (decode(packet).answers ?? []).flatMap((a) => (a.type === 'A' ? [a.data] : []));
}

/** One UDP query and its answer (matched by id), or a rejection after `timeoutMs`. */
export function udpQuery(port: number, query: Buffer, timeoutMs = 2000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const id = query.readUInt16BE(0);
    const timer = setTimeout(() => finish(new Error(`no UDP answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (result: Buffer | Error): void => {
      clearTimeout(timer);
      socket.close();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    socket.on('error', (err) => finish(err));
    socket.on('message', (msg) => msg.length >= 2 && msg.readUInt16BE(0) === id && finish(msg));
    socket.send(query, port, LOOPBACK);
  });
}

/** Sends `chunks` as given on one TCP connection and collects `expected` answers. */
export function tcpExchange(port: number, chunks: readonly Buffer[], expected: number, timeoutMs = 2000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: LOOPBACK, port });
    const reader = new FrameReader();
    const answers: Buffer[] = [];
    const timer = setTimeout(() => finish(new Error(`got ${answers.length}/${expected} TCP answers within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(answers);
    };
    socket.on('error', (err) => finish(err));
    socket.on('data', (chunk) => {
      answers.push(...reader.push(chunk));
      if (answers.length >= expected) finish();
    });
    socket.on('connect', async () => {
      for (const chunk of chunks) {
        socket.write(chunk);
        await new Promise((r) => setImmediate(r));
      }
    });
  });
}

export function tcpQuery(port: number, query: Buffer, timeoutMs = 2000): Promise<Buffer> {
  return tcpExchange(port, [frame(query)], 1, timeoutMs).then((answers) => answers[0]!);
}

/** What a fake upstream does with a query: answer with these bytes, or stay silent. */
export type Behaviour = (query: DecodedPacket, transport: 'udp' | 'tcp') => Buffer | undefined;

export interface FakeUpstream {
  port: number;
  /** Queries received, in order, with their transport. */
  received: { name: string; id: number; transport: 'udp' | 'tcp' }[];
  close(): Promise<void>;
}

/** Builds an answer to `query` from the fake upstream. */
export function respond(query: DecodedPacket, options: { rcode?: number; addresses?: readonly string[]; truncated?: boolean; id?: number; name?: string } = {}): Buffer {
  const q = query.questions![0]!;
  const name = options.name ?? q.name;
  return dnsPacket.encode({
    type: 'response',
    id: options.id ?? query.id,
    flags: RD | RA | (options.truncated ? TC : 0) | (options.rcode ?? 0),
    questions: [{ ...q, name }],
    answers: (options.addresses ?? []).map((data) => ({ type: 'A', name, ttl: 30, data })),
  });
}

/** A fake upstream on 127.0.0.1, UDP and TCP on the same port (the forwarder uses one port for both). */
export async function startFakeUpstream(behaviour: Behaviour): Promise<FakeUpstream> {
  const received: FakeUpstream['received'] = [];
  const handle = (packet: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined => {
    const query = decode(packet);
    received.push({ name: query.questions?.[0]?.name ?? '', id: query.id ?? 0, transport });
    return behaviour(query, transport);
  };
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = await bindUdp();
    const port = udp.address().port;
    const connections = new Set<TcpSocket>();
    const tcp = await listenTcp(port, connections, (p) => handle(p, 'tcp')).catch(() => undefined);
    if (!tcp) {
      await new Promise<void>((r) => udp.close(() => r()));
      continue;
    }
    udp.on('message', (msg, from) => {
      const answer = handle(msg, 'udp');
      if (answer) udp.send(answer, from.port, from.address);
    });
    const close = async (): Promise<void> => {
      for (const c of connections) c.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    };
    return { port, received, close };
  }
  throw new Error('could not bind a fake upstream on the same UDP and TCP port');
}

/** A UDP socket bound on loopback that never answers: a dead upstream. */
export async function startDeadUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const udp = await bindUdp();
  return { port: udp.address().port, close: () => new Promise<void>((r) => udp.close(() => r())) };
}

/** A loopback UDP port with nothing bound on it (sending there draws ICMP port unreachable). */
export async function closedPort(): Promise<number> {
  const udp = await bindUdp();
  const port = udp.address().port;
  await new Promise<void>((r) => udp.close(() => r()));
  return port;
}

function bindUdp(): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, LOOPBACK, () => resolve(socket));
  });
}

function listenTcp(port: number, connections: Set<TcpSocket>, handle: (packet: Buffer) => Buffer | undefined): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => {
      connections.add(socket);
      socket.on('close', () => connections.delete(socket));
      socket.on('error', () => socket.destroy());
      const reader = new FrameReader();
      socket.on('data', (chunk) => {
        for (const msg of reader.push(chunk)) {
          const answer = handle(msg);
          if (answer) socket.write(frame(answer));
        }
      });
    });
    server.once('error', reject);
    server.listen(port, LOOPBACK, () => resolve(server));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
