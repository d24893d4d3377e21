// N shard actors behind one face: ingest goes to the owners of a batch's domains, queries ask all.

import type { ExportedWindow, TopEntries } from '../protocol/messages.ts';
import type { Partitioned } from '../routing/partition.ts';
import type { WindowKind } from '../window.ts';
import { ShardHandle } from './shard-handle.ts';

export class ShardPool {
  readonly shards: readonly ShardHandle[];

  private constructor(shards: ShardHandle[]) {
    this.shards = shards;
  }

  static async start(count: number, onExit: (shard: number, cause: Error) => void): Promise<ShardPool> {
    const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => ShardHandle.start(i)));
    const failed = started.find((r) => r.status === 'rejected');
    const shards = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (failed) {
      await Promise.all(shards.map((shard) => shard.terminate()));
      throw failed.reason;
    }
    for (const shard of shards) shard.on('exit', (cause) => onExit(shard.index, cause));
    return new ShardPool(shards);
  }

  get size(): number {
    return this.shards.length;
  }

  /** Resolves once every shard holding part of the batch has applied it. */
  async ingest({ parts }: Partitioned): Promise<void> {
    const applied: Promise<void>[] = [];
    for (let s = 0; s < parts.length; s++) {
      const part = parts[s];
      if (part) applied.push(this.shards[s].ingest(part));
    }
    await Promise.all(applied);
  }

  top(window: WindowKind, index: number, limit: number): Promise<TopEntries[]> {
    return Promise.all(this.shards.map((shard) => shard.top(window, index, limit)));
  }

  /** Every shard's part of these windows; see ShardHandle.export for what it covers. */
  async export(windows: { window: WindowKind; index: number }[]): Promise<ExportedWindow[][]> {
    return Promise.all(this.shards.map((shard) => shard.export(windows)));
  }

  retain(oldestMinute: number, oldestHour: number): void {
    for (const shard of this.shards) shard.retain(oldestMinute, oldestHour);
  }

  async stop(): Promise<void> {
    await Promise.all(this.shards.map((shard) => shard.stop()));
  }
}
