// Splits validated entries by owner shard as they come: every domain lives in exactly one shard,
// which is what makes the merged top-N exact.

import { isMainThread } from 'node:worker_threads';
import { PartBuilder, type ShardPart } from '../protocol/shard-part.ts';
import { shardOf } from './hash.ts';

export interface Partitioned {
  /** Counter objects taken. */
  counters: number;
  /** Domain entries taken. */
  entries: number;
  /** parts[s] holds shard s's entries, or is undefined when there are none for it. */
  parts: (ShardPart | undefined)[];
  /** The minute indexes touched (their hours follow), for cache invalidation and pushes. */
  minutes: number[];
  /** sums[i]: the sum of the counts for minutes[i], to keep window totals exact (see WindowTotals). */
  sums: number[];
}

export class Partitioner {
  readonly #builders: (PartBuilder | undefined)[];
  /** shards - 1 when shards is a power of two, where `hash & mask` is `hash % shards` without a float modulo. */
  readonly #mask: number;
  readonly #sums = new Map<number, number>();
  #lastMinute = NaN;
  #lastSum = 0;
  #entries = 0;

  constructor(shards: number) {
    this.#builders = new Array(shards);
    this.#mask = (shards & (shards - 1)) === 0 ? shards - 1 : -1;
  }

  add(hash: number, name: string, count: number, minute: number): void {
    this.#entries++;
    if (count === 0) return; // taken, but changes no window
    this.#builder(hash).add(name, hash, count, minute);
    this.#touch(minute, count);
  }

  /** The same, with the name as the UTF-8 bytes `bytes[start..end)`. */
  addBytes(hash: number, bytes: Uint8Array, start: number, end: number, count: number, minute: number): void {
    this.#entries++;
    if (count === 0) return;
    this.#builder(hash).addRange(bytes, start, end, hash, count, minute);
    this.#touch(minute, count);
  }

  #builder(hash: number): PartBuilder {
    const shard = this.#mask >= 0 ? hash & this.#mask : shardOf(hash, this.#builders.length);
    // A decode thread's parts are moved back whole, so only the main thread's come from the arena.
    return (this.#builders[shard] ??= new PartBuilder(isMainThread));
  }

  /** Counters come in runs of one minute: its sum is kept at hand and stored when the minute changes. */
  #touch(minute: number, count: number): void {
    if (minute !== this.#lastMinute) {
      this.#store();
      this.#lastMinute = minute;
      this.#lastSum = this.#sums.get(minute) ?? 0;
    }
    this.#lastSum += count;
  }

  #store(): void {
    if (!Number.isNaN(this.#lastMinute)) this.#sums.set(this.#lastMinute, this.#lastSum);
  }

  finish(counters: number): Partitioned {
    const builders = this.#builders;
    const parts: (ShardPart | undefined)[] = new Array(builders.length);
    for (let i = 0; i < builders.length; i++) parts[i] = builders[i]?.finish();
    this.#store();
    return { counters, entries: this.#entries, parts, minutes: [...this.#sums.keys()], sums: [...this.#sums.values()] };
  }
}
