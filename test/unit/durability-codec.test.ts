import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c } from '../../src/durability/crc32c.ts';
import { FRAME_HEADER_BYTES, frameOf, scanFrames } from '../../src/durability/frame.ts';
import { decodePayload, encodeCounters, encodeKeys, encodeWindowChunk } from '../../src/durability/records.ts';
import { DecodeError } from '../../src/protocol/bytes.ts';
import { packedEntries, unpack, WindowPacker } from '../../src/protocol/packed.ts';

test('crc32c matches the published check values, in one pass or continued', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
  assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  const text = Buffer.from('The quick brown fox jumps over the lazy dog, twice over.');
  assert.equal(crc32c(text, 13, text.length, crc32c(text, 0, 13)), crc32c(text));
});

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

test('a frame cut short at the end is damage at its offset with nothing whole after it', () => {
  const data = Buffer.concat(three).subarray(0, offsets[2] + FRAME_HEADER_BYTES + 2);
  const { frames, damage } = scanFrames(data);
  assert.equal(frames.length, 2);
  assert.deepEqual(damage, [{ offset: offsets[2], bytes: FRAME_HEADER_BYTES + 2, reason: 'truncated frame', atEnd: true }]);
});

test('zeros after the last frame (a half-written block) are damage at the end', () => {
  const data = Buffer.concat([three[0], Buffer.alloc(100)]);
  const { damage } = scanFrames(data);
  assert.deepEqual(damage, [{ offset: offsets[1], bytes: 100, reason: 'no frame header (bad magic)', atEnd: true }]);
});

test('a flipped byte in the middle is damage of that frame only, and the next frame is found again', () => {
  const data = Buffer.concat(three);
  data[offsets[1] + FRAME_HEADER_BYTES + 3] ^= 0x40;
  const { frames, damage } = scanFrames(data);
  assert.deepEqual(
    frames.map((f) => f.payload.toString()),
    ['first', 'third'],
  );
  assert.deepEqual(damage, [{ offset: offsets[1], bytes: three[1].length, reason: 'checksum mismatch', atEnd: false }]);
});

test('a damaged length field does not swallow the frames after it', () => {
  const data = Buffer.concat(three);
  data.writeUInt32LE(1_000_000, offsets[0] + 4);
  const { frames, damage } = scanFrames(data);
  assert.deepEqual(
    frames.map((f) => f.payload.toString()),
    ['second record', 'third'],
  );
  assert.deepEqual(damage, [{ offset: 0, bytes: three[0].length, reason: 'truncated frame', atEnd: false }]);
});

test('a counter record round-trips: unicode and __proto__ domains, counts up to 2^53 - 1, minutes going back', () => {
  const record = {
    lsn: 2 ** 40 + 7,
    atMs: 1608102630123,
    accepted: 3,
    key: { key: 'retry-7', fingerprint: '00112233445566778899aabbccddeeff' },
    domains: ['__proto__', 'é.example', '🦊.example', 'x'.repeat(255)],
    counts: [1, Number.MAX_SAFE_INTEGER, 0, 300],
    minutes: [26801709, 26801709, 26801650, 26801710],
  };
  const [{ payload }] = scanFrames(encodeCounters(record)).frames;
  assert.deepEqual(decodePayload(payload), { type: 'counters', ...record });
  const { key: _key, ...unkeyed } = record;
  assert.deepEqual(decodePayload(scanFrames(encodeCounters(unkeyed)).frames[0].payload), { type: 'counters', ...unkeyed });
});

test('window chunks and key lists round-trip', () => {
  const packer = new WindowPacker(2);
  for (const [domain, count] of [['a', 1], ['b', 2 ** 40], ['ü', 3]] as const) packer.add(domain, count);
  const chunks = packer.finish();
  assert.deepEqual(chunks.map(packedEntries), [2, 1]);
  assert.deepEqual(unpack(chunks[0]), { domains: ['a', 'b'], counts: new Float64Array([1, 2 ** 40]) });
  assert.deepEqual(unpack(chunks[1]), { domains: ['ü'], counts: new Float64Array([3]) });

  const chunk = { window: 'hour' as const, index: 446695, shard: 1, shards: 3, packed: chunks[1] };
  const decoded = decodePayload(scanFrames(encodeWindowChunk(chunk)).frames[0].payload);
  assert.equal(decoded.type, 'window');
  if (decoded.type !== 'window') return;
  assert.deepEqual([decoded.window, decoded.index, decoded.shard, decoded.shards], ['hour', 446695, 1, 3]);
  assert.deepEqual(Buffer.from(decoded.packed), Buffer.from(chunks[1]));

  const answers = [{ key: 'k', fingerprint: 'ff'.repeat(16), atMs: 5, accepted: 100, counters: 500 }];
  assert.deepEqual(decodePayload(scanFrames(encodeKeys(answers)).frames[0].payload), { type: 'keys', answers });
});

test('a payload no encoder wrote is a DecodeError, not a crash', () => {
  assert.throws(() => decodePayload(Buffer.from([9])), DecodeError);
  assert.throws(() => decodePayload(Buffer.from([1, 0, 0])), DecodeError);
  const record = encodeCounters({ lsn: 1, atMs: 0, accepted: 1, domains: ['a'], counts: [1], minutes: [1] });
  const payload = Buffer.concat([record.subarray(FRAME_HEADER_BYTES), Buffer.from([0])]);
  assert.throws(() => decodePayload(payload), /trailing bytes/);
});
