import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameEncoder, NotJsonError } from '../../src/cli/frame-encoder.ts';
import { lineChunks } from '../../src/cli/lines.ts';
import { decodeFrame } from '../../src/frontend/ws-codec.ts';

/** What the server's decoder gives for a JSON value: objects become Maps. */
function asDecoded(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(asDecoded);
  if (typeof value === 'object' && value !== null) {
    return new Map(Object.entries(value).map(([k, v]) => [k, asDecoded(v)]));
  }
  return value;
}

function encode(lines: string[], id: number): Buffer {
  const encoder = new FrameEncoder();
  for (const line of lines) {
    const bytes = Buffer.from(`${line}\n`);
    assert.equal(encoder.add(bytes, 0, bytes.length - 1), true, line);
  }
  return encoder.finish(id);
}

// Counters as `toptally send` sees them: mostly flat, sometimes anything JSON can hold.
// Domain-like strings cross the MessagePack string headers' size limits (31, 255 bytes).
const ascii = fc.stringMatching(/^[a-z0-9.-]{0,300}$/);
const key = fc.oneof(fc.constantFrom('timestamp', '__proto__', 'constructor'), ascii, fc.string(), fc.string({ unit: 'binary' }));
const value = fc.oneof(
  fc.constantFrom(0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 999_999_999_999_999, 1e15, 2 ** 53),
  fc.nat(),
  fc.maxSafeNat(),
  ascii,
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string(),
  fc.jsonValue({ maxDepth: 2 }),
);
const counterLine = fc
  .tuple(fc.array(fc.tuple(key, value), { maxLength: 8 }), fc.boolean())
  .map(([pairs, spaced]) => JSON.stringify(Object.fromEntries(pairs), null, spaced ? 1 : undefined).replace(/\n/g, ' '));
const anyLine = fc.oneof({ weight: 4, arbitrary: counterLine }, { weight: 1, arbitrary: fc.json() });

test('every JSON line encodes to what the server would decode from JSON.parse of it', () => {
  fc.assert(
    fc.property(fc.array(anyLine, { maxLength: 20 }), fc.nat({ max: 2 ** 32 - 1 }), (lines, id) => {
      const frame = decodeFrame(encode(lines, id), true) as Map<string, unknown>;
      assert.deepEqual(
        frame,
        new Map<string, unknown>([
          ['type', 'events'],
          ['id', id],
          ['events', lines.map((line) => asDecoded(JSON.parse(line)))],
        ]),
      );
    }),
    { numRuns: 300 },
  );
});

test('flat counters take the byte-copy path: string sizes and integers at every header boundary', () => {
  const line = '{"timestamp": "1608102631", "a": 0, "b": 127, "c": 255, "d": 65535, "e": 4294967295, "f": 999999999999999}';
  const sizes = [31, 32, 255, 256, 65535, 65536];
  const long = JSON.stringify(Object.fromEntries(sizes.map((n) => ['k'.repeat(n), 'v'.repeat(n)])));
  const frame = decodeFrame(encode([line, '{}', ' { "x" : 1 } ', long], 1), true) as Map<string, unknown>;
  assert.deepEqual(frame.get('events'), [asDecoded(JSON.parse(line)), new Map(), new Map([['x', 1]]), asDecoded(JSON.parse(long))]);
});

test('blank lines are skipped; a line that is not JSON throws with JSON.parse reason', () => {
  const encoder = new FrameEncoder();
  for (const blank of ['', '   ', '\t\r']) assert.equal(encoder.add(Buffer.from(blank), 0, blank.length), false);
  for (const bad of ['{"a": 1,}', '{"a": 01}', '{"a" 1}', '{"a": 1} x', 'nope', '{"a": 1']) {
    assert.throws(() => encoder.add(Buffer.from(bad), 0, bad.length), NotJsonError, bad);
  }
  assert.equal(encoder.count, 0);
});

test('lines are split the same wherever the chunks break, including inside a UTF-8 character', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.string({ unit: 'grapheme' }).map((s) => s.replace(/\n/g, '')), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), async (lines, cuts, trailingNewline) => {
      const text = lines.join('\n') + (trailingNewline ? '\n' : '');
      const bytes = Buffer.from(text);
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const chunks = [...points, bytes.length].map((end, i, all) => bytes.subarray(i === 0 ? 0 : all[i - 1], end));
      const seen: string[] = [];
      for await (const { bytes: chunk, ends } of lineChunks(Readable.from(chunks.filter((c) => c.length > 0)))) {
        let start = 0;
        for (const end of ends) {
          seen.push(chunk.toString('utf8', start, end));
          start = end + 1;
        }
      }
      const expected = text.split('\n');
      if (expected[expected.length - 1] === '') expected.pop();
      assert.deepEqual(seen, expected);
    }),
    { numRuns: 200 },
  );
});
