// Where a body is decoded: in place on the I/O thread, or on the decode pool. A pool task costs
// about 60 µs more CPU (the hop, and data crossing cores), and on a 2-core machine the pool shares
// its cores with the shards: measured with `npm run bench -- --only B`, decoding 6 KB bodies in
// place gave 4,900 req/s at 0.25 ms CPU each, spilling them to the pool when the I/O thread was busy
// 3,700 at 0.37 ms (docs/performance.md). So `auto` sends only large bodies to the pool, where the
// hop is cheap next to the decoding and keeping the event loop free is what matters.

export type OffloadMode = 'auto' | 'always' | 'never';

export class OffloadPolicy {
  readonly #mode: OffloadMode;
  readonly #minBytes: number;

  constructor(mode: OffloadMode, minBytes: number) {
    this.#mode = mode;
    this.#minBytes = minBytes;
  }

  /** Whether to decode a body of `bytes` on the pool. */
  offload(bytes: number): boolean {
    return this.#mode === 'always' || (this.#mode === 'auto' && bytes >= this.#minBytes);
  }
}
