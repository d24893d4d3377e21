// Cluster mode's state backend: the windows every node shares live in Redis. This node still keeps
// its own counters in its shard workers (so its journal, checkpoints and shard rebuilds work as in
// local mode), hands every journaled batch to the flusher on its way to the shards, and answers
// queries from Redis, after flushing what it acknowledged itself (a query sees the counters this
// node acknowledged before it). What other nodes change reaches the stats cache and the publisher
// through the registry's change stream; while that stream is followed, open windows are cached too.

import { EventEmitter } from 'node:events';
import type { Admission, BackendEvents, JournalPosition, PartitionLoad, Replayed, StateBackend } from '../backend/state-backend.ts';
import type { Clock } from '../clock.ts';
import type { ClusterAck } from '../config.ts';
import { TopTallyError } from '../errors.ts';
import type { Census, ExportedWindow, TopEntries, WindowTotal } from '../protocol/messages.ts';
import type { ShardPart } from '../protocol/shard-part.ts';
import { oldestRetained, type Retention } from '../retention.ts';
import type { Partitioned } from '../routing/partition.ts';
import type { WindowKind } from '../window.ts';
import { unavailable, type Flusher } from './flusher.ts';
import type { ClusterReader } from './reader.ts';
import type { Registry } from './registry.ts';

/** How long a query waits for this node's own counters to reach Redis before it answers 503. */
const READ_YOUR_WRITES_MS = 2000;
/** How long an ack in mode `cluster` waits for Redis before the request gets 503 (it stays journaled). */
const CLUSTER_ACK_MS = 5000;

export interface ClusterBackendOptions {
  local: StateBackend;
  flusher: Flusher;
  reader: ClusterReader;
  registry: Registry;
  clock: Clock;
  retention: Retention;
  ack: ClusterAck;
  maxUnflushedBytes: number;
  /** Closes the Redis connection, after everything else stopped. */
  close: () => Promise<void>;
}

export class ClusterBackend extends EventEmitter<BackendEvents> implements StateBackend {
  readonly #o: ClusterBackendOptions;

  constructor(options: ClusterBackendOptions) {
    super();
    this.#o = options;
    options.local.on('touched', (minutes) => this.emit('touched', minutes));
    options.registry.on('changed', (minutes) => this.emit('changedElsewhere', minutes));
    options.registry.on('reset', () => this.emit('changedElsewhere', this.#retainedMinutes()));
  }

  get partitions(): number {
    return this.#o.local.partitions;
  }

  admit(batch: Partitioned): Admission {
    const { flusher, maxUnflushedBytes } = this.#o;
    const owed = flusher.unflushedBytes;
    if (owed > maxUnflushedBytes) {
      throw new TopTallyError(
        'TOPTALLY_ERR_UNFLUSHED_LIMIT',
        `${owed} bytes of counters wait to reach Redis, over ${maxUnflushedBytes} (--max-unflushed); try again shortly`,
        { limit: maxUnflushedBytes, retryAfter: 1 },
      );
    }
    const admitted = this.#o.local.admit(batch);
    return {
      apply: (journaled) => {
        if (!journaled) throw new Error('cluster mode needs a journal');
        // Before the shards: handing them the parts moves their buffers to the worker threads.
        flusher.add({ lsn: journaled.lsn, atMs: this.#o.clock.now(), counters: batch.counters, entries: batch.entries, shards: batch.parts.length, parts: batch.parts, minutes: batch.minutes });
        const applied = admitted.apply(journaled);
        if (this.#o.ack === 'journal') return applied;
        // In Redis, replicated, and in the change stream: every node that follows it learns of the
        // batch about a round trip after the acknowledgement, and drops what it cached.
        const everywhere = flusher.settled({ verified: true, timeoutMs: CLUSTER_ACK_MS }).then(() =>
          this.#o.registry.announced(CLUSTER_ACK_MS).catch((err: Error) => Promise.reject(unavailable(err))),
        );
        return Promise.all([applied, everywhere]).then(() => undefined);
      },
      release: admitted.release,
    };
  }

  restored(partition: number): Promise<boolean> {
    return this.#o.local.restored(partition);
  }

  async top(window: WindowKind, index: number, limit: number): Promise<TopEntries[]> {
    const { flusher, reader } = this.#o;
    if (!flusher.synced) throw unavailable(flusher.lastError);
    await flusher.settled({ timeoutMs: READ_YOUR_WRITES_MS });
    try {
      return await reader.top(window, index, limit);
    } catch (err) {
      throw unavailable(err as Error);
    }
  }

  /**
   * This node's own batches raise `touched` before a query can see them: admit()'s apply() hands the
   * batch to the flusher and raises it in one synchronous step, and top() takes the flusher's
   * last record in the same step as the stats service reads the window's version, so an answer
   * that misses a batch is never cached as current. Other nodes' changes arrive through the change
   * stream, about a round trip after they are in Redis, while the registry follows it.
   */
  openCacheable(): boolean {
    return this.#o.registry.following;
  }

  retain(oldestMinute: number, oldestHour: number): void {
    this.#o.local.retain(oldestMinute, oldestHour);
  }

  export(windows: { window: WindowKind; index: number }[]): Promise<ExportedWindow[][]> {
    return this.#o.local.export(windows);
  }

  load(window: WindowKind, index: number, partition: number, part: ShardPart): Promise<void> {
    return this.#o.local.load(window, index, partition, part);
  }

  /** Start-up replay fills this node's shards; the flusher replays to Redis what Redis lacks itself. */
  replay(batch: Replayed, at: JournalPosition): Promise<void> {
    return this.#o.local.replay(batch, at);
  }

  /**
   * This node's own totals: what it admits is bounded by them. Other nodes add to the same windows
   * in Redis, so a cluster-wide total can still pass 2^53 - 1 there (see docs/cluster.md).
   */
  totals(): Promise<WindowTotal[][]> {
    return this.#o.local.totals();
  }

  /** A journal record is kept until every partition it touched holds it in Redis, verified. */
  journalDroppable(): number {
    return this.#o.flusher.journalKeepFrom();
  }

  unavailable(): number[] {
    return this.#o.local.unavailable();
  }

  owed(): PartitionLoad[] {
    return this.#o.local.owed();
  }

  census(): Promise<(Census | null)[]> {
    return this.#o.local.census();
  }

  async stop(): Promise<void> {
    const { flusher, registry, local } = this.#o;
    // What is acknowledged and not yet in Redis gets one more chance to go now; the journal keeps it anyway.
    await flusher.settled({ timeoutMs: 1000 }).catch(() => {});
    flusher.stop();
    await registry.stop();
    await local.stop();
    await this.#o.close();
  }

  #retainedMinutes(): number[] {
    const now = Math.floor(this.#o.clock.now() / 1000);
    const from = oldestRetained(this.#o.retention, 'hour', now) * 60;
    const to = Math.floor(now / 60) + 1;
    return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
  }
}
