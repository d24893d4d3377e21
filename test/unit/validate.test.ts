import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TopTallyError } from '../../src/errors.ts';
import { decode, formatOf } from '../../src/ingest/decode.ts';
import { validate } from '../../src/ingest/validate.ts';
import { viewPart, type ShardPart } from '../../src/protocol/shard-part.ts';
import { hashDomain, shardOf } from '../../src/routing/hash.ts';

const bounds = { oldest: 1_000_000, newest: 2_000_000, retainHours: 24, maxFuture: 300 };
const run = (text: string, format: 'json' | 'ndjson' = 'json', shards = 1) => validate(decode(text, format), bounds, shards);

/** A part's entries as [domain, count, minute]. */
function entriesOf(part: ShardPart | undefined): [string, number, number][] {
  if (!part) return [];
  const view = viewPart(part);
  const names = Buffer.from(view.names);
  return Array.from({ length: part.entries }, (_, i) => {
    const domain = names.toString('utf8', i === 0 ? 0 : view.nameEnds[i - 1], view.nameEnds[i]);
    assert.equal(view.hashes[i], hashDomain(domain), `the hash travels with ${domain}`);
    return [domain, view.counts[i], view.minutes[i]];
  });
}
const domainsOf = (text: string) => entriesOf(run(text).parts[0]).map(([d]) => d);

function rejects(text: string, code: string, details: Record<string, unknown> = {}, format: 'json' | 'ndjson' = 'json') {
  assert.throws(
    () => run(text, format),
    (err: unknown) => {
      assert.ok(err instanceof TopTallyError, String(err));
      assert.equal(err.code, code, `${text}: ${err.message}`);
      for (const [k, v] of Object.entries(details)) assert.equal(err.details[k], v, `${text}: ${k}`);
      return true;
    },
  );
}

test('counters become entries in the part of the shard their domain hashes to, zero counts in none', () => {
  const text = '[{"timestamp": 1500000, "A": 3, "B": 4, "é.fr": 1}, {"timestamp": "1500061", "A": 2, "C": 0}]';
  const one = run(text);
  assert.deepEqual([one.counters, one.entries, one.minutes], [2, 5, [25000, 25001]]);
  assert.deepEqual(entriesOf(one.parts[0]), [['A', 3, 25000], ['B', 4, 25000], ['é.fr', 1, 25000], ['A', 2, 25001]]);
  const three = run(text, 'json', 3);
  const want: [string, number, number][][] = [[], [], []];
  for (const e of entriesOf(one.parts[0])) want[shardOf(hashDomain(e[0]), 3)].push(e);
  assert.deepEqual(three.parts.map(entriesOf), want);
  assert.ok(want.filter((w) => w.length > 0).length > 1, 'the domains spread over more than one shard');
});

test('a single object, an empty array and a counter with no domains are all valid', () => {
  assert.deepEqual([run('{"timestamp": 1500000}').counters, run('{"timestamp": 1500000}').entries], [1, 0]);
  assert.equal(run('[]').counters, 0);
  assert.equal(run('\n\n', 'ndjson').counters, 0);
});

test('timestamps: integers or digit strings, inside the bounds', () => {
  rejects('{"A": 1}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'timestamp' });
  rejects('{"timestamp": null}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'timestamp' });
  rejects('{"timestamp": 1500000.5}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'timestamp' });
  rejects('{"timestamp": "15e5"}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'timestamp' });
  rejects('{"timestamp": " 1500000"}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'timestamp' });
  rejects('{"timestamp": 999999}', 'TOPTALLY_ERR_TIMESTAMP_TOO_OLD', { key: 'timestamp' });
  rejects('{"timestamp": 2000001}', 'TOPTALLY_ERR_TIMESTAMP_IN_FUTURE', { key: 'timestamp' });
  assert.equal(run('{"timestamp": 1000000}').counters, 1);
  assert.equal(run('{"timestamp": "2000000"}').counters, 1);
});

test('counts: non-negative safe integers only; an object or array is a nested value', () => {
  for (const bad of ['-1', '1.5', '"2"', 'true', 'null', '9007199254740992', '1e400']) {
    rejects(`{"timestamp": 1500000, "A": ${bad}}`, 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'A' });
  }
  for (const nested of ['[1]', '{"n": 1}', '[]', '{}']) {
    rejects(`{"timestamp": 1500000, "A": ${nested}}`, 'TOPTALLY_ERR_NESTED_VALUE', { key: 'A' });
  }
  assert.deepEqual(entriesOf(run('{"timestamp": 1500000, "A": 9007199254740991}').parts[0]), [['A', 9007199254740991, 25000]]);
});

test('domains: non-empty, at most 255 UTF-8 bytes, well-formed; prototype names are ordinary', () => {
  rejects('{"timestamp": 1500000, "": 1}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: '' });
  rejects(`{"timestamp": 1500000, "${'a'.repeat(256)}": 1}`, 'TOPTALLY_ERR_DOMAIN_TOO_LONG', { limit: 255 });
  rejects(`{"timestamp": 1500000, "${'€'.repeat(86)}": 1}`, 'TOPTALLY_ERR_DOMAIN_TOO_LONG', { limit: 255 }, 'json');
  rejects('{"timestamp": 1500000, "\\udfff": 1}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: '\udfff' });
  assert.deepEqual(domainsOf(`{"timestamp": 1500000, "${'a'.repeat(255)}": 1}`), ['a'.repeat(255)]);
  assert.deepEqual(domainsOf(`{"timestamp": 1500000, "${'€'.repeat(85)}": 1}`), ['€'.repeat(85)]);
  const domains = domainsOf('{"timestamp": 1500000, "__proto__": 1, "constructor": 2, "hasOwnProperty": 3}');
  assert.deepEqual(domains, ['__proto__', 'constructor', 'hasOwnProperty']);
});

test('errors name the array index or NDJSON line', () => {
  rejects('[{"timestamp": 1500000}, {"timestamp": 1500000, "A": -1}]', 'TOPTALLY_ERR_INVALID_COUNTER', { index: 1, key: 'A' });
  rejects('[{"timestamp": 1500000}, "x"]', 'TOPTALLY_ERR_INVALID_COUNTER', { index: 1 });
  rejects('{"timestamp": 1500000}\n\n{"timestamp": 1}', 'TOPTALLY_ERR_TIMESTAMP_TOO_OLD', { line: 3 }, 'ndjson');
  rejects('{"timestamp": 1500000}\n[', 'TOPTALLY_ERR_MALFORMED_JSON', { line: 2 }, 'ndjson');
  rejects('', 'TOPTALLY_ERR_MALFORMED_JSON');
  rejects('{"timestamp": 15', 'TOPTALLY_ERR_MALFORMED_JSON');
  rejects('"text"', 'TOPTALLY_ERR_INVALID_COUNTER');
});

test('content types: JSON for none, json, text/plain and form posts; NDJSON by name; others refused', () => {
  for (const type of ['', 'application/json', 'Application/JSON; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded']) {
    assert.equal(formatOf(type), 'json', type);
  }
  assert.equal(formatOf('application/x-ndjson'), 'ndjson');
  assert.throws(() => formatOf('multipart/form-data; boundary=x'), { code: 'TOPTALLY_ERR_UNSUPPORTED_MEDIA_TYPE' });
});

test('the request limits are configurable, each with its own code and the limit that was passed', () => {
  const limits = { counters: 2, domains: 3, domainBytes: 4 };
  const check = (text: string) => validate(decode(text, 'json'), bounds, 1, limits);
  const refused = (text: string, code: string, details: Record<string, unknown>) =>
    assert.throws(() => check(text), (err: TopTallyError) => {
      assert.equal(err.code, code, err.message);
      for (const [k, v] of Object.entries(details)) assert.equal(err.details[k], v, k);
      return true;
    });
  assert.equal(check('[{"timestamp": 1500000}, {"timestamp": 1500000}]').counters, 2);
  refused('[{"timestamp": 1500000}, {"timestamp": 1500000}, {"timestamp": 1500000}]', 'TOPTALLY_ERR_TOO_MANY_COUNTERS', { limit: 2 });
  assert.equal(check('{"timestamp": 1500000, "a": 1, "b": 1, "c": 1}').entries, 3);
  refused('[{"timestamp": 1500000}, {"timestamp": 1500000, "a": 1, "b": 1, "c": 1, "d": 1}]', 'TOPTALLY_ERR_TOO_MANY_DOMAINS', { limit: 3, index: 1 });
  const counted = new Map<unknown, unknown>([['timestamp', 1500000], ['a', 1], ['b', 1], ['c', 1], ['d', 1]]);
  assert.throws(() => validate({ items: [counted], where: () => ({}) }, bounds, 1, limits), { code: 'TOPTALLY_ERR_TOO_MANY_DOMAINS' });
  assert.equal(check('{"timestamp": 1500000, "abcd": 1, "é": 1}').entries, 2);
  refused('{"timestamp": 1500000, "abcde": 1}', 'TOPTALLY_ERR_DOMAIN_TOO_LONG', { limit: 4, key: 'abcde' });
  refused('{"timestamp": 1500000, "éé€": 1}', 'TOPTALLY_ERR_DOMAIN_TOO_LONG', { limit: 4 });
});

test('a refused timestamp is shown in ISO form beside the bound, the retention in words and the flag that moves it', () => {
  const message = (text: string) => {
    try {
      run(text);
    } catch (err) {
      return (err as Error).message;
    }
    assert.fail(`${text} was accepted`);
  };
  assert.equal(
    message('{"timestamp": 999999, "A": 1}'),
    'timestamp 999999 (1970-01-12T13:46:39Z) is older than the retention: the open hour and the 24 closed hours before it ' +
      'are kept, so the oldest accepted is 1000000 (1970-01-12T13:46:40Z); --retain-hours keeps more',
  );
  assert.equal(
    message('{"timestamp": "2000001", "A": 1}'),
    "timestamp 2000001 (1970-01-24T03:33:21Z) is more than 300 seconds ahead of the server's clock, so after the newest " +
      'accepted, 2000000 (1970-01-24T03:33:20Z); --max-future allows more',
  );
});
