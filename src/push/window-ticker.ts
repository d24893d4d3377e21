// Fires 'close' each time a window of the given kind closes on the clock, with the index of the
// window that just closed. A clock that jumps several windows at once fires once, for the newest.

import { EventEmitter } from 'node:events';
import type { Clock, Timer } from '../clock.ts';
import { WINDOW_SECONDS, windowIndex, type WindowKind } from '../window.ts';

export class WindowTicker extends EventEmitter<{ close: [closed: number] }> {
  readonly #clock: Clock;
  readonly #kind: WindowKind;
  #timer: Timer | null = null;

  constructor(clock: Clock, kind: WindowKind) {
    super();
    this.#clock = clock;
    this.#kind = kind;
    this.#arm();
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }

  #arm(): void {
    const open = windowIndex(this.#kind, Math.floor(this.#clock.now() / 1000));
    const closesAt = (open + 1) * WINDOW_SECONDS[this.#kind] * 1000;
    this.#timer = this.#clock.at(closesAt, () => {
      this.#arm();
      this.emit('close', windowIndex(this.#kind, Math.floor(this.#clock.now() / 1000)) - 1);
    });
  }
}
