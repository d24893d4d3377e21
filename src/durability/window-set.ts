// The windows that changed since the last checkpoint: a counter in minute m changes that minute and
// its hour. Only these are packed and written again; the others are linked from the last checkpoint.

import { minuteToHour, type WindowRef } from '../window.ts';

export class WindowSet {
  readonly #minutes = new Set<number>();
  readonly #hours = new Set<number>();

  /** Adds the windows of each minute; consecutive repeats (the usual case) cost one comparison. */
  addMinutes(minutes: ArrayLike<number>): void {
    let last = NaN;
    for (let i = 0; i < minutes.length; i++) {
      if (minutes[i] === last) continue;
      last = minutes[i];
      this.#minutes.add(last);
      this.#hours.add(minuteToHour(last));
    }
  }

  add(ref: WindowRef): void {
    (ref.kind === 'minute' ? this.#minutes : this.#hours).add(ref.index);
  }

  /** Empties the set and returns what it held. */
  take(): WindowRef[] {
    const refs: WindowRef[] = [];
    for (const index of this.#minutes) refs.push({ kind: 'minute', index });
    for (const index of this.#hours) refs.push({ kind: 'hour', index });
    this.#minutes.clear();
    this.#hours.clear();
    return refs;
  }
}
