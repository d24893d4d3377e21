// Splits validated entries by owner shard as they come: every domain lives in exactly one shard,
// which is what makes the merged top-N exact.

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
}

export class Partitioner {
  readonly #builders: (PartBuilder | undefined)[];
  readonly #minutes = new Set<number>();
  #lastMinute = NaN;
  #entries = 0;

  constructor(shards: number) {
    this.#builders = new Array(shards);
  }

  add(hash: number, name: string, count: number, minute: number): void {
    this.#entries++;
    if (count === 0) return; // taken, but changes no window
    this.#builder(hash).add(name, hash, count, minute);
    this.#touch(minute);
  }

  /** The same, with the name as the UTF-8 bytes `bytes[start..end)`. */
  addBytes(hash: number, bytes: Uint8Array, start: number, end: number, count: number, minute: number): void {
    this.#entries++;
    if (count === 0) return;
    this.#builder(hash).addRange(bytes, start, end, hash, count, minute);
    this.#touch(minute);
  }

  #builder(hash: number): PartBuilder {
    return (this.#builders[shardOf(hash, this.#builders.length)] ??= new PartBuilder());
  }

  #touch(minute: number): void {
    if (minute !== this.#lastMinute) this.#minutes.add((this.#lastMinute = minute));
  }

  finish(counters: number): Partitioned {
    return {
      counters,
      entries: this.#entries,
      parts: Array.from(this.#builders, (b) => b?.finish()),
      minutes: [...this.#minutes],
    };
  }
}
