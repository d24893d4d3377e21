// The deadlines of the bodies being read, kept by one sweep instead of timers per body: almost every
// body arrives whole in its first chunk, and for those a Set entry added and deleted is all the
// deadline costs, where two timers were armed and cleared. The sweep runs only while a body is being
// read, and ends a body at its deadline or up to SWEEP_MS after it, never before.

/**
 * uWS drops a connection that receives under 16 KiB of body in 10 s (8 to 12 s: its timer ticks
 * every 4 s), with no reply. Its counter restarts at each 16 KiB, and so does ours, which is why
 * the same bytes end our wait first, a second before uWS's could (sweep included), with a 408 that
 * says why.
 */
export const PACE_BYTES = 16 * 1024;
export const PACE_MS = 7000;
const SWEEP_MS = 250;

/** One body being read, as the sweep sees it. */
export interface BodyRead {
  /** When the read began (performance.now()). */
  readonly startedAt: number;
  /** When the body last reached a multiple of PACE_BYTES, or began. */
  pacedAt: number;
  /** Called once, by the sweep, when the read is past its deadline (`paced`: past the pace). */
  expire(paced: boolean): void;
}

export class BodyDeadlines {
  /** Milliseconds a whole body may take; 0: no deadline but the pace. */
  readonly timeoutMs: number;
  readonly #reads = new Set<BodyRead>();
  #sweep: NodeJS.Timeout | null = null;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** Starts watching a read; `forget` it once it ended, whichever way. */
  watch(read: BodyRead): void {
    this.#reads.add(read);
    this.#sweep ??= setInterval(() => this.#expire(), SWEEP_MS);
  }

  forget(read: BodyRead): void {
    this.#reads.delete(read);
  }

  #expire(): void {
    if (this.#reads.size === 0) {
      clearInterval(this.#sweep!);
      this.#sweep = null;
      return;
    }
    const now = performance.now();
    const timeoutMs = this.timeoutMs;
    for (const read of this.#reads) {
      const late = timeoutMs > 0 && now - read.startedAt >= timeoutMs;
      if (late || now - read.pacedAt >= PACE_MS) {
        this.#reads.delete(read);
        read.expire(!late);
      }
    }
  }
}
