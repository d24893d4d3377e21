// Where a body is decoded. In place on the I/O thread is cheapest in CPU (a pool task costs about
// 60 µs more: the hop, and data crossing cores), so small bodies stay there while that thread has
// time. Once it is saturated, bodies spill to idle pool threads, which turns the other cores into
// decode capacity. Very large bodies always go to the pool, so one never stalls the event loop.

import { performance } from 'node:perf_hooks';

export type OffloadMode = 'auto' | 'always' | 'never';

/** Bodies at least this large always go to the pool in auto mode. */
export const ALWAYS_OFFLOAD_BYTES = 256 * 1024;
/** Event-loop utilization above which the I/O thread counts as saturated. */
const BUSY_UTILIZATION = 0.8;
const SAMPLE_MS = 100;

export class OffloadPolicy {
  readonly #mode: OffloadMode;
  readonly #minBytes: number;
  readonly #threads: number;
  #inFlight = 0;
  #busy = false;
  readonly #sampler: NodeJS.Timeout | undefined;

  constructor(mode: OffloadMode, minBytes: number, threads: number) {
    this.#mode = mode;
    this.#minBytes = minBytes;
    this.#threads = threads;
    if (mode === 'auto') {
      // Utilization is a property of real time, so this samples the real clock, not the injected one.
      let last = performance.eventLoopUtilization();
      this.#sampler = setInterval(() => {
        const now = performance.eventLoopUtilization();
        this.#busy = performance.eventLoopUtilization(now, last).utilization > BUSY_UTILIZATION;
        last = now;
      }, SAMPLE_MS).unref();
    }
  }

  /** Whether to decode a body of `bytes` on the pool; a true answer must be followed by done(). */
  offload(bytes: number): boolean {
    const yes =
      this.#mode === 'always' ||
      (this.#mode === 'auto' &&
        (bytes >= ALWAYS_OFFLOAD_BYTES || (bytes >= this.#minBytes && this.#busy && this.#inFlight < this.#threads)));
    if (yes) this.#inFlight++;
    return yes;
  }

  done(): void {
    this.#inFlight--;
  }

  stop(): void {
    clearInterval(this.#sampler);
  }
}
