// Merging the shards' partial top-N. Exact: every domain lives in one shard, so the global top-N is
// within the union of the shards' top-N lists.

import type { TopEntries } from '../protocol/messages.ts';

export interface RankedDomain {
  domain: string;
  count: number;
}

export interface MergedTop {
  top: RankedDomain[];
  /** Sum of all counts in the window. */
  total: number;
  /** Distinct domains in the window. */
  domains: number;
}

export function compareRanked(a: RankedDomain, b: RankedDomain): number {
  if (a.count !== b.count) return b.count - a.count;
  return a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0;
}

export function merge(partials: readonly TopEntries[], limit: number): MergedTop {
  const all: RankedDomain[] = [];
  let total = 0;
  let domains = 0;
  for (const part of partials) {
    total += part.total;
    domains += part.size;
    for (let i = 0; i < part.domains.length; i++) all.push({ domain: part.domains[i], count: part.counts[i] });
  }
  all.sort(compareRanked);
  if (all.length > limit) all.length = limit;
  return { top: all, total, domains };
}
