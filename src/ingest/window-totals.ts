// Every retained window's total as ingest let it in, so that a counter that would take a window
// past 2^53 - 1 is refused before it is journaled or acknowledged. Past that, doubles no longer count
// by one: the shards would add it and answer a wrong count and total without a word. A domain's
// count is at most its window's total, so bounding totals bounds every count too.

import { TopTallyError } from '../errors.ts';
import type { WindowTotal } from '../protocol/messages.ts';
import type { WindowKind } from '../window.ts';

const LIMIT = Number.MAX_SAFE_INTEGER;

export class WindowTotals {
  readonly #totals: Record<WindowKind, Map<number, number>> = { minute: new Map(), hour: new Map() };
  #oldest: Record<WindowKind, number> = { minute: -Infinity, hour: -Infinity };
  /** A batch's sums per hour, reused from call to call (this runs for every request). */
  readonly #hours = new Map<number, number>();

  /** The totals the shards hold (each shard's answers in one list), as after a recovery. */
  static from(shards: WindowTotal[][]): WindowTotals {
    const totals = new WindowTotals();
    for (const windows of shards) for (const { window, index, total } of windows) totals.#add(window, index, total);
    return totals;
  }

  /**
   * Adds a batch's sums per minute (and so to their hours), or throws TOPTALLY_ERR_COUNT_OVERFLOW
   * and adds nothing. Sums are exact: every value added is at most 2^53 - 1 and so is every total.
   */
  add(minutes: readonly number[], sums: readonly number[]): void {
    if (minutes.length === 1) {
      // Most requests touch one minute: its hour takes the same sum, no map needed.
      const hour = Math.floor(minutes[0] / 60);
      this.#check('minute', minutes[0], sums[0]);
      this.#check('hour', hour, sums[0]);
      this.#add('minute', minutes[0], sums[0]);
      this.#add('hour', hour, sums[0]);
      return;
    }
    const hours = this.#hours;
    hours.clear();
    for (let i = 0; i < minutes.length; i++) {
      this.#check('minute', minutes[i], sums[i]);
      const hour = Math.floor(minutes[i] / 60);
      hours.set(hour, (hours.get(hour) ?? 0) + sums[i]);
    }
    for (const [hour, sum] of hours) this.#check('hour', hour, sum);
    for (let i = 0; i < minutes.length; i++) {
      this.#add('minute', minutes[i], sums[i]);
      this.#add('hour', Math.floor(minutes[i] / 60), sums[i]);
    }
  }

  /** Takes back what add() added, for a batch that was then not applied. */
  remove(minutes: readonly number[], sums: readonly number[]): void {
    for (let i = 0; i < minutes.length; i++) {
      this.#add('minute', minutes[i], -sums[i]);
      this.#add('hour', Math.floor(minutes[i] / 60), -sums[i]);
    }
  }

  /** Forgets the windows older than these, as the shards do. */
  retain(oldestMinute: number, oldestHour: number): void {
    this.#oldest = { minute: oldestMinute, hour: oldestHour };
    for (const kind of ['minute', 'hour'] as const) {
      for (const index of this.#totals[kind].keys()) if (index < this.#oldest[kind]) this.#totals[kind].delete(index);
    }
  }

  #check(kind: WindowKind, index: number, sum: number): void {
    const total = this.#totals[kind].get(index) ?? 0;
    // Exact while the result is at most LIMIT; past it, rounding cannot bring it back under.
    if (total + sum <= LIMIT) return;
    const seconds = index * (kind === 'minute' ? 60 : 3600);
    throw new TopTallyError(
      'TOPTALLY_ERR_COUNT_OVERFLOW',
      `These counters would take the ${kind} starting at ${seconds} past ${LIMIT} in all (it holds ${total}), beyond which counts are not exact; nothing was counted`,
      { window: kind, at: seconds, limit: LIMIT },
    );
  }

  #add(kind: WindowKind, index: number, sum: number): void {
    if (index < this.#oldest[kind]) return;
    const total = (this.#totals[kind].get(index) ?? 0) + sum;
    if (total === 0) this.#totals[kind].delete(index);
    else this.#totals[kind].set(index, total);
  }
}
