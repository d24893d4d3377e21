// Handing stored windows and journal records to the partitions that own them now: the one path
// both start-up recovery (every partition) and the rebuild of one restarted shard take. Data written
// for another partition count is split again by its stored hashes. At most LOAD_AHEAD_BYTES are
// handed out before waiting for them to be taken, which bounds the memory a replay holds.
//
// Small records (the seed's one counter per request is a few dozen bytes a partition) are joined
// and handed over as one record of their sum: handed over one by one, each costs a message part and a
// transferred buffer per partition, and their number, not their bytes, sets how long a replay takes.

import { concatParts, type ShardPart } from '../protocol/shard-part.ts';
import type { WindowKind } from '../window.ts';
import type { CounterRecord, WindowChunk } from './records.ts';
import { repartition } from './repartition.ts';

const LOAD_AHEAD_BYTES = 16 * 2 ** 20;
/** Records holding less than this are joined with the ones after them... */
const SMALL_RECORD_BYTES = 4096;
/** ...until the joined ones hold this much. */
const JOINED_BYTES = 256 * 1024;

/** Where a replay goes: the state backend at start-up, one new shard worker for a rebuild. */
export interface ReplayTarget {
  /** The partition count now. */
  partitions: number;
  /** Adds a partition's part of a checkpointed window to that window alone. */
  load(window: WindowKind, index: number, partition: number, part: ShardPart): Promise<void>;
  /**
   * Applies a journal record's parts (parts[p] for partition p, split for the count now). For
   * small records joined, `record` is their sum: the last one's LSN, every minute they touch.
   */
  apply(parts: (ShardPart | undefined)[], record: CounterRecord): Promise<void>;
}

export class Replayer {
  readonly #target: ReplayTarget;
  /** The one partition replayed, or undefined for all. */
  readonly #only: number | undefined;
  #handed: Promise<void>[] = [];
  #bytes = 0;
  /** Small records not handed over yet: their parts by partition, the last of them, and their sums. */
  #joining: ShardPart[][] = [];
  #lastJoined: CounterRecord | null = null;
  #joinedCounters = 0;
  #joinedEntries = 0;
  #joinedMinutes = new Set<number>();
  #joiningBytes = 0;

  constructor(target: ReplayTarget, only?: number) {
    this.#target = target;
    this.#only = only;
  }

  /** Hands a checkpoint chunk to the partitions it belongs to now; false when none is replayed here. */
  window({ window, index, shard, shards, part }: WindowChunk): boolean {
    const parts = shards === this.#target.partitions ? placed(shard, part) : repartition([part], this.#target.partitions);
    let handed = false;
    parts.forEach((p, partition) => {
      if (!p || (this.#only !== undefined && partition !== this.#only)) return;
      // Counted first: a part's buffer is detached once it is sent to a thread.
      this.#bytes += p.buffer.byteLength;
      this.#handed.push(this.#target.load(window, index, partition, p));
      handed = true;
    });
    return handed;
  }

  /** Hands a journal record to the partitions now; false when it holds nothing for those replayed here. */
  record(record: CounterRecord): boolean {
    let parts = record.shards === this.#target.partitions ? record.parts : repartition(record.parts, this.#target.partitions);
    if (this.#only !== undefined) parts = placed(this.#only, parts[this.#only]);
    if (parts.every((p) => !p)) return false;
    const bytes = parts.reduce((sum, p) => sum + (p?.buffer.byteLength ?? 0), 0);
    this.#bytes += bytes;
    if (bytes >= SMALL_RECORD_BYTES) {
      this.#handJoined();
      this.#handed.push(this.#target.apply(parts, record));
      return true;
    }
    for (let partition = 0; partition < parts.length; partition++) {
      const part = parts[partition];
      if (part) (this.#joining[partition] ??= []).push(part);
    }
    this.#lastJoined = record;
    this.#joinedCounters += record.counters;
    this.#joinedEntries += record.entries;
    for (const minute of record.minutes) this.#joinedMinutes.add(minute);
    this.#joiningBytes += bytes;
    if (this.#joiningBytes >= JOINED_BYTES) this.#handJoined();
    return true;
  }

  /** Hands the small records joined so far over as one. */
  #handJoined(): void {
    const last = this.#lastJoined;
    if (!last) return;
    // map() keeps the holes: a partition none of them had a part for gets none.
    const parts = this.#joining.map((list) => concatParts(list));
    const minutes = [...this.#joinedMinutes];
    const sum: CounterRecord = { lsn: last.lsn, atMs: last.atMs, counters: this.#joinedCounters, entries: this.#joinedEntries, shards: last.shards, parts, minutes };
    this.#handed.push(this.#target.apply(parts, sum));
    this.#joining = [];
    this.#lastJoined = null;
    this.#joinedCounters = this.#joinedEntries = this.#joiningBytes = 0;
    this.#joinedMinutes = new Set();
  }

  /** Waits for what was handed out once more than the load-ahead bound is. */
  async pace(): Promise<void> {
    if (this.#bytes > LOAD_AHEAD_BYTES) await this.landed();
  }

  /** Waits until everything handed out has been taken. */
  async landed(): Promise<void> {
    this.#handJoined();
    const handed = this.#handed;
    [this.#handed, this.#bytes] = [[], 0];
    await Promise.all(handed);
  }

  /** After a failure: lets what was handed out land (or fail) before the caller stops the workers. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.#handed);
  }
}

/** A sparse array of parts holding `part` at `partition`. */
function placed(partition: number, part: ShardPart | undefined): (ShardPart | undefined)[] {
  const parts: (ShardPart | undefined)[] = [];
  if (part) parts[partition] = part;
  return parts;
}
