import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PartBuilder, viewPart, type ShardPart } from '../../src/protocol/shard-part.ts';
import { hashDomain } from '../../src/routing/hash.ts';
import { ShardState } from '../../workers/shard-state.ts';

function part(entries: [string, number, number][]): ShardPart {
  const builder = new PartBuilder();
  for (const [domain, count, minute] of entries) builder.add(domain, hashDomain(domain), count, minute);
  return builder.finish();
}

/** A window's exported entries as sorted [domain, count]. */
function exported(state: ShardState, kind: 'minute' | 'hour', index: number, maxEntries?: number): [string, number][] {
  const out: [string, number][] = [];
  for (const p of state.exportWindow(kind, index, maxEntries)) {
    const { entries, names, nameEnds, counts, hashes } = viewPart(p);
    for (let i = 0; i < entries; i++) {
      const name = Buffer.from(names.subarray(i === 0 ? 0 : nameEnds[i - 1], nameEnds[i])).toString();
      assert.equal(hashes[i], hashDomain(name));
      out.push([name, counts[i]]);
    }
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

test('a window exported as parts and loaded into a fresh shard answers the same', () => {
  const source = new ShardState();
  // minutes 60 and 61 are in hour 1; minute 120 is in hour 2
  source.apply(part([['a', 3, 60], ['__proto__', 4, 60], ['a', 5, 61], ['b', 1, 120], ['é', 2, 61]]));
  assert.deepEqual(exported(source, 'minute', 60), [['__proto__', 4], ['a', 3]]);
  assert.deepEqual(exported(source, 'hour', 1), [['__proto__', 4], ['a', 8], ['é', 2]]);
  assert.deepEqual(exported(source, 'minute', 59), []);
  assert.equal(source.exportWindow('hour', 1, 2).length, 2, 'parts of at most 2 entries');

  const copy = new ShardState();
  const windows = [['minute', 60], ['minute', 61], ['minute', 120], ['hour', 1], ['hour', 2]] as const;
  for (const [kind, index] of windows) {
    for (const p of source.exportWindow(kind, index, 2)) copy.load(kind, index, p);
  }
  for (const [kind, index] of windows) assert.deepEqual(copy.top(kind, index, 10), source.top(kind, index, 10), `${kind} ${index}`);
});

test('loading an hour touches that hour only, and a window older than the retention takes nothing', () => {
  const state = new ShardState();
  state.load('hour', 1, part([['a', 7, 0]]));
  assert.deepEqual(exported(state, 'hour', 1), [['a', 7]]);
  assert.deepEqual(exported(state, 'minute', 60), []);
  state.retain(100, 2);
  assert.equal(state.load('hour', 1, part([['a', 7, 0]])), 0);
  assert.deepEqual(exported(state, 'hour', 1), []);
  assert.equal(state.census().domains, 0);
});
