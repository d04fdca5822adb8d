/**
 * Finding when something left the cluster store (pure: the store is read through `at`). etcd keeps
 * past revisions until they are compacted, so a remote endpoint its host's lease took away can
 * still be read "as it was". The search steps back from the current revision in doubling strides
 * until the thing is there, then narrows to the revision where it went: O(log n) reads, not a
 * replay of the whole history.
 */

/** What the store held at a revision: the value looked for, undefined if absent, or 'compacted'. */
export type ReadAt<T> = (revision: number) => Promise<T | undefined | 'compacted'>;

export interface Departure<T> {
  /** The last value seen, and the revision it was read at (the last one it existed at). */
  value: T;
  lastSeen: number;
  /** The first revision it no longer existed at. */
  goneAt: number;
}

/** Reads at most this many revisions: 2 × log2 of any revision counter etcd reaches, and then some. */
const MAX_READS = 128;

/**
 * The latest departure before `now` (the current revision, at which it is absent), or undefined if
 * it is not found in the history still kept. Something that lived for fewer revisions than the
 * stride at its age can be stepped over: endpoints live for many.
 */
export async function findDeparture<T>(now: number, at: ReadAt<T>): Promise<Departure<T> | undefined> {
  let reads = 0;
  const read = async (rev: number) => {
    if (++reads > MAX_READS) return 'compacted' as const;
    return at(rev);
  };
  let absent = now;
  let present: { rev: number; value: T } | undefined;
  for (let stride = 1; now - stride >= 1; stride *= 2) {
    const rev = now - stride;
    const v = await read(rev);
    if (v === 'compacted') return undefined;
    if (v !== undefined) {
      present = { rev, value: v };
      break;
    }
    absent = rev;
  }
  if (!present && absent > 1) {
    // The strides stopped short of revision 1: look there too.
    const v = await read(1);
    if (v === 'compacted' || v === undefined) return undefined;
    present = { rev: 1, value: v };
  }
  if (!present) return undefined;
  while (absent - present.rev > 1) {
    const mid = Math.floor((absent + present.rev) / 2);
    const v = await read(mid);
    if (v === 'compacted') break;
    if (v === undefined) absent = mid;
    else present = { rev: mid, value: v };
  }
  return { value: present.value, lastSeen: present.rev, goneAt: absent };
}
