// Top-k of a count table with a bounded heap: O(n log k) and O(k) memory, instead of sorting n.
// Order: count descending, then domain ascending (code-unit order), so answers are deterministic.

import type { TopEntries } from '../src/protocol/messages.ts';
import type { CountTable } from './count-table.ts';

export interface Names {
  name(id: number): string;
  /** Negative when a's name sorts before b's. */
  compare(a: number, b: number): number;
}

export function topK(table: CountTable, k: number, names: Names): TopEntries {
  // A min-heap on rank: the root is the worst of the best k seen so far.
  const ids: number[] = [];
  const counts: number[] = [];
  /** True when heap entry i ranks after heap entry j. */
  const worse = (i: number, j: number): boolean =>
    counts[i] < counts[j] || (counts[i] === counts[j] && names.compare(ids[i], ids[j]) > 0);
  const swap = (i: number, j: number): void => {
    [ids[i], ids[j]] = [ids[j], ids[i]];
    [counts[i], counts[j]] = [counts[j], counts[i]];
  };

  table.forEach((id, count) => {
    if (ids.length < k) {
      ids.push(id);
      counts.push(count);
      for (let i = ids.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1;
        if (!worse(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
      return;
    }
    if (k === 0 || count < counts[0] || (count === counts[0] && names.compare(id, ids[0]) > 0)) return;
    ids[0] = id;
    counts[0] = count;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < ids.length && worse(l, m)) m = l;
      if (r < ids.length && worse(r, m)) m = r;
      if (m === i) break;
      swap(i, m);
      i = m;
    }
  });

  const order = ids.map((_, i) => i).sort((a, b) => (worse(a, b) ? 1 : -1));
  return {
    domains: order.map((i) => names.name(ids[i])),
    counts: order.map((i) => counts[i]),
    total: table.total,
    size: table.size,
  };
}
