// Rebuilding one shard whose worker died, while the other shards serve: the newest checkpoint's
// chunks for that shard, then its parts of the journal records after the checkpoint's cut, up to the
// journal cut taken for the rebuild. Unlike start-up recovery it is read-only (the journal is live:
// nothing is cut off, unlinked or repaired), and damage fails the rebuild; the pool tries again.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TopTallyError } from '../errors.ts';
import type { ShardPart } from '../protocol/shard-part.ts';
import type { ShardHandle } from '../shards/shard-handle.ts';
import type { WindowKind } from '../window.ts';
import type { Checkpoint } from './checkpoint.ts';
import { scanFrames } from './frame.ts';
import type { Segment } from './journal.ts';
import { decodePayload, type Payload } from './records.ts';
import { repartition } from './repartition.ts';

/** Bytes handed to the worker before waiting for it to take them, as start-up recovery does. */
const LOAD_AHEAD_BYTES = 16 * 2 ** 20;

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

export async function rebuildShard(o: ShardRebuild): Promise<{ windows: number; records: number }> {
  const done = { windows: 0, records: 0 };
  let landing: Promise<void>[] = [];
  let bytes = 0;
  const hand = (part: ShardPart | undefined, send: (part: ShardPart) => Promise<void>): boolean => {
    if (!part) return false;
    bytes += part.buffer.byteLength;
    landing.push(send(part));
    return true;
  };
  const land = async (): Promise<void> => {
    if (bytes < LOAD_AHEAD_BYTES) return;
    await Promise.all(landing);
    [landing, bytes] = [[], 0];
  };

  const cut = o.checkpoint?.cut ?? 0;
  for (const [name, ref] of o.checkpoint?.windows ?? []) {
    if (ref.index < o.oldest[ref.kind]) continue;
    for (const chunk of await payloads(path.join(o.checkpoint!.dir, name), 'window')) {
      const part = chunk.shards === o.shards ? (chunk.shard === o.shard ? chunk.part : undefined) : repartition([chunk.part], o.shards)[o.shard];
      if (hand(part, (p) => o.handle.load(chunk.window, chunk.index, p))) done.windows++;
      await land();
    }
  }
  for (const segment of o.segments) {
    if (segment.lastLsn <= cut || segment.firstLsn > o.upTo) continue;
    for (const record of await payloads(segment.file, 'counters')) {
      if (record.lsn <= cut || record.lsn > o.upTo) continue;
      const part = record.shards === o.shards ? record.parts[o.shard] : repartition(record.parts, o.shards)[o.shard];
      if (hand(part, (p) => o.handle.ingest(p))) done.records++;
      await land();
    }
  }
  await Promise.all(landing);
  return done;
}

/** Every record of a file, all of `type`; any damage is an error naming file and offset. */
async function payloads<T extends Payload['type']>(file: string, type: T): Promise<Extract<Payload, { type: T }>[]> {
  const { frames, damage } = scanFrames(await readFile(file));
  const corrupt = (offset: number, reason: string): TopTallyError =>
    new TopTallyError('TOPTALLY_ERR_DATA_CORRUPT', `${file} at offset ${offset}: ${reason}`, { file, offset });
  if (damage.length > 0) throw corrupt(damage[0].offset, damage[0].reason);
  return frames.map((frame) => {
    const payload = decodePayload(frame.payload);
    if (payload.type !== type) throw corrupt(frame.offset, `a ${payload.type} record where ${type} records belong`);
    return payload as Extract<Payload, { type: T }>;
  });
}
