/**
 * Turns counters that can restart from zero into Prometheus counters that never go down (pure).
 * A kernel element counter restarts when its element is re-added (someone flushed berth's tables,
 * a container published the same port again) and a resolver's when it is replaced; whatever was
 * counted before the restart is kept as an offset.
 */
export class MonotonicTotals {
  private readonly seen = new Map<string, { last: number; offset: number }>();

  /** The running total of `key`, given its source's value now. */
  total(key: string, value: number): number {
    const s = this.seen.get(key);
    if (!s) {
      this.seen.set(key, { last: value, offset: 0 });
      return value;
    }
    // A drop means the source started again from zero: what it had counted stays counted.
    if (value < s.last) s.offset += s.last;
    s.last = value;
    return s.offset + value;
  }

  /** Forgets every key not in `live` (their objects are gone, and so are their series). */
  retain(live: ReadonlySet<string>): void {
    for (const key of this.seen.keys()) if (!live.has(key)) this.seen.delete(key);
  }
}
