import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { FRAME_HEADER_BYTES, frameOf, scanFrames } from '../../src/durability/frame.ts';
import { decodePayload, encodeCounters, encodeKeys, encodeWindowChunk } from '../../src/durability/records.ts';
import { DecodeError } from '../../src/durability/bytes.ts';
import { repartition } from '../../src/durability/repartition.ts';
import { PartBuilder, viewPart, type ShardPart } from '../../src/protocol/shard-part.ts';
import { hashDomain, shardOf } from '../../src/routing/hash.ts';

const three = [frameOf(Buffer.from('first')), frameOf(Buffer.from('second record')), frameOf(Buffer.from('third'))];
const offsets = [0, three[0].length, three[0].length + three[1].length];

test('scanning whole frames returns each payload at its offset', () => {
  const { frames, damage } = scanFrames(Buffer.concat(three));
  assert.deepEqual(damage, []);
  assert.deepEqual(
    frames.map((f) => [f.offset, f.payload.toString()]),
    [
      [offsets[0], 'first'],
      [offsets[1], 'second record'],
      [offsets[2], 'third'],
    ],
  );
});

test('frames are written as version 2 with a CRC-32 (zlib); a frame of another version is not read', () => {
  const payload = Buffer.from('counters');
  const v2 = frameOf(payload);
  assert.deepEqual([...v2.subarray(0, 4)], [0xa5, 0x54, 0x54, 2]);
  assert.equal(v2.readUInt32LE(8), crc32(payload, crc32(v2.subarray(4, 8))));
  const { frames, damage } = scanFrames(v2);
  assert.deepEqual(damage, []);
  assert.deepEqual(frames.map((f) => [f.offset, f.payload.toString()]), [[0, 'counters']]);
  const unknown = Buffer.from(v2);
  unknown[3] = 3;
  assert.deepEqual(scanFrames(unknown).damage.map((d) => d.reason), ['no frame header (bad magic)']);
});

test('a frame cut short at the end is damage at its offset with nothing whole after it', () => {
  const data = Buffer.concat(three).subarray(0, offsets[2] + FRAME_HEADER_BYTES + 2);
  const { frames, damage } = scanFrames(data);
  assert.equal(frames.length, 2);
  assert.deepEqual(damage, [{ offset: offsets[2], bytes: FRAME_HEADER_BYTES + 2, reason: 'truncated frame', atEnd: true, torn: true }]);
});

test('zeros after the last frame (a half-written block) are damage at the end', () => {
  const data = Buffer.concat([three[0], Buffer.alloc(100)]);
  const { damage } = scanFrames(data);
  assert.deepEqual(damage, [{ offset: offsets[1], bytes: 100, reason: 'no frame header (bad magic)', atEnd: true, torn: true }]);
});

test('a flipped byte in the middle is damage of that frame only, and the next frame is found again', () => {
  const data = Buffer.concat(three);
  data[offsets[1] + FRAME_HEADER_BYTES + 3] ^= 0x40;
  const { frames, damage } = scanFrames(data);
  assert.deepEqual(
    frames.map((f) => f.payload.toString()),
    ['first', 'third'],
  );
  assert.deepEqual(damage, [{ offset: offsets[1], bytes: three[1].length, reason: 'checksum mismatch', atEnd: false, torn: false }]);
});

test('a damaged length field does not swallow the frames after it', () => {
  const data = Buffer.concat(three);
  data.writeUInt32LE(1_000_000, offsets[0] + 4);
  const { frames, damage } = scanFrames(data);
  assert.deepEqual(
    frames.map((f) => f.payload.toString()),
    ['second record', 'third'],
  );
  assert.deepEqual(damage, [{ offset: 0, bytes: three[0].length, reason: 'truncated frame', atEnd: false, torn: false }]);
});

function part(entries: [string, number, number][]): ShardPart {
  const builder = new PartBuilder();
  for (const [domain, count, minute] of entries) builder.add(domain, hashDomain(domain), count, minute);
  return builder.finish();
}

/** Entries of parts as [domain, count, minute], in order. */
function entriesOf(...parts: (ShardPart | undefined)[]): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (const p of parts) {
    if (!p) continue;
    const { entries, names, nameEnds, counts, minutes } = viewPart(p);
    for (let i = 0; i < entries; i++) {
      out.push([Buffer.from(names.subarray(i === 0 ? 0 : nameEnds[i - 1], nameEnds[i])).toString(), counts[i], minutes[i]]);
    }
  }
  return out;
}

test('a counter record round-trips its shard parts byte for byte, with its key and minutes', () => {
  const first = [['__proto__', 1, 26801709], ['é.example', Number.MAX_SAFE_INTEGER, 26801709]] as [string, number, number][];
  const third = [['🦊.example', 7, 26801650], ['x'.repeat(255), 300, 26801710]] as [string, number, number][];
  const record = {
    lsn: 2 ** 40 + 7,
    atMs: 1608102630123,
    counters: 3,
    entries: 4,
    key: { key: 'retry-7', fingerprint: '00112233445566778899aabbccddeeff' },
    shards: 3,
    parts: [part(first), undefined, part(third)],
    minutes: [26801709, 26801650, 26801710],
  };
  const [{ payload }] = scanFrames(encodeCounters(record)).frames;
  const decoded = decodePayload(payload);
  assert.equal(decoded.type, 'counters');
  if (decoded.type !== 'counters') return;
  const { parts, ...rest } = decoded;
  const { parts: _parts, ...expected } = record;
  assert.deepEqual(rest, { type: 'counters', ...expected });
  assert.equal(parts.length, 3);
  assert.equal(parts[1], undefined);
  assert.deepEqual(entriesOf(parts[0]), first);
  assert.deepEqual(entriesOf(parts[2]), third);
  assert.deepEqual(Buffer.from(parts[2]!.buffer), Buffer.from(record.parts[2]!.buffer));
});

test('parts re-partitioned for another shard count keep every entry, each with its owner', () => {
  const all: [string, number, number][] = Array.from({ length: 40 }, (_, i) => [`d${i}.example`, i + 1, 100 + (i % 3)]);
  const split = repartition([part(all.slice(0, 25)), undefined, part(all.slice(25))], 4);
  assert.equal(split.length, 4);
  const back: [string, number, number][] = [];
  split.forEach((p, shard) => {
    for (const entry of entriesOf(p)) {
      assert.equal(shardOf(hashDomain(entry[0]), 4), shard, entry[0]);
      back.push(entry);
    }
  });
  assert.deepEqual(back.sort(), [...all].sort());
});

test('window chunks and key lists round-trip', () => {
  const chunk = { window: 'hour' as const, index: 446695, shard: 1, shards: 3, part: part([['a', 1, 0], ['ü', 2 ** 40, 0]]) };
  const decoded = decodePayload(scanFrames(encodeWindowChunk(chunk)).frames[0].payload);
  assert.equal(decoded.type, 'window');
  if (decoded.type !== 'window') return;
  assert.deepEqual([decoded.window, decoded.index, decoded.shard, decoded.shards], ['hour', 446695, 1, 3]);
  assert.deepEqual(entriesOf(decoded.part), [['a', 1, 0], ['ü', 2 ** 40, 0]]);

  const answers = [{ key: 'k', fingerprint: 'ff'.repeat(16), atMs: 5, accepted: 100, counters: 500 }];
  assert.deepEqual(decodePayload(scanFrames(encodeKeys(answers)).frames[0].payload), { type: 'keys', answers });
});

test('a payload no encoder wrote is a DecodeError, not a crash', () => {
  assert.throws(() => decodePayload(Buffer.from([9])), DecodeError);
  assert.throws(() => decodePayload(Buffer.from([1, 0, 0])), DecodeError);
  const record = encodeCounters({ lsn: 1, atMs: 0, counters: 1, entries: 1, shards: 1, parts: [part([['a', 1, 1]])], minutes: [1] });
  const payload = Buffer.concat([record.subarray(FRAME_HEADER_BYTES), Buffer.from([0])]);
  assert.throws(() => decodePayload(payload), /trailing bytes/);
});
