/** Small statistics helpers shared by the load generators and the report. */

/**
 * Latency histogram with ~1% relative buckets from 1 µs to ~100 s: constant memory however long the
 * run, and finer than autocannon's whole-millisecond histogram, which loopback latencies need.
 */
export class LatencyHistogram {
  private static readonly GROWTH = 1.01;
  private static readonly LOG_GROWTH = Math.log(LatencyHistogram.GROWTH);
  private readonly buckets = new Float64Array(1900);
  private total = 0;

  get count(): number {
    return this.total;
  }

  recordMs(ms: number): void {
    const micros = Math.max(1, ms * 1000);
    const bucket = Math.min(this.buckets.length - 1, Math.floor(Math.log(micros) / LatencyHistogram.LOG_GROWTH));
    this.buckets[bucket]!++;
    this.total++;
  }

  /** Latency in ms at quantile q in [0, 1]: the geometric middle of the bucket holding it; NaN if empty. */
  quantileMs(q: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let bucket = 0; bucket < this.buckets.length; bucket++) {
      seen += this.buckets[bucket]!;
      if (seen >= rank) return LatencyHistogram.GROWTH ** (bucket + 0.5) / 1000;
    }
    return Number.NaN; // unreachable: the counts sum to total
  }
}

/** Median of the finite values; NaN when there are none. */
export function median(values: readonly number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
