// A validated batch split by owner shard: every domain lives in exactly one shard, which is what
// makes the merged top-N exact.

import type { Batch } from '../ingest/validate.ts';
import { shardOf } from './hash.ts';

export interface ShardPart {
  domains: string[];
  counts: number[];
  minutes: number[];
}

export interface Partitioned {
  /** parts[s] holds shard s's entries, or is undefined when the batch has none for it. */
  parts: (ShardPart | undefined)[];
  /** The minute indexes the batch touches (their hours follow), for cache invalidation. */
  minutes: Set<number>;
}

export function partition(batch: Batch, shards: number): Partitioned {
  const parts: (ShardPart | undefined)[] = new Array(shards);
  const minutes = new Set<number>();
  let lastMinute = NaN;
  for (let i = 0; i < batch.domains.length; i++) {
    const s = shardOf(batch.hashes[i], shards);
    const part = (parts[s] ??= { domains: [], counts: [], minutes: [] });
    part.domains.push(batch.domains[i]);
    part.counts.push(batch.counts[i]);
    part.minutes.push(batch.minutes[i]);
    if (batch.minutes[i] !== lastMinute) minutes.add((lastMinute = batch.minutes[i]));
  }
  return { parts, minutes };
}
