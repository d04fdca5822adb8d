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
  /** Forwarded answers the thread keeps (as the main thread's cache); 0: none. */
  cacheEntries?: number;
  /** SHARED_COUNTERS, as Float64s: written before the answers they count are sent. */
  counters: SharedArrayBuffer;
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
  /**
   * The cache scope of a client's forwards (which upstreams it asks), and optionally an answer the
   * main thread has just cached for it: the thread answers that client's repeats itself. Scopes
   * are forgotten on every directory change and on `forgetScopes` (the main thread's routes changed).
   */
  | { op: 'cached'; socket: string; clientIp: string; scope: string; query?: Uint8Array; answer?: Uint8Array }
  | { op: 'forgetScopes' }
  | { op: 'stop'; id: number };

/** A datagram the thread leaves to the main thread: anything but a container name it could answer. */
export interface PassedQuery {
  socket: string;
  data: Uint8Array;
  /** The sender (IPv4, host order) and port. */
  ip: number;
  port: number;
}

/** The resolver counters the thread adds to, in shared memory so they are exact when an answer arrives. */
export const SHARED_COUNTERS = ['queries', 'answeredLocally', 'cacheHits', 'truncated'] as const;

/** The outcomes of the queries the thread answered since its last report, for the resolver's onOutcome. */
export interface BatchTally {
  outcomes: Partial<Record<DnsOutcome, number>>;
}

export type BatchReport =
  | { kind: 'ready' }
  | { kind: 'reply'; id: number; ok: true }
  | { kind: 'reply'; id: number; ok: false; error: string }
  | { kind: 'batch'; tally?: BatchTally; passed: PassedQuery[] };
