// Gathers the batches the flusher sends together (those of one tick, or of one drain) into one
// tt_flush call per master (library.ts). Besides its pairs, each call costs Redis a share of its
// own: the command, the function's start, its transaction in the AOF and to the replicas. So with
// P partitions over M masters a flush makes about M calls instead of P. A call that names a
// partition its master no longer serves (the slot map changed) fails with nothing written; its
// batches are then sent one per call, which node-redis routes by each one's own slot.

import { watermarkKey } from './keys.ts';
import { misrouted, type Arg, type RedisLink } from './redis-link.ts';

/**
 * Entries after which a call takes no more batches (the next goes in another): bounds one call's
 * time in Redis, about a microsecond or two per entry, while a backlog drains.
 */
export const CALL_ENTRIES = 6000;

/** A batch's outcome in Redis (see library.ts) and the partition's watermark there. */
export type FlushOutcome = ['ok' | 'dup' | 'gap', number];

interface Batch {
  tag: string;
  args: Arg[];
  entries: number;
  resolve: (outcome: FlushOutcome) => void;
  reject: (err: Error) => void;
}

export class FlushCalls {
  readonly #link: RedisLink;
  readonly #nodeId: string;
  #waiting: Batch[] = [];

  constructor(link: RedisLink, nodeId: string) {
    this.#link = link;
    this.#nodeId = nodeId;
  }

  /**
   * Sends partition `tag`'s batch (`args` from flushArgs, `entries` its size) in one call with the
   * others sent before this run of the event loop yields.
   */
  send(tag: string, args: Arg[], entries: number): Promise<FlushOutcome> {
    return new Promise((resolve, reject) => {
      if (this.#waiting.length === 0) queueMicrotask(() => this.#sendWaiting());
      this.#waiting.push({ tag, args, entries, resolve, reject });
    });
  }

  #sendWaiting(): void {
    const byMaster = new Map<string, { batches: Batch[]; entries: number }>();
    for (const batch of this.#waiting) {
      const { address } = this.#link.masterOf(watermarkKey(batch.tag));
      let call = byMaster.get(address);
      if (call && call.entries + batch.entries > CALL_ENTRIES) {
        void this.#call(call.batches);
        call = undefined;
      }
      if (!call) byMaster.set(address, (call = { batches: [], entries: 0 }));
      call.batches.push(batch);
      call.entries += batch.entries;
    }
    this.#waiting = [];
    for (const call of byMaster.values()) void this.#call(call.batches);
  }

  async #call(batches: Batch[]): Promise<void> {
    const route = watermarkKey(batches[0].tag);
    let reply: Buffer[];
    try {
      reply = (await this.#link.call(route, ['FCALL', 'tt_flush', '1', route, this.#nodeId, ...batches.flatMap((b) => b.args)])) as Buffer[];
    } catch (err) {
      if (batches.length > 1 && misrouted(err as Error)) {
        for (const batch of batches) void this.#call([batch]);
      } else {
        for (const batch of batches) batch.reject(err as Error);
      }
      return;
    }
    batches.forEach((batch, i) => batch.resolve([String(reply[2 * i]) as FlushOutcome[0], Number(String(reply[2 * i + 1]))]));
  }
}
