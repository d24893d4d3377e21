// One request's counters, from text to applied: decode, validate against the clock, partition by
// shard, journal, invalidate cached answers, and wait until every owning shard has applied its part.

import type { Clock } from '../clock.ts';
import type { Durability } from '../durability/durability.ts';
import { checkKey, fingerprint } from '../durability/idempotency.ts';
import { oldestRetained, type Retention } from '../retention.ts';
import { partition } from '../routing/partition.ts';
import type { ShardPool } from '../shards/shard-pool.ts';
import type { StatsService } from '../query/stats.ts';
import { WINDOW_SECONDS } from '../window.ts';
import { decode, type BodyFormat, type Decoded } from './decode.ts';
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
}

export interface IngestCall {
  /**
   * An idempotency key (the HTTP Idempotency-Key header, a WebSocket message's "key"): a retry
   * with the same key within 10 minutes gets the first answer and is counted once, also across a
   * restart. The same key with other counters is refused (TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED).
   */
  key?: string;
}

export class Ingestor {
  readonly #pool: ShardPool;
  readonly #stats: StatsService;
  readonly #clock: Clock;
  readonly #options: IngestOptions;
  readonly #durability: Durability;

  constructor(pool: ShardPool, stats: StatsService, clock: Clock, options: IngestOptions, durability: Durability) {
    this.#pool = pool;
    this.#stats = stats;
    this.#clock = clock;
    this.#options = options;
    this.#durability = durability;
  }

  bounds(): TimeBounds {
    const now = Math.floor(this.#clock.now() / 1000);
    return {
      oldest: oldestRetained(this.#options.retention, 'hour', now) * WINDOW_SECONDS.hour,
      newest: now + this.#options.maxFutureSeconds,
    };
  }

  ingest(text: string, format: BodyFormat, call: IngestCall = {}): Promise<IngestResult> {
    return this.#once(call.key, () => fingerprint(format, text), () => decode(text, format));
  }

  /** Counters decoded already (a WebSocket message's events); `key` works as for ingest(). */
  ingestDecoded(decoded: Decoded, call: IngestCall = {}): Promise<IngestResult> {
    return this.#once(call.key, () => fingerprint(JSON.stringify(decoded.items)), () => decoded);
  }

  async #once(key: string | undefined, print: () => string, decoded: () => Decoded): Promise<IngestResult> {
    if (key === undefined) return this.#commit(decoded());
    const checked = checkKey(key);
    const fingerprint = print();
    return this.#durability.idempotency.once(checked, fingerprint, () => this.#commit(decoded(), { key: checked, fingerprint }));
  }

  async #commit(decoded: Decoded, key?: { key: string; fingerprint: string }): Promise<IngestResult> {
    const batch = validate(decoded, this.bounds());
    const partitioned = partition(batch, this.#pool.size);
    const { domains, counts, minutes } = batch;
    const record = { atMs: this.#clock.now(), accepted: batch.counters, key, domains, counts, minutes };
    // Log, then apply: the cache is invalidated only as the shards are told, never earlier, so an
    // answer computed while the record is being written cannot be kept as current.
    await this.#durability.commit(record, () => {
      this.#stats.touched(partitioned.minutes);
      return this.#pool.ingest(partitioned);
    });
    return { accepted: batch.counters, counters: batch.domains.length };
  }
}
