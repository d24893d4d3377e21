// Top-k of a count table with a bounded heap: O(n log k) and O(k) memory, instead of sorting n.
// Order: count descending, then domain ascending (code-unit order), so answers are deterministic.

import type { TopEntries } from '../src/protocol/messages.ts';
import type { CountTable } from './count-table.ts';

/** True when (countA, nameA) ranks before (countB, nameB). */
export function ranksBefore(countA: number, nameA: string, countB: number, nameB: string): boolean {
  return countA > countB || (countA === countB && nameA < nameB);
}

export function topK(table: CountTable, k: number, nameOf: (id: number) => string): TopEntries {
  // A min-heap on rank: the root is the worst of the best k seen so far.
  const heapNames: string[] = [];
  const heapCounts: number[] = [];
  const worse = (i: number, j: number): boolean =>
    ranksBefore(heapCounts[j], heapNames[j], heapCounts[i], heapNames[i]);
  const swap = (i: number, j: number): void => {
    [heapNames[i], heapNames[j]] = [heapNames[j], heapNames[i]];
    [heapCounts[i], heapCounts[j]] = [heapCounts[j], heapCounts[i]];
  };
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heapNames.length && worse(l, m)) m = l;
      if (r < heapNames.length && worse(r, m)) m = r;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };

  table.forEach((id, count) => {
    if (heapNames.length < k) {
      heapNames.push(nameOf(id));
      heapCounts.push(count);
      for (let i = heapNames.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1;
        if (!worse(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
      return;
    }
    if (k === 0 || count < heapCounts[0]) return;
    const name = nameOf(id);
    if (!ranksBefore(count, name, heapCounts[0], heapNames[0])) return;
    heapNames[0] = name;
    heapCounts[0] = count;
    siftDown(0);
  });

  const order = heapNames.map((_, i) => i);
  order.sort((a, b) => (ranksBefore(heapCounts[a], heapNames[a], heapCounts[b], heapNames[b]) ? -1 : 1));
  return {
    domains: order.map((i) => heapNames[i]),
    counts: order.map((i) => heapCounts[i]),
    total: table.total,
    size: table.size,
  };
}
