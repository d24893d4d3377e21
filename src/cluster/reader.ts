// Reads a window's exact top-N from Redis: one tt_top call per partition (the calls to one master
// go out together), merged here. Per partition, tt_top returns its top N by score and, when it has
// N or more members, the first N members (in byte order) tied at the N-th score: ZREVRANGE orders
// ties backwards, so the members it returns at the boundary score may not be the ones local mode
// would pick. Every member above the boundary score is among the N; the N smallest at the boundary
// are in the tie list; so the global top N is within the union, which the merge sorts as local mode
// does (members are CESU-8, whose byte order is local mode's order, see cesu8.ts).

import type { TopEntries } from '../protocol/messages.ts';
import type { WindowKind } from '../window.ts';
import { decodeCesu8 } from './cesu8.ts';
import { totalKey, windowKey } from './keys.ts';
import type { RedisLink } from './redis-link.ts';

type TopReply = [ranked: Buffer[], ties: Buffer[], size: number, total: Buffer];

export class ClusterReader {
  readonly #link: RedisLink;
  readonly #tags: readonly string[];

  constructor(link: RedisLink, tags: readonly string[]) {
    this.#link = link;
    this.#tags = tags;
  }

  /** Each partition's candidates, in the shape the shards answer (query/merge.ts merges them). */
  top(kind: WindowKind, index: number, limit: number): Promise<TopEntries[]> {
    return Promise.all(
      this.#tags.map(async (tag) => {
        const zset = windowKey(tag, kind, index);
        const reply = (await this.#link.call(zset, ['FCALL_RO', 'tt_top', '2', zset, totalKey(tag, kind, index), String(limit)])) as TopReply;
        return candidates(reply);
      }),
    );
  }
}

function candidates([ranked, ties, size, total]: TopReply): TopEntries {
  const domains: string[] = [];
  const counts: number[] = [];
  const boundary = ties.length > 0 ? Number(ranked[ranked.length - 1]) : -Infinity;
  for (let i = 0; i < ranked.length; i += 2) {
    const count = Number(ranked[i + 1]);
    if (count === boundary) continue; // the tie list has the right ones
    domains.push(decodeCesu8(ranked[i]));
    counts.push(count);
  }
  for (const member of ties) {
    domains.push(decodeCesu8(member));
    counts.push(boundary);
  }
  return { domains, counts, total: Number(total), size: Number(size) };
}
