// Reads a window's exact top-N from Redis: one call per master, whose candidates are merged here.
// Per partition, the N best by score are certain; members tied at the N-th score are where Redis
// and local mode differ: ZREVRANGE orders ties backwards by bytes, so the members it returns at the
// boundary score may not be the ones local mode would pick. So tt_top (library.ts) returns members
// above the boundary with their scores, and members at it by name, the first N in byte order of
// every partition that has more; the merge sorts the union as local mode does (members are CESU-8,
// whose byte order is local mode's order, see cesu8.ts).

import type { TopEntries } from '../protocol/messages.ts';
import type { WindowKind } from '../window.ts';
import { decodeCesu8 } from './cesu8.ts';
import { windowKey, windowSuffix } from './keys.ts';
import { misrouted, type RedisLink } from './redis-link.ts';

/** tt_top: members above the cut with their scores, members at the cut, the cut, the partitions' size and totals. */
type TopReply = [above: Buffer[], at: Buffer[], cut: Buffer, size: number, totals: Buffer[]];

export class ClusterReader {
  readonly #link: RedisLink;
  readonly #tags: readonly string[];
  /** Per partition, a key in its slot (every key of a partition carries its tag). */
  readonly #routes: readonly string[];

  constructor(link: RedisLink, tags: readonly string[]) {
    this.#link = link;
    this.#tags = tags;
    this.#routes = tags.map((tag) => `{${tag}}`);
  }

  /**
   * Candidates that hold the window's top N, in the shape the shards answer (query/merge.ts merges
   * them): one tt_top call per master for the partitions it holds. When the slot map is stale (a
   * slot moved, a failover) that call fails, and its partitions are read one by one, which
   * node-redis routes by their own slots.
   */
  top(kind: WindowKind, index: number, limit: number): Promise<TopEntries[]> {
    const byMaster = new Map<string, number[]>();
    this.#routes.forEach((route, p) => {
      const { address } = this.#link.masterOf(route);
      byMaster.set(address, [...(byMaster.get(address) ?? []), p]);
    });
    return Promise.all(
      [...byMaster.values()].map((partitions) =>
        this.#read(partitions, kind, index, limit).then(
          (entries) => [entries],
          (err: Error) => {
            if (!misrouted(err)) throw err;
            return Promise.all(partitions.map((p) => this.#read([p], kind, index, limit)));
          },
        ),
      ),
    ).then((lists) => lists.flat());
  }

  async #read(partitions: number[], kind: WindowKind, index: number, limit: number): Promise<TopEntries> {
    const route = windowKey(this.#tags[partitions[0]], kind, index);
    const tags = partitions.map((p) => this.#tags[p]).join(',');
    return candidates((await this.#link.call(route, ['FCALL_RO', 'tt_top', '1', route, String(limit), windowSuffix(kind, index), tags])) as TopReply);
  }
}

function candidates([above, at, cut, size, totals]: TopReply): TopEntries {
  const domains: string[] = [];
  const counts: number[] = [];
  for (let i = 0; i < above.length; i += 2) {
    domains.push(decodeCesu8(above[i]));
    counts.push(Number(above[i + 1]));
  }
  const boundary = Number(cut);
  for (const member of at) {
    domains.push(decodeCesu8(member));
    counts.push(boundary);
  }
  let total = 0;
  for (const t of totals) total += Number(t);
  return { domains, counts, total, size: Number(size) };
}
