/**
 * Serialises the engine's mutating operations. Each one is a few milliseconds of kernel work, so
 * one queue keeps reasoning simple (no two operations interleave their reserve/apply/commit
 * steps) at a cost that stays far below the peers' per-operation latency.
 */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
