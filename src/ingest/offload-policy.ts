// Where a body is decoded: in place on the I/O thread, or on the decode pool. A pool task costs
// more CPU than decoding in place (the hop, and data crossing cores), and on a small machine the
// pool shares its cores with the shards (docs/performance.md has the figures). So `auto` sends only
// large bodies to the pool, where the hop is cheap next to the decoding and keeping the event loop
// free is what matters.

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
