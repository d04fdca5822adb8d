/**
 * Gives the process's freed C heap back to the kernel once the kernel worker falls idle.
 *
 * libnftables, netlink parsing and V8's compilers allocate and free through glibc's malloc in
 * bursts (one burst per container set up). glibc keeps what was freed inside its per-thread
 * arenas, where fragmentation stops it from shrinking them by itself: ~10 MB resident at 300
 * containers that no one uses. malloc_trim(0) releases those pages in every arena. It takes a
 * few milliseconds, so it runs only after the worker has had nothing to do for a while, never
 * on a call's path.
 *
 * "A while" is seconds, not a moment: the next call after a trim faults back in the pages it
 * needs, every arena's, the main thread's too. Trimming after 250 ms of quiet made each setup
 * that followed a pause of 0.4 s take ~2 ms longer (client 11.2–13.6 ms p50 against 9.7–11.3 with
 * no trim, three alternating runs of 25 setups), which is every start in a runtime's ordinary pace.
 */
import { mallocTrim } from './libc.js';

export const IDLE_TRIM_MS = 5_000;

export class IdleTrim {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly trim: () => unknown = mallocTrim,
    private readonly idleMs = IDLE_TRIM_MS,
  ) {}

  /** A call finished: trim once no other call has come for `idleMs`. */
  touch(): void {
    if (this.timer) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.trim();
    }, this.idleMs);
    // An idle worker must not keep the process alive for this.
    this.timer.unref();
  }
}
