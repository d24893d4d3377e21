// One request body as its bytes arrive. Its buffer grows with what arrived, doubling, up to what
// Content-Length declares (a ceiling, never an allocation), and every byte of it is charged to the
// shared BodyBudget before it is allocated. A body of a few KiB to 64 KiB that declares its length
// is read into a reused buffer instead (BodyBuffers): one allocation for its whole declared size,
// which is bounded by the slab.

import type { BodyBudget } from './body-budget.ts';
import { SLAB_BYTES, type BodyBuffers } from './body-buffers.ts';

/** The first buffer of a body that is not pooled: what a few TCP segments bring. */
const FIRST_BYTES = 16 * 1024;
const EMPTY = Buffer.alloc(0);

export interface BodyMemory {
  buffers: BodyBuffers;
  budget: BodyBudget;
}

export class IncomingBody {
  readonly #memory: BodyMemory;
  /** Content-Length, or -1 (chunked). */
  readonly #declared: number;
  /** The most the body may be (--max-body). */
  readonly #limit: number;
  #buffer: Buffer = EMPTY;
  #length = 0;
  #charged = 0;
  /** #buffer is a BodyBuffers slab: it goes back to the pool, so it must never leave this thread. */
  #pooled = false;

  constructor(memory: BodyMemory, declared: number, limit: number) {
    this.#memory = memory;
    this.#declared = declared;
    this.#limit = limit;
  }

  get length(): number {
    return this.#length;
  }

  /** The bytes so far; they live in a pooled buffer (see `lent`) until release(). */
  get bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }

  /**
   * Whether the bytes are lent from the pool: a reader that moves them to another thread must copy
   * them first, since release() hands the buffer to the next body.
   */
  get lent(): boolean {
    return this.#pooled;
  }

  /** Appends a chunk; false (nothing appended) when the budget has no room for it. */
  append(chunk: ArrayBuffer): boolean {
    const needed = this.#length + chunk.byteLength;
    if (needed > this.#buffer.length && !this.#grow(needed)) return false;
    this.#buffer.set(new Uint8Array(chunk), this.#length);
    this.#length = needed;
    return true;
  }

  /** Gives the buffer and its charge back; the bytes must not be read afterwards. */
  release(): void {
    if (this.#pooled) this.#memory.buffers.give(this.#buffer);
    this.#memory.budget.give(this.#charged);
    this.#charged = 0;
    this.#pooled = false;
    this.#buffer = EMPTY;
    this.#length = 0;
  }

  #grow(needed: number): boolean {
    const declared = this.#declared;
    const ceiling = declared >= 0 ? declared : this.#limit;
    const pooled = this.#buffer === EMPTY && declared >= needed && declared <= SLAB_BYTES;
    const capacity = pooled ? declared : Math.min(ceiling, Math.max(needed, 2 * this.#buffer.length, FIRST_BYTES));
    if (!this.#memory.budget.take(capacity - this.#charged)) return false;
    this.#charged = capacity;
    const slab = pooled ? this.#memory.buffers.take(capacity) : undefined;
    // A whole body of under 4 KiB comes from Node's shared pool (an ArrayBuffer each costs more).
    const grown = slab ?? (capacity === declared && capacity < 4096 ? Buffer.allocUnsafe(capacity) : Buffer.allocUnsafeSlow(capacity));
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
    this.#pooled = slab !== undefined;
    return true;
  }
}
