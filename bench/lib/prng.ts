/** Seeded randomness for reproducible load: the same seed yields the same bodies on every machine. */

export type Random = () => number;

/** mulberry32: 32-bit state, uniform in [0, 1). Small and fast; not for cryptography. */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function domainName(index: number): string {
  return `d${index}.example`;
}

/**
 * Zipf(s = 1) over ranks 0..n-1: P(rank k) is proportional to 1 / (k + 1), so a few domains carry most
 * of the traffic, as real request logs do. The CDF is built once (8 bytes per name, 8 MB for a million)
 * so that each sample is a binary search rather than a walk over the weights.
 */
export class Zipf {
  readonly size: number;
  /** Unnormalised cumulative weights; a draw is scaled by the total instead of dividing every entry. */
  private readonly cdf: Float64Array;
  private readonly total: number;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`Zipf universe must be a positive integer, got ${size}`);
    this.size = size;
    this.cdf = new Float64Array(size);
    let sum = 0;
    for (let k = 0; k < size; k++) {
      sum += 1 / (k + 1);
      this.cdf[k] = sum;
    }
    this.total = sum;
  }

  /** Smallest rank whose cumulative probability exceeds a uniform draw. */
  sample(random: Random): number {
    const u = random() * this.total;
    let lo = 0;
    let hi = this.size - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
