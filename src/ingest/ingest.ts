// One request's counters, from bytes to acknowledged: decode and validate against the clock (in
// place, or on the decode pool for large bodies), journal, and hand the state backend the batch
// (which invalidates cached answers as it applies). The acknowledgement waits for what makes the
// counters safe: the journal when there is one (a shard that dies is rebuilt from it), else the
// backend's own memory.

import type { Admission, StateBackend } from '../backend/state-backend.ts';
import type { Clock } from '../clock.ts';
import type { Durability } from '../durability/durability.ts';
import type { SharedKeys } from '../cluster/shared-keys.ts';
import { checkKey } from '../durability/idempotency.ts';
import { fromErrorBody, TopTallyError } from '../errors.ts';
import { oldestRetained, type Retention } from '../retention.ts';
import type { Partitioned } from '../routing/partition.ts';
import { WINDOW_SECONDS } from '../window.ts';
import type { BodyFormat, Decoded } from './decode.ts';
import { decodeParts, type DecodeOutcome, type DecodeTask } from './decode-parts.ts';
import type { DecodePool } from './decode-pool.ts';
import { fingerprintCounters } from './fingerprint.ts';
import type { OffloadPolicy } from './offload-policy.ts';
import { validate, type InputLimits, type TimeBounds } from './validate.ts';
import type { WindowTotals } from './window-totals.ts';

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
  /** Told about every ingest as it is acknowledged (metrics count it). */
  onApplied?: (result: IngestResult) => void;
  /** The journal every ingest goes through before it is applied, and the idempotency keys. */
  durability: Durability;
  /** Every window's total as admitted so far (filled from the shards after recovery). */
  totals: WindowTotals;
  /** Cluster mode: idempotency keys every node sees, checked after this node's own. */
  sharedKeys?: SharedKeys;
}

export interface IngestCall {
  /**
   * An idempotency key (the HTTP Idempotency-Key header, a WebSocket message's "key"): a retry
   * with the same key within 10 minutes gets the first answer and is counted once, also across a
   * restart. The same key with other counters is refused (TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED).
   */
  key?: string;
  /**
   * The body lives in a buffer its caller reuses once the answer is out: it is copied, never moved,
   * when it is decoded on another thread.
   */
  lent?: boolean;
}

export class Ingestor {
  readonly #backend: StateBackend;
  readonly #decoders: DecodePool;
  readonly #clock: Clock;
  readonly #options: IngestOptions;
  #retainedMinute = -Infinity;

  constructor(backend: StateBackend, decoders: DecodePool, clock: Clock, options: IngestOptions) {
    this.#backend = backend;
    this.#decoders = decoders;
    this.#clock = clock;
    this.#options = options;
  }

  /** The window totals, without the windows that left the retention. */
  #totals(): WindowTotals {
    const { retention, totals } = this.#options;
    const now = Math.floor(this.#clock.now() / 1000);
    const oldestMinute = oldestRetained(retention, 'minute', now);
    if (oldestMinute !== this.#retainedMinute) {
      this.#retainedMinute = oldestMinute;
      totals.retain(oldestMinute, oldestRetained(retention, 'hour', now));
    }
    return totals;
  }

  #bounds(): TimeBounds {
    const now = Math.floor(this.#clock.now() / 1000);
    return {
      oldest: oldestRetained(this.#options.retention, 'hour', now) * WINDOW_SECONDS.hour,
      newest: now + this.#options.maxFutureSeconds,
      retainHours: this.#options.retention.hours,
      maxFuture: this.#options.maxFutureSeconds,
    };
  }

  /** `body` may be moved to a decode thread (DecodePool.run) unless `lent`: the caller must not use it afterwards. */
  ingest(body: Uint8Array, format: BodyFormat, call: IngestCall = {}): Promise<IngestResult> {
    if (call.key === undefined && !this.#options.offload.offload(body.length)) {
      // Decoded in place with no key, the usual request: no promise but the commit's.
      const outcome = decodeParts(this.#task(body, format));
      return outcome.ok ? this.#commit(outcome.value) : Promise.reject(fromErrorBody(outcome.error));
    }
    return this.#once(call.key, () => this.#decode(body, format, call.lent ?? false));
  }

  /** Counters already decoded (a WebSocket message's events); `key` works as for ingest(). */
  ingestDecoded(decoded: Decoded, call: IngestCall = {}): Promise<IngestResult> {
    return this.#once(call.key, async () => validate(decoded, this.#bounds(), this.#backend.partitions, this.#options.limits));
  }

  #task(body: Uint8Array, format: BodyFormat): DecodeTask {
    return { body, format, bounds: this.#bounds(), shards: this.#backend.partitions, limits: this.#options.limits };
  }

  async #decode(body: Uint8Array, format: BodyFormat, lent: boolean): Promise<Partitioned> {
    const task = this.#task(body, format);
    const { offload } = this.#options;
    let outcome: DecodeOutcome;
    if (offload.offload(body.length)) outcome = await this.#decoders.run(task, !lent);
    else outcome = decodeParts(task);
    if (!outcome.ok) throw fromErrorBody(outcome.error);
    return outcome.value;
  }

  async #once(key: string | undefined, partitioned: () => Promise<Partitioned>): Promise<IngestResult> {
    const { idempotency } = this.#options.durability;
    if (key === undefined) return this.#commit(await partitioned());
    const checked = checkKey(key);
    // Decoded first: a retry is recognised by its counters, not by the bytes that carried them.
    const counters = await partitioned();
    const digest = fingerprintCounters(counters);
    const run = (): Promise<IngestResult> => this.#commit(counters, { key: checked, fingerprint: digest });
    const shared = this.#options.sharedKeys;
    return idempotency.once(checked, digest, shared ? () => shared.once(checked, digest, run) : run);
  }

  async #commit(partitioned: Partitioned, key?: { key: string; fingerprint: string }): Promise<IngestResult> {
    const { counters, entries, parts, minutes, sums } = partitioned;
    // A window that would pass 2^53 - 1, a partition that is down (it would refuse its part once the
    // record is on disk) or behind: refuse first, so that the error counted nothing.
    const totals = this.#totals();
    totals.add(minutes, sums);
    let admission: Admission;
    try {
      admission = this.#backend.admit(partitioned);
    } catch (err) {
      totals.remove(minutes, sums);
      throw err;
    }
    const record = { atMs: this.#clock.now(), counters, entries, key, shards: this.#backend.partitions, parts, minutes };
    // Log, then apply: the backend invalidates cached answers only as it applies, never earlier, so
    // an answer computed while the record is being written cannot be kept as current.
    let applying: Promise<void> | undefined;
    try {
      await this.#options.durability.commit(record, (lsn) => (applying = admission.apply(lsn === null ? null : { lsn, minutes })));
    } catch (err) {
      if (!applying) totals.remove(minutes, sums); // it reached no shard
      // A shard that died while applying a journaled batch is rebuilt from the journal, this batch
      // included: once it is, the batch is counted, and the answer is the one it would have had.
      if (!applying || !(err instanceof TopTallyError) || err.code !== 'TOPTALLY_ERR_SHARD_UNAVAILABLE') throw err;
      if (!(await this.#backend.restored(err.details.shard as number))) throw err;
    } finally {
      admission.release();
    }
    const result = { accepted: counters, counters: entries };
    this.#options.onApplied?.(result);
    return result;
  }
}
