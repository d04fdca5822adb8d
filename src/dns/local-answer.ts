/**
 * Which records answer a query from the directory, and what a reply counts as: pure, so the
 * resolver's main thread and its batch thread (udp-batch-worker.ts) answer and count alike.
 */
import type { DnsDirectory } from './directory.js';
import { CLASS_IN, RCODE, TYPE_A, TYPE_AAAA, TYPE_PTR, reverseAddress, type LocalRecord, type Query } from './packet.js';

/** What became of one query, for metrics; every query has exactly one. */
export type DnsOutcome = 'local' | 'forwarded' | 'nxdomain' | 'refused' | 'failed' | 'malformed';

/** Whose names a listener answers: its network's, then `alsoNetworks`', then the client's other networks'. */
export interface AnswerScope {
  networkId: string;
  alsoNetworks?: readonly string[];
}

/** The answer from records to `query` from `clientIp`, or undefined when the name is not ours (forward it). */
export function localAnswer(directory: DnsDirectory, scope: AnswerScope, query: Query, clientIp: string): LocalRecord[] | undefined {
  let records = localRecords(directory, scope.networkId, query);
  for (const other of scope.alsoNetworks ?? []) records ??= localRecords(directory, other, query);
  // Then the names of the client's other networks, as Docker's per-container resolver answers them.
  for (const other of records ? [] : (directory.otherNetworksOf?.(scope.networkId, clientIp) ?? [])) records ??= localRecords(directory, other, query);
  return records;
}

/** The answer for a name the directory knows on this network, or undefined when it is not ours. */
function localRecords(directory: DnsDirectory, networkId: string, query: Query): LocalRecord[] | undefined {
  if (query.qclass !== CLASS_IN) return undefined;
  const ip = query.qtype === TYPE_PTR ? reverseAddress(query.name) : undefined;
  if (ip !== undefined) {
    const target = directory.reverse(networkId, ip);
    return target === undefined ? undefined : [{ type: 'PTR', target }];
  }
  const addresses = directory.lookup(networkId, query.key);
  if (addresses.length === 0) return undefined;
  // The name exists: A and AAAA get the addresses of their family (none: NOERROR with no
  // records, e.g. AAAA for an IPv4-only container), other types NOERROR with none.
  if (query.qtype === TYPE_A) return shuffled(addresses.filter((a) => !a.includes(':'))).map((address): LocalRecord => ({ type: 'A', address }));
  if (query.qtype === TYPE_AAAA) return shuffled(addresses.filter((a) => a.includes(':'))).map((address): LocalRecord => ({ type: 'AAAA', address }));
  return [];
}

/** A query's outcome by its reply's rcode (no reply: a packet dropped as malformed). */
export function outcomeOf(reply: Buffer | undefined, answered: 'local' | 'forwarded'): DnsOutcome {
  const rcode = reply && reply.length >= 4 ? reply[3]! & 0x0f : undefined;
  if (rcode === undefined || rcode === RCODE.FORMERR || rcode === RCODE.NOTIMP) return 'malformed';
  if (rcode === RCODE.NXDOMAIN) return 'nxdomain';
  if (rcode === RCODE.REFUSED) return 'refused';
  if (rcode === RCODE.SERVFAIL) return 'failed';
  return answered;
}

/** A fresh random order per answer, like Docker: clients that take the first address spread out. */
function shuffled(addresses: readonly string[]): string[] {
  const out = [...addresses];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
