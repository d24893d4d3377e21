import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TopEntries } from '../../src/protocol/messages.ts';
import { merge } from '../../src/query/merge.ts';

const part = (entries: [string, number][], total: number, size: number): TopEntries => ({
  domains: entries.map(([d]) => d),
  counts: entries.map(([, c]) => c),
  total,
  size,
});

test('merging interleaves shards by count, breaks ties by domain, sums totals and sizes', () => {
  const merged = merge(
    [part([['c', 9], ['a', 5], ['z', 1]], 20, 5), part([['b', 5], ['y', 7]], 12, 2), part([], 0, 0)],
    4,
  );
  assert.deepEqual(merged, {
    top: [
      { domain: 'c', count: 9 },
      { domain: 'y', count: 7 },
      { domain: 'a', count: 5 },
      { domain: 'b', count: 5 },
    ],
    total: 32,
    domains: 7,
  });
});

test('fewer domains than the limit gives them all; limit 1 gives the best', () => {
  assert.equal(merge([part([['a', 1]], 1, 1), part([['b', 2]], 2, 1)], 10).top.length, 2);
  assert.deepEqual(merge([part([['a', 1]], 1, 1), part([['b', 2]], 2, 1)], 1).top, [{ domain: 'b', count: 2 }]);
});

test('ties use code-unit order: upper case before lower case, shorter prefix first', () => {
  const merged = merge([part([['ab', 3], ['B', 3]], 6, 2), part([['a', 3], ['Z', 3]], 6, 2)], 10);
  assert.deepEqual(merged.top.map((e) => e.domain), ['B', 'Z', 'a', 'ab']);
});
