// Idempotent retries: the first answer to an Idempotency-Key is kept for ten minutes, and a retry
// within them gets that answer without being counted again. A retry that arrives while the first
// request is still being written waits for it. Keys are remembered when their record is applied (the
// journal's order), so a checkpoint holds exactly the keys of the records it covers.

import type { Clock } from '../clock.ts';
import { TopTallyError } from '../errors.ts';
import type { KeyedAnswer } from './records.ts';

export const IDEMPOTENCY_TTL_MS = 10 * 60_000;

export interface Answer {
  accepted: number;
  counters: number;
}

const KEY = /^[\x20-\x7e]{1,255}$/;

/** Keys are 1–255 printable ASCII characters, like the header values that carry them. */
export function checkKey(key: unknown): string {
  if (typeof key !== 'string' || !KEY.test(key)) {
    throw new TopTallyError(
      'TOPTALLY_ERR_INVALID_IDEMPOTENCY_KEY',
      'An idempotency key must be 1 to 255 printable ASCII characters',
      { key: typeof key === 'string' ? key.slice(0, 64) : String(key) },
    );
  }
  return key;
}

export class IdempotencyStore {
  readonly #clock: Clock;
  /** In the order they were answered, so expired keys are at the front. */
  readonly #answers = new Map<string, KeyedAnswer>();
  readonly #inFlight = new Map<string, { fingerprint: string; answer: Promise<Answer> }>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#answers.size;
  }

  /** `execute` runs unless the key was answered in the last ten minutes or is being answered now. */
  async once(key: string, fingerprint: string, execute: () => Promise<Answer>): Promise<Answer> {
    const known = this.#answers.get(key);
    if (known && this.#live(known)) {
      this.#same(key, known.fingerprint, fingerprint);
      return { accepted: known.accepted, counters: known.counters };
    }
    const running = this.#inFlight.get(key);
    if (running) {
      this.#same(key, running.fingerprint, fingerprint);
      return running.answer;
    }
    const answer = execute();
    this.#inFlight.set(key, { fingerprint, answer });
    try {
      return await answer;
    } finally {
      this.#inFlight.delete(key);
    }
  }

  remember(answer: KeyedAnswer): void {
    if (!this.#live(answer)) return;
    this.#answers.delete(answer.key);
    this.#answers.set(answer.key, answer);
  }

  /** The live answers, for a checkpoint. */
  answers(): KeyedAnswer[] {
    this.prune();
    return [...this.#answers.values()];
  }

  prune(): void {
    for (const answer of this.#answers.values()) {
      if (this.#live(answer)) return;
      this.#answers.delete(answer.key);
    }
  }

  #live(answer: KeyedAnswer): boolean {
    return answer.atMs + IDEMPOTENCY_TTL_MS > this.#clock.now();
  }

  #same(key: string, first: string, now: string): void {
    if (first !== now) {
      throw new TopTallyError(
        'TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED',
        'This Idempotency-Key was used for a different request in the last 10 minutes',
        { key: key.slice(0, 64) },
      );
    }
  }
}
