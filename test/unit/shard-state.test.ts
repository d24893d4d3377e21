import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PartBuilder, viewPart, type ShardPart } from '../../src/protocol/shard-part.ts';
import { hashDomain } from '../../src/routing/hash.ts';
import { CountTable } from '../../workers/count-table.ts';
import { ShardState } from '../../workers/shard-state.ts';
import { topK } from '../../workers/top-k.ts';
import { mulberry32 } from '../helpers/random.ts';

const M = 26_801_709; // a minute index: 2020-12-16T07:09Z, in hour 446695
const H = Math.floor(M / 60);

function columns(entries: [string, number, number][]): ShardPart {
  const builder = new PartBuilder();
  for (const [domain, count, minute] of entries) builder.add(domain, hashDomain(domain), count, minute);
  return builder.finish();
}

test('counts add up per minute and per hour, each window on its own', () => {
  const state = new ShardState();
  assert.equal(state.apply(columns([['a', 3, M], ['b', 4, M], ['a', 2, M + 1], ['c', 1, M + 60]])), 4);
  assert.deepEqual(state.top('minute', M, 10), { domains: ['b', 'a'], counts: [4, 3], total: 7, size: 2 });
  assert.deepEqual(state.top('minute', M + 1, 10), { domains: ['a'], counts: [2], total: 2, size: 1 });
  assert.deepEqual(state.top('hour', H, 10), { domains: ['a', 'b'], counts: [5, 4], total: 9, size: 2 });
  assert.deepEqual(state.top('hour', H + 1, 10), { domains: ['c'], counts: [1], total: 1, size: 1 });
  assert.deepEqual(state.top('minute', M - 1, 10), { domains: [], counts: [], total: 0, size: 0 });
  const census = state.census();
  assert.deepEqual([census.domains, census.entries], [3, 7], '3 domains; 4 minute and 3 hour entries');
  assert.ok(census.bytes > 0);
});

test('zero counts are taken but create no entry', () => {
  const state = new ShardState();
  state.apply(columns([['a', 0, M]]));
  assert.deepEqual(state.top('minute', M, 10).size, 0);
  assert.equal(state.census().domains, 0);
});

test('a cached answer is replaced when a late counter changes the window, and serves smaller limits', () => {
  const state = new ShardState();
  state.apply(columns([['a', 3, M], ['b', 2, M], ['c', 1, M]]));
  assert.deepEqual(state.top('minute', M, 1).domains, ['a']);
  assert.deepEqual(state.top('minute', M, 3).domains, ['a', 'b', 'c'], 'a larger limit is recomputed');
  assert.deepEqual(state.top('minute', M, 2).domains, ['a', 'b'], 'a smaller one is cut from the cache');
  state.apply(columns([['c', 5, M]]));
  assert.deepEqual(state.top('minute', M, 2), { domains: ['c', 'a'], counts: [6, 3], total: 11, size: 3 });
});

test('retention drops old windows, frees their domains and ignores counters for them', () => {
  const state = new ShardState();
  state.apply(columns([['old', 1, M - 120], ['both', 1, M - 120], ['both', 1, M], ['new', 1, M]]));
  assert.equal(state.census().domains, 3);
  state.retain(M - 60, H - 2);
  assert.equal(state.top('minute', M - 120, 10).size, 0);
  assert.equal(state.top('hour', H - 2, 10).size, 2, 'the hour is retained longer than the minute');
  state.retain(M, H);
  assert.equal(state.top('hour', H - 2, 10).size, 0);
  assert.equal(state.census().domains, 2, '"old" left memory with its last window');
  state.apply(columns([['late', 5, M - 120]]));
  assert.equal(state.census().domains, 2, 'a counter for dropped windows is not interned');
  state.apply(columns([['late', 5, M - 1]]));
  assert.equal(state.top('minute', M - 1, 10).size, 0, 'its minute is gone...');
  assert.deepEqual(state.top('hour', H, 10).domains, ['late', 'both', 'new'], '...its hour is not');
  assert.deepEqual(state.top('minute', M, 10).domains, ['both', 'new']);
});

test('top-k with a heap equals a full sort, ties by domain, for many random tables', () => {
  const rand = mulberry32(7);
  for (let round = 0; round < 50; round++) {
    const table = new CountTable(4);
    const names = Array.from({ length: 1 + Math.floor(rand() * 300) }, (_, i) => `n${Math.floor(rand() * 1e6)}-${i}`);
    const truth = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const id = Math.floor(rand() * names.length);
      const count = Math.floor(rand() * 5);
      table.add(id, count);
      truth.set(names[id], (truth.get(names[id]) ?? 0) + count);
    }
    const k = 1 + Math.floor(rand() * 40);
    const sorted = [...truth].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, k);
    const got = topK(table, k, { name: (id) => names[id], compare: (a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0) });
    assert.deepEqual(
      got.domains.map((d, i) => [d, got.counts[i]]),
      sorted,
      `round ${round}`,
    );
    assert.equal(got.size, truth.size);
    assert.equal(got.total, [...truth.values()].reduce((a, b) => a + b, 0));
  }
});

test('the count table grows and keeps every count', () => {
  const table = new CountTable(2);
  for (let id = 0; id < 10_000; id++) table.add(id * 7919, id);
  for (let id = 0; id < 10_000; id++) table.add(id * 7919, 1);
  assert.equal(table.size, 10_000);
  assert.equal(table.get(5000 * 7919), 5001);
  assert.equal(table.get(3), 0);
});


/** A drain's entries as "minute domain" → delta. */
function drained(state: ShardState): { fresh: boolean; deltas: Map<string, number> } {
  const { fresh, parts } = state.drain();
  const deltas = new Map<string, number>();
  for (const part of parts) {
    const view = viewPart(part);
    const names = Buffer.from(view.names.buffer, view.names.byteOffset, view.names.byteLength);
    for (let i = 0, start = 0; i < view.entries; start = view.nameEnds[i++]) {
      const key = `${view.minutes[i]} ${names.toString('utf8', start, view.nameEnds[i])}`;
      assert.equal(view.hashes[i], hashDomain(names.toString('utf8', start, view.nameEnds[i])));
      deltas.set(key, (deltas.get(key) ?? 0) + view.counts[i]);
    }
  }
  return { fresh, deltas };
}

test('a drain says fresh the first time, then hands over what was applied since the last one per (minute, domain), once', () => {
  const state = new ShardState();
  state.apply(columns([['a', 3, M]]));
  assert.deepEqual(drained(state), { fresh: true, deltas: new Map() }, 'nothing kept before the first drain');
  state.apply(columns([['a', 3, M], ['b', 4, M], ['a', 2, M], ['😀', 1, M + 1]]));
  assert.deepEqual(drained(state), { fresh: false, deltas: new Map([[`${M} a`, 5], [`${M} b`, 4], [`${M + 1} 😀`, 1]]) });
  assert.deepEqual(drained(state), { fresh: false, deltas: new Map() }, 'handed over once');
  // A minute past the retention whose hour is still kept goes on (to the hour); one past both does not.
  state.retain(M + 1, H);
  state.apply(columns([['c', 7, M], ['d', 1, M - 60]]));
  assert.deepEqual(drained(state).deltas, new Map([[`${M} c`, 7]]));
  assert.deepEqual(state.top('hour', H, 10).domains, ['a', 'c', 'b', '😀']);
});
