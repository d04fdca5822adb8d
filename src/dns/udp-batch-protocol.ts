/**
 * Messages between the resolver (udp-batcher.ts, main thread) and its batch thread
 * (udp-batch-worker.ts), over one MessagePort; an eventfd wakes the thread from poll(2).
 */
import type { MessagePort } from 'node:worker_threads';
import type { DirectoryChange } from './directory.js';
import type { DnsOutcome } from './local-answer.js';

export interface BatchStart {
  port: MessagePort;
  wakeFd: number;
  /** Datagrams per recvmmsg/sendmmsg. */
  batch: number;
}

/** A UDP socket the thread serves: its descriptor, and whose names it answers. */
export interface BatchSocket {
  /** The resolver's listener id. */
  socket: string;
  fd: number;
  networkId: string;
  alsoNetworks: string[];
  /** An in-namespace listener's one client, standing in for the source address. */
  client?: string;
}

export type BatchCommand =
  | ({ op: 'add'; id: number } & BatchSocket)
  /** Stops polling the socket and closes its descriptor. */
  | { op: 'remove'; id: number; socket: string }
  | { op: 'change'; changes: DirectoryChange[] }
  | { op: 'stop'; id: number };

/** A datagram the thread leaves to the main thread: anything but a container name it could answer. */
export interface PassedQuery {
  socket: string;
  data: Uint8Array;
  /** The sender (IPv4, host order) and port. */
  ip: number;
  port: number;
}

/** What the thread answered itself since its last report, to be counted as if the main thread had. */
export interface BatchTally {
  outcomes: Partial<Record<DnsOutcome, number>>;
  queries: number;
  answeredLocally: number;
  truncated: number;
}

export type BatchReport =
  | { kind: 'ready' }
  | { kind: 'reply'; id: number; ok: true }
  | { kind: 'reply'; id: number; ok: false; error: string }
  | { kind: 'batch'; tally?: BatchTally; passed: PassedQuery[] };
