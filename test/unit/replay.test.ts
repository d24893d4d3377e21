import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CounterRecord } from '../../src/durability/records.ts';
import { Replayer } from '../../src/durability/replay.ts';
import { PartBuilder, viewPart, type ShardPart } from '../../src/protocol/shard-part.ts';
import { hashDomain, shardOf } from '../../src/routing/hash.ts';

const SHARDS = 2;

/** A record of `domains` entries, each its own domain, all in `minute`. */
function record(lsn: number, domains: number, minute: number): CounterRecord {
  const builders: (PartBuilder | undefined)[] = new Array(SHARDS);
  for (let d = 0; d < domains; d++) {
    const name = `r${lsn}-d${d}.example`;
    const hash = hashDomain(name);
    (builders[shardOf(hash, SHARDS)] ??= new PartBuilder()).add(name, hash, lsn, minute);
  }
  const parts = Array.from(builders, (b) => b?.finish());
  return { lsn, atMs: lsn, counters: 1, entries: domains, shards: SHARDS, parts, minutes: [minute] };
}

/** Every (name, count, minute) a list of parts holds, sorted. */
function entriesOf(parts: (ShardPart | undefined)[][]): string[][] {
  const out: string[][] = Array.from({ length: SHARDS }, () => []);
  for (const list of parts) {
    list.forEach((part, shard) => {
      if (!part) return;
      const { entries, names, nameEnds, counts, minutes } = viewPart(part);
      for (let i = 0; i < entries; i++) {
        const name = Buffer.from(names.subarray(i === 0 ? 0 : nameEnds[i - 1], nameEnds[i])).toString();
        out[shard].push(`${name} ${counts[i]} ${minutes[i]}`);
      }
    });
  }
  return out.map((list) => list.sort());
}

test('small records are handed over joined, large ones as they are, in LSN order, and every entry arrives once', async () => {
  const handed: { parts: (ShardPart | undefined)[]; record: CounterRecord }[] = [];
  const replayer = new Replayer({
    partitions: SHARDS,
    load: async () => {},
    apply: async (parts, rec) => void handed.push({ parts, record: rec }),
  });
  // 300 one-domain records in two minutes, a large record in the middle, then more small ones.
  const records = [
    ...Array.from({ length: 150 }, (_, i) => record(i + 1, 1, 100 + (i % 2))),
    record(151, 400, 102),
    ...Array.from({ length: 150 }, (_, i) => record(152 + i, 1, 103)),
  ];
  // The expected entries, taken before the replayer is given the parts.
  const expected = entriesOf(records.map((r) => r.parts));
  for (const r of records) assert.equal(replayer.record(r), true);
  await replayer.landed();

  assert.equal(handed.length, 3, 'the small ones before the large one, the large one, the small ones after it');
  assert.deepEqual(handed.map((h) => h.record.lsn), [150, 151, 301]);
  assert.deepEqual(handed.map((h) => [h.record.counters, h.record.entries]), [[150, 150], [1, 400], [150, 150]]);
  assert.deepEqual(handed.map((h) => [...h.record.minutes].sort()), [[100, 101], [102], [103]]);
  assert.deepEqual(entriesOf(handed.map((h) => h.parts)), expected);
});

test('a rebuild of one shard joins only that shard\'s parts', async () => {
  const handed: (ShardPart | undefined)[][] = [];
  const replayer = new Replayer({ partitions: SHARDS, load: async () => {}, apply: async (parts) => void handed.push(parts) }, 1);
  const records = Array.from({ length: 40 }, (_, i) => record(i + 1, 2, 100));
  const expected = entriesOf(records.map((r) => [undefined, r.parts[1]]));
  let taken = 0;
  for (const r of records) if (replayer.record(r)) taken++;
  await replayer.landed();
  assert.equal(handed.length, 1);
  assert.equal(handed[0][0], undefined);
  assert.ok(taken > 0 && taken <= 40);
  assert.deepEqual(entriesOf(handed), expected);
});
