import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ShardState } from '../../workers/shard-state.ts';

const columns = (entries: [string, number, number][]) => ({
  domains: entries.map((e) => e[0]),
  counts: new Float64Array(entries.map((e) => e[1])),
  minutes: new Int32Array(entries.map((e) => e[2])),
});

function entriesOf(state: ShardState, kind: 'minute' | 'hour', index: number): [string, number][] {
  const out: [string, number][] = [];
  state.forEachEntry(kind, index, (domain, count) => out.push([domain, count]));
  return out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

test('a window exported entry by entry and loaded into a fresh shard answers the same', () => {
  const source = new ShardState();
  // minutes 60 and 61 are in hour 1; minute 120 is in hour 2
  source.apply(columns([['a', 3, 60], ['__proto__', 4, 60], ['a', 5, 61], ['b', 1, 120]]));
  assert.deepEqual(entriesOf(source, 'minute', 60), [['__proto__', 4], ['a', 3]]);
  assert.deepEqual(entriesOf(source, 'hour', 1), [['__proto__', 4], ['a', 8]]);
  assert.deepEqual(entriesOf(source, 'minute', 59), []);

  const copy = new ShardState();
  for (const [kind, index] of [['minute', 60], ['minute', 61], ['minute', 120], ['hour', 1], ['hour', 2]] as const) {
    const entries = entriesOf(source, kind, index);
    copy.load(kind, index, entries.map((e) => e[0]), entries.map((e) => e[1]));
  }
  for (const [kind, index] of [['minute', 60], ['minute', 61], ['minute', 120], ['hour', 1], ['hour', 2]] as const) {
    assert.deepEqual(copy.top(kind, index, 10), source.top(kind, index, 10), `${kind} ${index}`);
  }
});

test('loading an hour touches that hour only, and a window older than the retention takes nothing', () => {
  const state = new ShardState();
  state.load('hour', 1, ['a'], [7]);
  assert.deepEqual(entriesOf(state, 'hour', 1), [['a', 7]]);
  assert.deepEqual(entriesOf(state, 'minute', 60), []);
  state.retain(100, 2);
  assert.equal(state.load('hour', 1, ['a'], [7]), 0);
  assert.deepEqual(entriesOf(state, 'hour', 1), []);
  assert.equal(state.domains, 0);
});
