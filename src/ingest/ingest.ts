// One request's counters, from bytes to applied: decode and validate against the clock (in place,
// or on the decode pool for large bodies), invalidate cached answers, and wait until every owning
// shard has applied its part.

import type { Clock } from '../clock.ts';
import { fromErrorBody } from '../errors.ts';
import { oldestRetained, type Retention } from '../retention.ts';
import type { Partitioned } from '../routing/partition.ts';
import type { ShardPool } from '../shards/shard-pool.ts';
import type { StatsService } from '../query/stats.ts';
import { WINDOW_SECONDS } from '../window.ts';
import type { BodyFormat, Decoded } from './decode.ts';
import { decodeParts, type DecodeOutcome } from './decode-parts.ts';
import type { DecodePool } from './decode-pool.ts';
import type { OffloadPolicy } from './offload-policy.ts';
import { validate, type InputLimits, type TimeBounds } from './validate.ts';

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
  /** Decides which bodies are decoded on the pool. */
  offload: OffloadPolicy;
  limits: InputLimits;
  /** Told about every ingest once all its shards have applied it (metrics count it). */
  onApplied?: (result: IngestResult) => void;
}

export class Ingestor {
  readonly #pool: ShardPool;
  readonly #decoders: DecodePool;
  readonly #stats: StatsService;
  readonly #clock: Clock;
  readonly #options: IngestOptions;

  constructor(pool: ShardPool, decoders: DecodePool, stats: StatsService, clock: Clock, options: IngestOptions) {
    this.#pool = pool;
    this.#decoders = decoders;
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

  /** `body` must own its buffer: a large one is moved to a decode thread. */
  async ingest(body: Uint8Array, format: BodyFormat): Promise<IngestResult> {
    const task = { body, format, bounds: this.bounds(), shards: this.#pool.size, limits: this.#options.limits };
    const { offload } = this.#options;
    let outcome: DecodeOutcome;
    if (offload.offload(body.length)) {
      try {
        outcome = await this.#decoders.run(task);
      } finally {
        offload.done();
      }
    } else {
      outcome = decodeParts(task);
    }
    if (!outcome.ok) throw fromErrorBody(outcome.error);
    return this.apply(outcome.value);
  }

  /** Counters already decoded (a WebSocket message's events): the same validation, routing and ack. */
  async ingestDecoded(decoded: Decoded): Promise<IngestResult> {
    return this.apply(validate(decoded, this.bounds(), this.#pool.size, this.#options.limits));
  }

  async apply(partitioned: Partitioned): Promise<IngestResult> {
    // Refused (503) before anything is recorded or touched when an owning shard is down or behind.
    this.#pool.admit(partitioned);
    this.#stats.touched(partitioned.minutes);
    await this.#pool.ingest(partitioned);
    const result = { accepted: partitioned.counters, counters: partitioned.entries };
    this.#options.onApplied?.(result);
    return result;
  }
}
