// One request's counters, from text to applied: decode, validate against the clock, partition by
// shard, invalidate cached answers, and wait until every owning shard has applied its part.

import type { Clock } from '../clock.ts';
import { oldestRetained, type Retention } from '../retention.ts';
import { partition } from '../routing/partition.ts';
import type { ShardPool } from '../shards/shard-pool.ts';
import type { StatsService } from '../query/stats.ts';
import { WINDOW_SECONDS } from '../window.ts';
import { decode, type BodyFormat } from './decode.ts';
import { validate, type TimeBounds } from './validate.ts';

export interface IngestResult {
  /** Counter objects taken. */
  accepted: number;
  /** Domain entries taken. */
  counters: number;
}

export interface IngestOptions {
  retention: Retention;
  /** How far ahead of the clock a timestamp may be, in seconds. */
  maxFutureSeconds: number;
  /** Told about every ingest once all its shards have applied it (metrics count it). */
  onApplied?: (result: IngestResult) => void;
}

export class Ingestor {
  readonly #pool: ShardPool;
  readonly #stats: StatsService;
  readonly #clock: Clock;
  readonly #options: IngestOptions;

  constructor(pool: ShardPool, stats: StatsService, clock: Clock, options: IngestOptions) {
    this.#pool = pool;
    this.#stats = stats;
    this.#clock = clock;
    this.#options = options;
  }

  bounds(): TimeBounds {
    const now = Math.floor(this.#clock.now() / 1000);
    return {
      oldest: oldestRetained(this.#options.retention, 'hour', now) * WINDOW_SECONDS.hour,
      newest: now + this.#options.maxFutureSeconds,
    };
  }

  async ingest(text: string, format: BodyFormat): Promise<IngestResult> {
    const batch = validate(decode(text, format), this.bounds());
    const partitioned = partition(batch, this.#pool.size);
    this.#stats.touched(partitioned.minutes);
    await this.#pool.ingest(partitioned);
    const result = { accepted: batch.counters, counters: batch.domains.length };
    this.#options.onApplied?.(result);
    return result;
  }
}
