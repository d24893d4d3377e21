// Reusable buffers for request bodies of a few KiB to SLAB_BYTES: a batch body had an ArrayBuffer of
// its own, and V8 counts every ArrayBuffer against a budget whose overrun starts a full collection of
// the I/O thread, a pause for every request behind it. Smaller bodies come from Node's own pool.

export const SLAB_BYTES = 64 * 1024;
const POOLED_MIN = 4096;
/** Enough for every request in flight at the bench's concurrency, about 8 MiB. */
const KEPT = 128;

export class BodyBuffers {
  readonly #free: Buffer[] = [];

  /** A buffer of `bytes` (its first `bytes` bytes), or undefined when such a body is not pooled. */
  take(bytes: number): Buffer | undefined {
    if (bytes < POOLED_MIN || bytes > SLAB_BYTES) return undefined;
    return (this.#free.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES)).subarray(0, bytes);
  }

  /** Takes back a buffer from take() once nothing reads it any more. */
  give(body: Buffer): void {
    if (this.#free.length < KEPT) this.#free.push(Buffer.from(body.buffer, body.byteOffset, SLAB_BYTES));
  }
}
