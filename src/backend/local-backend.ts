// The windows in this process: the shard pool's workers, one partition per shard. Admission and
// restarts are the pool's; this adds the signals the stats cache and the publisher listen to, and
// acknowledges a batch once it is handed to the shards (unless one is behind, see ShardPool.ingest).

import { EventEmitter } from 'node:events';
import type { Census, Drained, ExportedWindow, TopEntries, WindowTotal } from '../protocol/messages.ts';
import type { ShardPart } from '../protocol/shard-part.ts';
import type { Partitioned } from '../routing/partition.ts';
import type { ShardPool } from '../shards/shard-pool.ts';
import type { WindowKind } from '../window.ts';
import type { Admission, BackendEvents, JournalPosition, PartitionLoad, Replayed, StateBackend } from './state-backend.ts';

export class LocalBackend extends EventEmitter<BackendEvents> implements StateBackend {
  readonly pool: ShardPool;

  constructor(pool: ShardPool) {
    super();
    this.pool = pool;
  }

  get partitions(): number {
    return this.pool.size;
  }

  admit(batch: Partitioned): Admission {
    const admitted = this.pool.admit(batch);
    return {
      apply: () => {
        // Told before the shards are: an answer computed meanwhile must not be cached as current.
        this.emit('touched', batch.minutes);
        // Early, journaled or not: a query is queued behind every part handed over, so one asked
        // after the acknowledgement sees the batch; a worker that dies is rebuilt from the journal,
        // or, without one, loses its memory whenever the batch was acknowledged.
        return admitted.apply(true);
      },
      release: admitted.release,
    };
  }

  restored(partition: number): Promise<boolean> {
    return this.pool.restored(partition);
  }

  top(window: WindowKind, index: number, limit: number): Promise<TopEntries[]> {
    return this.pool.top(window, index, limit);
  }

  retain(oldestMinute: number, oldestHour: number): void {
    this.pool.retain(oldestMinute, oldestHour);
  }

  export(windows: { window: WindowKind; index: number }[]): Promise<ExportedWindow[][]> {
    return this.pool.export(windows);
  }

  load(window: WindowKind, index: number, partition: number, part: ShardPart): Promise<void> {
    return this.pool.shards[partition].load(window, index, part);
  }

  replay(batch: Replayed, _at: JournalPosition): Promise<void> {
    return this.pool.ingest(batch);
  }

  totals(): Promise<WindowTotal[][]> {
    return this.pool.totals();
  }

  /** Each shard's (minute, domain) deltas since its last drain (cluster mode's flusher). */
  drain(): Promise<Drained[]> {
    return this.pool.drain();
  }

  unavailable(): number[] {
    return this.pool.shards.filter((shard) => shard.failed).map((shard) => shard.index);
  }

  owed(): PartitionLoad[] {
    return this.pool.shards.map((shard) => ({ partition: shard.index, pending: shard.pending, backlogBytes: shard.backlogBytes }));
  }

  async census(): Promise<(Census | null)[]> {
    const held = await Promise.allSettled(this.pool.shards.map((shard) => shard.census()));
    return held.map((result) => (result.status === 'fulfilled' ? result.value : null));
  }

  stop(): Promise<void> {
    return this.pool.stop();
  }
}
