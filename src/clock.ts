// Time is an input: the main thread owns one Clock, workers read none. Tests drive a ManualClock so
// window roll-overs happen when the test says, not when a real minute has passed.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `fn` once the clock reaches `atMs` (at once if it already has). */
  at(atMs: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  at(atMs, fn) {
    // setTimeout may fire a little early; re-arm until the clock really is there.
    let handle: NodeJS.Timeout;
    const arm = (): void => {
      const wait = atMs - Date.now();
      if (wait <= 0) {
        fn();
        return;
      }
      handle = setTimeout(arm, Math.min(wait, 2 ** 31 - 1));
      handle.unref();
    };
    arm();
    return { cancel: () => clearTimeout(handle) };
  },
};

export class ManualClock implements Clock {
  #now: number;
  #timers: { atMs: number; fn: () => void }[] = [];

  constructor(startMs: number) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  at(atMs: number, fn: () => void): Timer {
    const timer = { atMs, fn };
    this.#timers.push(timer);
    queueMicrotask(() => this.#fireDue());
    return {
      cancel: () => {
        const i = this.#timers.indexOf(timer);
        if (i >= 0) this.#timers.splice(i, 1);
      },
    };
  }

  /** Moves the clock to `ms` and fires, in time order, every timer that became due. */
  set(ms: number): void {
    if (ms < this.#now) throw new Error(`ManualClock cannot go back from ${this.#now} to ${ms}`);
    this.#now = ms;
    this.#fireDue();
  }

  advance(ms: number): void {
    this.set(this.#now + ms);
  }

  #fireDue(): void {
    for (;;) {
      let next = -1;
      for (let i = 0; i < this.#timers.length; i++) {
        const t = this.#timers[i];
        if (t.atMs <= this.#now && (next < 0 || t.atMs < this.#timers[next].atMs)) next = i;
      }
      if (next < 0) return;
      const [due] = this.#timers.splice(next, 1);
      due.fn();
    }
  }
}
