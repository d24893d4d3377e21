// Reads a window's exact top-N from Redis: the candidates of every partition, one call per master,
// merged here. Per partition, tt_top returns its top N by score and, when members tied at the N-th
// score were cut off, the first N of them in byte order: ZREVRANGE orders ties backwards, so the
// members it returns at the boundary score may not be the ones local mode would pick. Every member
// above the boundary score is among the N; the N smallest at the boundary are in the tie list; so
// the global top N is within the union, which the merge sorts as local mode does (members are
// CESU-8, whose byte order is local mode's order, see cesu8.ts).

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

  /**
   * Each partition's candidates, in the shape the shards answer (query/merge.ts merges them): one
   * tt_top_many call per master for the partitions it holds. When the slot map is stale (a slot
   * moved, a failover) that call fails, and its partitions are read one by one, which node-redis
   * routes by their own slots.
   */
  top(kind: WindowKind, index: number, limit: number): Promise<TopEntries[]> {
    const byMaster = new Map<string, number[]>();
    this.#tags.forEach((tag, p) => {
      const { address } = this.#link.masterOf(windowKey(tag, kind, index));
      byMaster.set(address, [...(byMaster.get(address) ?? []), p]);
    });
    const entries = new Array<TopEntries>(this.#tags.length);
    return Promise.all(
      [...byMaster.values()].map(async (partitions) => {
        const replies = await this.#many(partitions, kind, index, limit).catch((err: Error) => {
          if (!misrouted(err)) throw err;
          return Promise.all(partitions.map((p) => this.#one(p, kind, index, limit)));
        });
        partitions.forEach((p, i) => (entries[p] = candidates(replies[i])));
      }),
    ).then(() => entries);
  }

  async #many(partitions: number[], kind: WindowKind, index: number, limit: number): Promise<TopReply[]> {
    const first = windowKey(this.#tags[partitions[0]], kind, index);
    const keys = partitions.flatMap((p) => [windowKey(this.#tags[p], kind, index), totalKey(this.#tags[p], kind, index)]);
    return (await this.#link.call(first, ['FCALL_RO', 'tt_top_many', '1', first, String(limit), ...keys])) as TopReply[];
  }

  async #one(p: number, kind: WindowKind, index: number, limit: number): Promise<TopReply> {
    const zset = windowKey(this.#tags[p], kind, index);
    return (await this.#link.call(zset, ['FCALL_RO', 'tt_top', '2', zset, totalKey(this.#tags[p], kind, index), String(limit)])) as TopReply;
  }
}

/** Whether a call failed because the master no longer serves every slot named (or lacks tt_top_many). */
function misrouted(err: Error): boolean {
  return /non local key|MOVED|ASK|CROSSSLOT|TRYAGAIN|function not found/i.test(err.message);
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
