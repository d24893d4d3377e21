// Parts made for one shard count, split again for another: what recovery does when --shards changed
// since the data was written. Each entry carries its domain's hash, so no name is decoded.

import { PartBuilder, viewPart, type ShardPart } from '../protocol/shard-part.ts';
import { shardOf } from '../routing/hash.ts';

export function repartition(parts: readonly (ShardPart | undefined)[], shards: number): (ShardPart | undefined)[] {
  const builders: (PartBuilder | undefined)[] = new Array(shards);
  for (const part of parts) {
    if (!part) continue;
    const { entries, names, nameEnds, counts, minutes, hashes } = viewPart(part);
    for (let i = 0; i < entries; i++) {
      const name = names.subarray(i === 0 ? 0 : nameEnds[i - 1], nameEnds[i]);
      (builders[shardOf(hashes[i], shards)] ??= new PartBuilder()).addBytes(name, hashes[i], counts[i], minutes[i]);
    }
  }
  return Array.from(builders, (builder) => builder?.finish());
}
