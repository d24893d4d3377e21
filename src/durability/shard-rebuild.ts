// Rebuilding one shard whose worker died, while the other shards serve: the newest checkpoint's
// chunks for that shard, then its parts of the journal records after the checkpoint's cut, up to the
// journal cut taken for the rebuild, through the same replay path as start-up recovery. Unlike
// start-up recovery it is read-only (the journal is live: nothing is cut off, unlinked or repaired),
// and damage fails the rebuild; the pool tries again.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TopTallyError } from '../errors.ts';
import type { ShardHandle } from '../shards/shard-handle.ts';
import type { WindowKind } from '../window.ts';
import type { Checkpoint } from './checkpoint.ts';
import { isZeroTail, scanFrames } from './frame.ts';
import type { Segment } from './journal.ts';
import { decodePayload, type Payload } from './records.ts';
import { Replayer } from './replay.ts';

export interface ShardRebuild {
  shard: number;
  /** The shard count now; data written for another count is re-partitioned. */
  shards: number;
  handle: Pick<ShardHandle, 'load' | 'ingest'>;
  checkpoint: Checkpoint | null;
  /** The journal's segments at the cut, and the last record applied before it. */
  segments: readonly Segment[];
  upTo: number;
  oldest: Record<WindowKind, number>;
}

export async function rebuildShard(rebuild: ShardRebuild): Promise<{ windows: number; records: number }> {
  const { shard, handle, checkpoint } = rebuild;
  const done = { windows: 0, records: 0 };
  const replayer = new Replayer(
    {
      partitions: rebuild.shards,
      load: (window, index, _partition, part) => handle.load(window, index, part),
      apply: (parts) => handle.ingest(parts[shard]!),
    },
    shard,
  );
  const cut = checkpoint?.cut ?? 0;
  for (const [name, ref] of checkpoint?.windows ?? []) {
    if (ref.index < rebuild.oldest[ref.kind]) continue;
    for (const chunk of await payloads(path.join(checkpoint!.dir, name), 'window')) {
      if (replayer.window(chunk)) done.windows++;
      await replayer.pace();
    }
  }
  for (const segment of rebuild.segments) {
    if (segment.lastLsn <= cut || segment.firstLsn > rebuild.upTo) continue;
    for (const record of await payloads(segment.file, 'counters')) {
      if (record.lsn <= cut || record.lsn > rebuild.upTo) continue;
      if (replayer.record(record)) done.records++;
      await replayer.pace();
    }
  }
  await replayer.landed();
  return done;
}

/**
 * Every record of a file, all of `type`; any damage is an error naming file and offset. The zeros a
 * journal segment keeps ahead of its records (a live one is read too) are not damage.
 */
export async function payloads<T extends Payload['type']>(file: string, type: T): Promise<Extract<Payload, { type: T }>[]> {
  const data = await readFile(file);
  const { frames, damage: found } = scanFrames(data);
  const damage = type === 'counters' ? found.filter((d) => !isZeroTail(data, d)) : found;
  const corrupt = (offset: number, reason: string): TopTallyError =>
    new TopTallyError('TOPTALLY_ERR_DATA_CORRUPT', `${file} at offset ${offset}: ${reason}`, { file, offset });
  if (damage.length > 0) throw corrupt(damage[0].offset, damage[0].reason);
  return frames.map((frame) => {
    const payload = decodePayload(frame.payload);
    if (payload.type !== type) throw corrupt(frame.offset, `a ${payload.type} record where ${type} records belong`);
    return payload as Extract<Payload, { type: T }>;
  });
}
