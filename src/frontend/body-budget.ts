// The memory of every request body in progress, bounded together (--max-inflight-bytes). Bodies are
// charged as their buffers grow, with the bytes that arrived, not with what Content-Length declares:
// a client that declares 8 MiB and sends one byte holds one chunk's worth, not 8 MiB. A body is
// charged from its first byte until its answer, decode included.

export class BodyBudget {
  readonly limit: number;
  #used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes charged now. */
  get used(): number {
    return this.#used;
  }

  /** Charges `bytes` unless that would pass the limit. */
  take(bytes: number): boolean {
    if (this.#used + bytes > this.limit) return false;
    this.#used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#used -= bytes;
  }
}
