// The shard part's bytes are a contract (shards, the journal and recovery read them), so they are
// pinned for a known input, checked against a plain re-encoding of the layout for generated input,
// and merging is checked against building everything in one builder.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { concatParts, movablePart, PartBuilder, partBytes, partSize, postableParts, viewPart, type ShardPart } from '../../src/protocol/shard-part.ts';
import { hashDomain, shardOf } from '../../src/routing/hash.ts';
import { Partitioner } from '../../src/routing/partition.ts';

const M = 26_801_710;

type Entry = [name: string, hash: number, count: number, minute: number];

/** The layout in shard-part.ts's header, written out field by field. */
function reference(entries: readonly Entry[]): Buffer {
  const names = entries.map(([name]) => Buffer.from(name));
  const n = entries.length;
  const out = Buffer.alloc(20 * n + names.reduce((b, name) => b + name.length, 0));
  let end = 0;
  entries.forEach(([, hash, count, minute], i) => {
    end += names[i].length;
    out.writeDoubleLE(count, 8 * i);
    out.writeUInt32LE(end, 8 * n + 4 * i);
    out.writeInt32LE(minute, 12 * n + 4 * i);
    out.writeUInt32LE(hash, 16 * n + 4 * i);
  });
  Buffer.concat(names).copy(out, 20 * n);
  return out;
}

/** Adds through each of the three entry points in turn, so all of them are held to the layout. */
function add(builder: PartBuilder, [name, hash, count, minute]: Entry, way: number): void {
  if (way % 3 === 0) return builder.add(name, hash, count, minute);
  const bytes = Buffer.from(name);
  if (way % 3 === 1) return builder.addBytes(bytes, hash, count, minute);
  const padded = Buffer.concat([Buffer.from('xy'), bytes, Buffer.from('z')]);
  builder.addRange(padded, 2, 2 + bytes.length, hash, count, minute);
}

function build(entries: readonly Entry[]): ShardPart {
  const builder = new PartBuilder();
  entries.forEach((entry, i) => add(builder, entry, i));
  return builder.finish();
}

const bytesOf = (part: ShardPart | undefined) => part && { entries: part.entries, hex: Buffer.from(part.buffer).toString('hex') };

const anyEntry = fc.tuple(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
  fc.nat({ max: 2 ** 32 - 1 }),
  fc.maxSafeNat(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
);

test('the part bytes of a known input are pinned: zero counts dropped, a non-ASCII name as UTF-8', () => {
  const out = new Partitioner(2);
  for (const [domain, count, minute] of [['a.io', 3, M], ['zero.io', 0, M], ['é.fr', 2 ** 40 + 1, M], ['b.io', 7, M + 1]] as const) {
    out.add(hashDomain(domain), domain, count, minute);
  }
  const { parts, ...rest } = out.finish(2);
  assert.deepEqual(rest, { counters: 2, entries: 4, minutes: [M, M + 1], sums: [3 + 2 ** 40 + 1, 7] });
  // a.io hashes to 0x8f6dc0b6 (shard 0); é.fr 0xf1269d49 and b.io 0x6cf70305 (shard 1).
  assert.deepEqual(parts.map(bytesOf), [
    {
      entries: 1,
      hex: '0000000000000840' + '04000000' + '2ef69801' + 'b6c06d8f' + '612e696f',
    },
    {
      entries: 2,
      hex:
        '0010000000007042' + '0000000000001c40' + // counts 2^40 + 1 and 7
        '05000000' + '09000000' + // name ends: "é.fr" is 5 bytes, "b.io" 4 more
        '2ef69801' + '2ff69801' + // minutes
        '499d26f1' + '0503f76c' + // hashes
        'c3a92e6672' + '622e696f', // é.fr b.io
    },
  ]);
});

test('a builder keeps a zero count, and an empty builder finishes as an empty part', () => {
  const entries: Entry[] = [['x', 7, 0, M], ['ÿ', 8, 5, -1]];
  assert.deepEqual(bytesOf(build(entries)), { entries: 2, hex: reference(entries).toString('hex') });
  assert.deepEqual(bytesOf(new PartBuilder().finish()), { entries: 0, hex: '' });
});

test('a part is the layout of its entries, past any initial room and with builders alive side by side', () => {
  fc.assert(
    fc.property(fc.array(anyEntry, { maxLength: 700 }), fc.array(anyEntry, { maxLength: 30 }), (many, few) => {
      // Two builders filled in turn, and one dropped unfinished: none may see another's entries.
      const a = new PartBuilder();
      const b = new PartBuilder();
      new PartBuilder().add('dropped', 1, 1, 1);
      for (let i = 0; i < Math.max(many.length, few.length); i++) {
        if (i < many.length) add(a, many[i], i);
        if (i < few.length) add(b, few[i], i + 1);
      }
      assert.equal(a.entries, many.length);
      const partA = a.finish();
      assert.equal(a.entries, 0, 'finish empties the builder');
      assert.deepEqual(bytesOf(b.finish()), { entries: few.length, hex: reference(few).toString('hex') });
      assert.deepEqual(bytesOf(partA), { entries: many.length, hex: reference(many).toString('hex') });
    }),
    { numRuns: 150 },
  );
});

test('a name longer than the initial room, and a builder reused after finish, keep the layout', () => {
  const long: Entry = ['é'.repeat(6000), 1, 2, M];
  const builder = new PartBuilder();
  add(builder, ['a', 1, 1, M], 0);
  add(builder, long, 0);
  assert.deepEqual(bytesOf(builder.finish()), { entries: 2, hex: reference([['a', 1, 1, M], long]).toString('hex') });
  add(builder, long, 2);
  assert.deepEqual(bytesOf(builder.finish()), { entries: 1, hex: reference([long]).toString('hex') });
});

test('entries go to shard hash % shards, for every shard count and hashes at and above 2^31', () => {
  const hashes = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 0x8f6dc0b6, 0xf1269d49, 2 ** 32 - 2, 2 ** 32 - 1];
  for (let shards = 1; shards <= 8; shards++) {
    const out = new Partitioner(shards);
    for (const hash of hashes) out.add(hash, `h${hash}`, 1, M);
    const { parts } = out.finish(1);
    const want = Array.from({ length: shards }, (_, s) => {
      const mine = hashes.filter((h) => shardOf(h, shards) === s);
      return mine.length === 0 ? undefined : bytesOf(build(mine.map((h): Entry => [`h${h}`, h, 1, M])));
    });
    assert.deepEqual(parts.map(bytesOf), want, `${shards} shards`);
  }
});

test('parts joined into one are the layout of all their entries in order', () => {
  fc.assert(
    fc.property(fc.array(fc.array(anyEntry, { maxLength: 20 }), { minLength: 1, maxLength: 12 }), (lists) => {
      const joined = concatParts(lists.map(build));
      assert.deepEqual(bytesOf(joined), { entries: lists.flat().length, hex: reference(lists.flat()).toString('hex') });
    }),
    { numRuns: 150 },
  );
});

function buildIn(arena: boolean, entries: readonly Entry[]): ShardPart {
  const builder = new PartBuilder(arena);
  entries.forEach((entry, i) => add(builder, entry, i));
  return builder.finish();
}

test('parts carved from the arena have the layout, join with parts of their own, and read the same once their buffer was moved', () => {
  fc.assert(
    fc.property(fc.array(fc.array(anyEntry, { maxLength: 20 }), { minLength: 1, maxLength: 12 }), (lists) => {
      const parts = lists.map((entries, i) => buildIn(i % 2 === 0, entries));
      parts.forEach((part, i) => {
        assert.equal(Buffer.from(partBytes(part)).toString('hex'), reference(lists[i]).toString('hex'));
        assert.equal(partSize(part), reference(lists[i]).length);
      });
      const joined = concatParts(parts);
      assert.deepEqual(bytesOf(joined), { entries: lists.flat().length, hex: reference(lists.flat()).toString('hex') });
      // Posted to a thread: the copy that leaves is whole, and the part still reads its entries.
      // (An empty builder's part is a plain one, which a move does empty.)
      if (lists[0].length === 0) return;
      const first = parts[0];
      const posted = structuredClone(movablePart(first), { transfer: [first.buffer] });
      assert.deepEqual(bytesOf(posted), { entries: lists[0].length, hex: reference(lists[0]).toString('hex') });
      assert.equal(Buffer.from(partBytes(first)).toString('hex'), reference(lists[0]).toString('hex'));
      assert.deepEqual([...viewPart(first).counts], lists[0].map(([, , count]) => count));
    }),
    { numRuns: 150 },
  );
});

test('a part carved from the arena is posted as a plain part with a buffer of its own, never as the arena object', () => {
  const part = buildIn(true, [['a.io', 1, 3, M], ['b.io', 2, 4, M]]);
  // A structured clone keeps own fields only: the arena part itself would arrive without its bytes.
  assert.equal((structuredClone(part as object) as ShardPart).buffer, undefined);
  const posted = structuredClone(movablePart(part));
  assert.deepEqual(bytesOf(posted), { entries: 2, hex: reference([['a.io', 1, 3, M], ['b.io', 2, 4, M]]).toString('hex') });
  assert.equal(concatParts([part]).buffer.byteLength, partSize(part), 'a lone part leaves as a copy of its own');
});

test('parts are posted with each run carved from the arena joined, and every part with a buffer of its own moved as it is, in order', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.array(anyEntry, { minLength: 1, maxLength: 8 })), { minLength: 1, maxLength: 12 }), (specs) => {
      const parts = specs.map(([arena, entries]) => buildIn(arena, entries));
      const posted = postableParts(parts);
      // A part of its own is the very object, so its buffer is moved, never copied and left as garbage.
      const own = parts.filter((_, i) => !specs[i][0]);
      assert.deepEqual(
        posted.filter((part) => own.includes(part)),
        own,
      );
      const runs = specs.filter(([arena], i) => arena && (i === 0 || !specs[i - 1][0])).length;
      assert.equal(posted.length, own.length + runs);
      const all = specs.flatMap(([, entries]) => entries);
      assert.deepEqual(bytesOf(concatParts(posted)), { entries: all.length, hex: reference(all).toString('hex') });
    }),
    { numRuns: 100 },
  );
});
