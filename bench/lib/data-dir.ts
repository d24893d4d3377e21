/**
 * Data directories written straight in toptally's on-disk format, for the recovery benchmarks: a
 * checkpoint whose windows each hold the whole universe, and a journal of Zipf-sampled records after
 * it. Writing them takes seconds where ingesting them would take minutes.
 */
import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { writeCheckpoint } from '../../src/durability/checkpoint.ts';
import { JOURNAL_DIR, segmentName } from '../../src/durability/files.ts';
import { encodeCounters } from '../../src/durability/records.ts';
import type { ExportedWindow } from '../../src/protocol/messages.ts';
import { PartBuilder, type ShardPart } from '../../src/protocol/shard-part.ts';
import { hashDomain, shardOf } from '../../src/routing/hash.ts';
import type { WindowKind, WindowRef } from '../../src/window.ts';
import { domainName, mulberry32, Zipf } from './prng.js';

export class DataDirWriter {
  readonly #dataDir: string;
  readonly #shards: number;
  readonly #random: () => number;
  readonly #zipf: Zipf;
  readonly #names: string[];
  readonly #hashes: number[];

  constructor(dataDir: string, options: { seed: number; universe: number; shards: number }) {
    this.#dataDir = dataDir;
    this.#shards = options.shards;
    this.#random = mulberry32(options.seed);
    this.#zipf = new Zipf(options.universe);
    this.#names = Array.from({ length: options.universe }, (_, i) => domainName(i));
    this.#hashes = this.#names.map(hashDomain);
  }

  /** A checkpoint (cut 0) of these windows, each holding every domain with Zipf-like counts. */
  async checkpoint(windows: WindowRef[], oldest: Record<WindowKind, number>): Promise<void> {
    const exported: ExportedWindow[][] = Array.from({ length: this.#shards }, () => []);
    for (const { kind, index } of windows) {
      const builders = exported.map(() => new PartBuilder());
      const scale = kind === 'minute' ? 1_000 : 60_000;
      this.#names.forEach((name, i) => builders[shardOf(this.#hashes[i]!, this.#shards)]!.add(name, this.#hashes[i]!, 1 + Math.floor(scale / (i + 1)), index));
      builders.forEach((builder, shard) => exported[shard]!.push({ window: kind, index, parts: [builder.finish()] }));
    }
    await writeCheckpoint(this.#dataDir, null, { cut: 0, changed: windows, exported, answers: [], oldest });
  }

  /**
   * One journal segment of records 1, 2, … after that checkpoint, each `counters` counters of
   * `entries` Zipf domains in `minute` all told, until `records` or `maxBytes` is reached.
   */
  async journal(o: { records: number; maxBytes?: number; counters: number; entries: number; minute: number; atMs: number }): Promise<void> {
    mkdirSync(path.join(this.#dataDir, JOURNAL_DIR), { recursive: true });
    const segment = await open(path.join(this.#dataDir, JOURNAL_DIR, segmentName(1)), 'w');
    let bytes = 0;
    const pending: Buffer[] = [];
    for (let lsn = 1; lsn <= o.records && bytes < (o.maxBytes ?? Infinity); lsn++) {
      const builders: (PartBuilder | undefined)[] = new Array(this.#shards);
      for (let e = 0; e < o.entries; e++) {
        const i = this.#zipf.sample(this.#random);
        (builders[shardOf(this.#hashes[i]!, this.#shards)] ??= new PartBuilder()).add(this.#names[i]!, this.#hashes[i]!, 1 + Math.floor(this.#random() * 10), o.minute);
      }
      const parts: (ShardPart | undefined)[] = Array.from(builders, (b) => b?.finish());
      const frame = encodeCounters({ lsn, atMs: o.atMs, counters: o.counters, entries: o.entries, shards: this.#shards, parts, minutes: [o.minute] });
      bytes += frame.length;
      pending.push(frame);
      if (pending.length >= 4096) await segment.writev(pending.splice(0));
    }
    await segment.writev(pending);
    await segment.close();
  }
}
