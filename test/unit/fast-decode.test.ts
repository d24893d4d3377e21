// The byte scanner against the slow path it stands in for: on any body it either gives up (undefined)
// or returns the very parts the slow path builds, byte for byte. Differential properties over
// generated valid and broken bodies, then one example per reason to give up.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { toTopTallyError } from '../../src/errors.ts';
import { decodeParts, slowDecodeParts, type DecodeOutcome, type DecodeTask } from '../../src/ingest/decode-parts.ts';
import type { BodyFormat } from '../../src/ingest/decode.ts';
import { fastDecodeParts } from '../../src/ingest/fast-decode.ts';
import { DEFAULT_LIMITS, type InputLimits } from '../../src/ingest/validate.ts';
import { viewPart } from '../../src/protocol/shard-part.ts';
import type { Partitioned } from '../../src/routing/partition.ts';
import { mutate, type Mutation } from '../helpers/mutate.ts';

const T0 = 1_608_102_631;
const bounds = { oldest: T0 - 7200, newest: T0 + 300, retainHours: 1, maxFuture: 300 };

function task(text: string | Uint8Array, format: BodyFormat = 'json', limits: InputLimits = DEFAULT_LIMITS, shards = 3): DecodeTask {
  return { body: typeof text === 'string' ? Buffer.from(text) : text, format, bounds, shards, limits };
}

/** A Partitioned with each part's buffer as bytes, for deepEqual. */
function plain(p: Partitioned) {
  return { ...p, parts: p.parts.map((part) => part && { entries: part.entries, bytes: Buffer.from(part.buffer) }) };
}

function reference(t: DecodeTask): DecodeOutcome {
  try {
    return { ok: true, value: slowDecodeParts(t) };
  } catch (err) {
    return { ok: false, error: toTopTallyError(err).toJSON() };
  }
}

/** Whether the fast path took the body; throws unless that matches the slow path exactly. */
function agrees(t: DecodeTask): boolean {
  const fast = fastDecodeParts(t);
  if (fast === undefined) return false;
  const slow = reference(t);
  assert.ok(slow.ok, `the fast path took a body the slow path refuses: ${Buffer.from(t.body).toString()}`);
  assert.deepEqual(plain(fast), plain(slow.value), Buffer.from(t.body).toString());
  return true;
}

/** decodeParts as a whole answers what the slow path alone would, errors included. */
function sameOutcome(t: DecodeTask): DecodeOutcome {
  const got = decodeParts(t);
  const want = reference(t);
  assert.equal(got.ok, want.ok);
  if (got.ok && want.ok) assert.deepEqual(plain(got.value), plain(want.value));
  else assert.deepEqual(got, want);
  return got;
}

/** The domains of all parts, in part order, as [name, count, minute]. */
function entriesOf(p: Partitioned): [string, number, number][] {
  return p.parts.flatMap((part) => {
    if (!part) return [];
    const v = viewPart(part);
    return Array.from({ length: v.entries }, (_, i): [string, number, number] => [
      Buffer.from(v.names).toString('utf8', i === 0 ? 0 : v.nameEnds[i - 1], v.nameEnds[i]),
      v.counts[i],
      v.minutes[i],
    ]);
  });
}

// --- generated bodies -------------------------------------------------------------------------------

const space = fc.constantFrom('', '', '', ' ', '\t', '\r\n', '\n', '  ');
const plainName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_.-]{0,20}$/);
const name = fc.oneof(
  { weight: 6, arbitrary: plainName },
  { weight: 2, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'Timestamp', 'timestamp ', 'x'.repeat(255), 'x'.repeat(256)) },
  { weight: 1, arbitrary: fc.constantFrom('0', '7', '10', '01', '4294967294', '4294967295', '123456789012', '', 'a"b', 'a\\b', 'tab\t') },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }) },
);
const plainCount = fc.oneof({ weight: 8, arbitrary: fc.nat(1000) }, fc.constant(0), fc.integer({ min: 0, max: 999_999_999_999_999 }));
const countToken = fc.oneof(
  { weight: 12, arbitrary: plainCount.map(String) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('1000000000000000', '9007199254740993', '1.0', '1.5', '1e3', '-0', '-1', '01', '00', '"3"', 'null', 'true', '[1]', '{"n":1}', '{}') },
);
const inBounds = fc.integer({ min: bounds.oldest, max: bounds.newest });
const timestampToken = fc.oneof(
  { weight: 10, arbitrary: inBounds.map(String) },
  { weight: 3, arbitrary: inBounds.map((ts) => `"${ts}"`) },
  { weight: 1, arbitrary: fc.tuple(inBounds, fc.integer({ min: 1, max: 7 })).map(([ts, zeros]) => `"${'0'.repeat(zeros)}${ts}"`) },
  { weight: 1, arbitrary: fc.constantFrom(bounds.oldest - 1, bounds.oldest, bounds.newest, bounds.newest + 1, 0).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('1608102631.0', '16081026310e-1', '-1', '"16081026x1"', '""', '" 1608102631"', 'null', '"1608102631', '[1608102631]') },
);

interface Entry {
  key: string;
  value: string;
}

/** `{...}` with entries in order, the timestamp (if any) at `tsAt`, and `gaps` cycled as whitespace. */
function objectText(entries: Entry[], ts: string | undefined, tsAt: number, gaps: string[]): string {
  const all = entries.map((e) => `${JSON.stringify(e.key)}${gaps[0]}:${gaps[1 % gaps.length]}${e.value}`);
  if (ts !== undefined) all.splice(tsAt % (all.length + 1), 0, `"timestamp":${gaps[2 % gaps.length]}${ts}`);
  return `{${gaps[3 % gaps.length]}${all.join(`${gaps[4 % gaps.length]},`)}${gaps[5 % gaps.length]}}`;
}

const gaps = fc.array(space, { minLength: 1, maxLength: 6 });
/** Whitespace that keeps an object on one NDJSON line. */
const lineGaps = fc.array(fc.constantFrom('', '', ' ', '\t', '\r'), { minLength: 1, maxLength: 6 });
const counter = fc
  .tuple(fc.array(fc.record({ key: name, value: countToken }), { maxLength: 7 }), fc.option(timestampToken, { freq: 12, nil: undefined }), fc.nat(), gaps)
  .map(([entries, ts, at, g]) => objectText(entries, ts, at, g));
/** Counters the fast path must take: unique ASCII names, plain counts, an in-bounds timestamp. */
const plainCounter = fc
  .tuple(
    fc.uniqueArray(fc.record({ key: plainName, value: plainCount.map(String) }), { maxLength: 7, selector: (e) => e.key }),
    fc.oneof(inBounds.map(String), inBounds.map((ts) => `"${ts}"`)),
    fc.nat(),
    lineGaps,
  )
  .map(([entries, ts, at, g]) => objectText(entries, ts, at, g));

/** A body of `counters` as one object, a JSON array, or NDJSON lines (blank ones included). */
function bodies(counters: fc.Arbitrary<string>): fc.Arbitrary<{ text: string; format: BodyFormat }> {
  return fc.oneof(
    fc.tuple(counters, space, space).map(([c, a, b]) => ({ text: a + c + b, format: 'json' as const })),
    fc
      .tuple(fc.array(counters, { maxLength: 6 }), gaps)
      .map(([cs, g]) => ({ text: `${g[0]}[${g[1 % g.length]}${cs.join(`${g[2 % g.length]},`)}]${g[3 % g.length]}`, format: 'json' as const })),
    fc
      .tuple(fc.array(fc.oneof({ weight: 4, arbitrary: counters }, fc.constantFrom('', ' ', '\t\r')), { maxLength: 6 }), fc.constantFrom('\n', '\r\n'))
      .map(([lines, eol]) => ({ text: lines.join(eol), format: 'ndjson' as const })),
  );
}

const TOKENS = ['{', '}', '[', ']', ',', '"', ':', '\n', '\r', ' ', '0', '-', '1.5', '1e3', '-0', 'null', '\\u0041', '\\"', '{"a":1}', ',"a":1', ',"timestamp":1608102631', '\ufeff', 'é', '\u2028'];
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.constantFrom(...TOKENS).map((t) => Buffer.from(t)) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

const limits = fc.oneof(
  { weight: 3, arbitrary: fc.constant(DEFAULT_LIMITS) },
  { weight: 1, arbitrary: fc.record({ counters: fc.integer({ min: 0, max: 5 }), domains: fc.integer({ min: 0, max: 6 }), domainBytes: fc.integer({ min: 1, max: 12 }) }) },
);
const shards = fc.integer({ min: 1, max: 5 });

const anyTask = fc.oneof(
  fc.tuple(bodies(counter), limits, shards).map(([b, l, s]) => task(b.text, b.format, l, s)),
  fc
    .tuple(bodies(fc.oneof(counter, plainCounter)), fc.array(mutation, { minLength: 1, maxLength: 3 }), limits, shards)
    .map(([b, ms, l, s]) => task(mutate(Buffer.from(b.text), ms), b.format, l, s)),
);

test('on any body the fast path gives up or returns the slow path parts, byte for byte', () => {
  let taken = 0;
  fc.assert(
    fc.property(anyTask, (t) => {
      if (agrees(t)) taken++;
    }),
    { numRuns: 1500 },
  );
  // Not a bound on quality, a guard against a generator that never reaches the interesting half.
  assert.ok(taken > 100, `the fast path took ${taken} of 1500`);
});

test('the fast path takes every plain body and matches the slow path', () => {
  fc.assert(
    fc.property(bodies(plainCounter), shards, ({ text, format }, s) => {
      assert.ok(agrees(task(text, format, DEFAULT_LIMITS, s)), `gave up on ${JSON.stringify(text)}`);
    }),
    { numRuns: 500 },
  );
});

test('decodeParts answers exactly what the slow path answers, errors included', () => {
  fc.assert(fc.property(anyTask, (t) => void sameOutcome(t)), { numRuns: 500 });
});

// --- examples ---------------------------------------------------------------------------------------

const ts = T0;

test('__proto__, constructor and friends are ordinary domains, in text order, on the fast path', () => {
  const t = task(`[{"__proto__": 1, "timestamp": ${ts}, "constructor": 2}, {"toString": 3, "timestamp": "${ts + 60}", "valueOf": 0}]`);
  assert.ok(agrees(t));
  const value = fastDecodeParts(t)!;
  assert.deepEqual([value.counters, value.entries, value.minutes], [2, 4, [Math.floor(ts / 60), Math.floor(ts / 60) + 1]]);
  assert.deepEqual(
    entriesOf(value).sort(),
    [
      ['__proto__', 1, Math.floor(ts / 60)],
      ['constructor', 2, Math.floor(ts / 60)],
      ['toString', 3, Math.floor(ts / 60) + 1],
    ].sort(),
  );
});

test('plain shapes are taken: one object, an array, an empty array, NDJSON with blank and CRLF lines', () => {
  for (const [text, format] of [
    [`{"timestamp":${ts},"a.example":3}`, 'json'],
    [` \r\n\t[ {"a":1 , "timestamp" : ${ts}} ,{"timestamp":"${ts}","b":0}]\n`, 'json'],
    ['[ ]', 'json'],
    [`{"a":1,"timestamp":${ts}}\r\n\n \t\r\n{"timestamp":${ts},"b":999999999999999}\n`, 'ndjson'],
    ['', 'ndjson'],
    ['\n\n', 'ndjson'],
  ] as const) {
    assert.ok(agrees(task(text, format)), `gave up on ${JSON.stringify(text)}`);
  }
});

test('bodies the slow path accepts but the fast path leaves to it', () => {
  for (const text of [
    `{"timestamp":${ts},"\\u0061":1}`, // an escape
    `{"timestamp":${ts},"é.fr":1}`, // a non-ASCII key
    `{"timestamp":${ts},"a":1000000000000000}`, // 16 digits, still a safe integer
    `{"timestamp":${ts},"b":1,"10":2}`, // an array index: an object lists it first
    `{"timestamp":${ts},${Array.from({ length: 64 }, (_, i) => `"d${i}":1`).join(',')}}`, // over 63 domains
    `\ufeff{"timestamp":${ts},"a":1}`, // a byte order mark, which TextDecoder drops
  ]) {
    const t = task(text);
    assert.equal(fastDecodeParts(t), undefined, text);
    const outcome = sameOutcome(t);
    assert.ok(outcome.ok, text);
  }
});

test('bodies the slow path refuses are left to it, and it gives the reason', () => {
  const small = { counters: 2, domains: 2, domainBytes: 5 };
  for (const [text, code, format = 'json', lim = DEFAULT_LIMITS] of [
    [`{"a":1}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${bounds.oldest - 1},"a":1}`, 'TOPTALLY_ERR_TIMESTAMP_TOO_OLD'],
    [`{"timestamp":${bounds.newest + 1},"a":1}`, 'TOPTALLY_ERR_TIMESTAMP_IN_FUTURE'],
    [`{"timestamp":-1,"a":1}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":"${ts}x","a":1}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"a":-1}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"a":1.5}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"a":"3"}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"a":null}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"a":{"b":1}}`, 'TOPTALLY_ERR_NESTED_VALUE'],
    [`{"timestamp":${ts},"a":[1]}`, 'TOPTALLY_ERR_NESTED_VALUE'],
    [`{"timestamp":${ts},"":1}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"a":01}`, 'TOPTALLY_ERR_MALFORMED_JSON'],
    [`{"timestamp":${ts},"a":1,}`, 'TOPTALLY_ERR_MALFORMED_JSON'],
    [`[{"timestamp":${ts},"a":1},]`, 'TOPTALLY_ERR_MALFORMED_JSON'],
    [`{"timestamp":${ts},"a":1`, 'TOPTALLY_ERR_MALFORMED_JSON'],
    [`{"timestamp":${ts},"a":1}}`, 'TOPTALLY_ERR_MALFORMED_JSON'],
    [`{"timestamp":${ts},"a\tb":1}`, 'TOPTALLY_ERR_MALFORMED_JSON'],
    [`[{"timestamp":${ts},"a":1}, 5]`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [' \n', 'TOPTALLY_ERR_MALFORMED_JSON'],
    [`{"timestamp":${ts},\n"a":1}`, 'TOPTALLY_ERR_MALFORMED_JSON', 'ndjson'], // an object spanning lines
    [`[{"timestamp":${ts},"a":1}]`, 'TOPTALLY_ERR_INVALID_COUNTER', 'ndjson'],
    [`{"timestamp":${ts},"a":1} {"timestamp":${ts},"b":1}`, 'TOPTALLY_ERR_MALFORMED_JSON', 'ndjson'],
    [`[{"timestamp":${ts},"a":1},{"timestamp":${ts},"a":1},{"timestamp":${ts},"a":1}]`, 'TOPTALLY_ERR_TOO_MANY_COUNTERS', 'json', small],
    [`{"timestamp":${ts},"a":1,"b":1,"c":1}`, 'TOPTALLY_ERR_TOO_MANY_DOMAINS', 'json', small],
    [`{"timestamp":${ts},"abcdef":1}`, 'TOPTALLY_ERR_DOMAIN_TOO_LONG', 'json', small],
    // Integers not written as digits, keys twice, controls: JSON.parse would take them, changed.
    [`{"timestamp":${ts},"a":1.0}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"a":1e3}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"a":-0}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts}.0,"a":1}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":"0${ts}","a":1}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"a":1,"a":2}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"timestamp":${ts},"a":1}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"a\\u007f":1}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
    [`{"timestamp":${ts},"a\\u0000":1}`, 'TOPTALLY_ERR_INVALID_COUNTER'],
  ] as [string, string, BodyFormat?, InputLimits?][]) {
    const t = task(text, format, lim);
    assert.equal(fastDecodeParts(t), undefined, text);
    const outcome = sameOutcome(t);
    assert.equal(outcome.ok ? 'ok' : outcome.error.code, code, text);
  }
});

test('limits met exactly are still taken', () => {
  const exact = { counters: 2, domains: 2, domainBytes: 5 };
  const t = task(`{"timestamp":${ts},"abcde":1,"b":2}\n{"timestamp":${ts},"c":3}`, 'ndjson', exact);
  assert.ok(agrees(t));
  assert.deepEqual(entriesOf(fastDecodeParts(t)!).map(([d]) => d).sort(), ['abcde', 'b', 'c']);
});

test('one call leaves nothing behind for the next', () => {
  const first = task(`{"timestamp":${ts},"a":1,"b":2,"c":3,"d":4}`);
  const second = task(`{"e":5,"timestamp":${ts + 60}}`);
  assert.ok(agrees(first));
  assert.ok(agrees(second));
  assert.deepEqual(entriesOf(fastDecodeParts(second)!), [['e', 5, Math.floor((ts + 60) / 60)]]);
});

test('an empty timestamp string is no timestamp, not second 0', () => {
  const t = { ...task('{"timestamp":"","a":1}'), bounds: { ...bounds, oldest: 0, newest: T0 } };
  assert.equal(fastDecodeParts(t), undefined);
  const outcome = sameOutcome(t);
  assert.equal(outcome.ok ? 'ok' : outcome.error.code, 'TOPTALLY_ERR_INVALID_COUNTER');
  assert.ok(agrees({ ...t, body: Buffer.from('{"timestamp":"0","a":1}') }), 'second 0 itself is taken');
});
