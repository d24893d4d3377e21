// N shard actors behind one face: ingest goes to the owners of a batch's domains, queries ask all.
// A worker that dies is replaced: until its successor is up (and its state rebuilt by the `recover`
// step), ingest for its domains and every query are answered with 503, never silently dropped.
// Ingest is admitted against a bound on what each shard owes, so overload is a 503, not a queue.

import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { TopTallyError } from '../errors.ts';
import type { Drained, ExportedWindow, TopEntries, WindowTotal } from '../protocol/messages.ts';
import { partSize } from '../protocol/shard-part.ts';
import type { Partitioned } from '../routing/partition.ts';
import type { WindowKind } from '../window.ts';
import { ShardHandle, type ShardWorkerOptions } from './shard-handle.ts';

/** Restarts after the first are spaced out, so a worker that cannot start does not spin a core. */
const RESTART_DELAY_MS = 100;
const RESTART_DELAY_MAX_MS = 5000;

export interface PoolOptions {
  /** Told when a worker died; its replacement is being started. */
  onExit?: (shard: number, cause: Error) => void;
  /**
   * Runs on a restarted shard before it takes traffic again, to rebuild its state (from the data
   * directory); resolves true when it did. Without it, a restarted shard starts empty.
   */
  recover?: (shard: number, handle: ShardHandle) => Promise<boolean>;
  /** Counter bytes a shard may owe before ingest for it is refused with 503 (default: no bound). */
  maxBacklogBytes?: number;
  worker?: ShardWorkerOptions;
}

/**
 * The share of maxBacklogBytes a shard may owe while early acknowledgements still go out at once;
 * past it they wait for the shard, so a client that waits for its acks slows down with the shards
 * long before it would meet a 503.
 */
const EARLY_ACK_SHARE = 1 / 16;

const ACKED: Promise<void> = Promise.resolve();

/** A batch let in by admit(): its bytes count against the bound until it is applied or released. */
export interface Admission {
  /** Hands the batch to its shards; resolves as ingest() does. */
  apply(early: boolean): Promise<void>;
  /** Gives the reservation back when the batch will not be applied (the journal refused it). */
  release(): void;
}

export class ShardPool extends EventEmitter<{
  /** A replacement worker took over; `recovered` says whether a recover step rebuilt its state. */
  restarted: [shard: number, recovered: boolean];
  restartFailed: [shard: number, cause: Error];
}> {
  readonly #shards: ShardHandle[];
  readonly #options: PoolOptions;
  #recover: PoolOptions['recover'];
  readonly #restarts = new Set<Promise<void>>();
  /** Bytes admitted for each shard and not yet handed to it (they wait on the journal). */
  readonly #reserved: number[];
  /** Whether each shard's last replacement had its state rebuilt. */
  readonly #recovered: boolean[];
  /** Called when a shard's reservations are all settled (see #settled). */
  readonly #onSettled = new Map<number, () => void>();
  #retained: [oldestMinute: number, oldestHour: number] | null = null;
  readonly #stopping = new AbortController();
  #peakBacklog = 0;

  private constructor(shards: ShardHandle[], options: PoolOptions) {
    super();
    this.#shards = shards;
    this.#options = options;
    this.#recover = options.recover;
    this.#reserved = shards.map(() => 0);
    this.#recovered = shards.map(() => true);
    for (const shard of shards) this.#watch(shard);
  }

  static async start(count: number, options: PoolOptions = {}): Promise<ShardPool> {
    const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => ShardHandle.start(i, options.worker)));
    const failed = started.find((r) => r.status === 'rejected');
    const shards = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (failed) {
      await Promise.all(shards.map((shard) => shard.terminate()));
      throw failed.reason;
    }
    return new ShardPool(shards, options);
  }

  /** Replaces the recover step (set once what it rebuilds from is open). */
  recoverWith(recover: NonNullable<PoolOptions['recover']>): void {
    this.#recover = recover;
  }

  /** The current handle of each shard (a restart replaces one). */
  get shards(): readonly ShardHandle[] {
    return this.#shards;
  }

  get size(): number {
    return this.#shards.length;
  }

  /** The most any shard has owed at once, in bytes. */
  get peakBacklogBytes(): number {
    return this.#peakBacklog;
  }

  /**
   * Throws a 503 when a shard holding part of the batch is down or owes more than the bound, else
   * reserves the batch's bytes. Called before a batch is recorded anywhere, so a refused batch leaves
   * no trace; what a shard owes counts batches admitted but still being journaled.
   */
  admit(batch: Partitioned): Admission {
    const { parts } = batch;
    const bound = this.#options.maxBacklogBytes ?? Infinity;
    for (let s = 0; s < parts.length; s++) {
      if (!parts[s]) continue;
      const shard = this.#shards[s];
      if (shard.failed) {
        throw new TopTallyError('TOPTALLY_ERR_SHARD_UNAVAILABLE', `Shard ${s} is restarting; try again shortly`, {
          shard: s,
          retryAfter: 1,
        });
      }
      const owed = shard.backlogBytes + this.#reserved[s];
      if (owed > bound) {
        throw new TopTallyError(
          'TOPTALLY_ERR_OVERLOADED',
          `Shard ${s} owes ${owed} bytes of counters, over ${bound} (--max-shard-backlog); try again shortly`,
          { shard: s, limit: bound, retryAfter: 1 },
        );
      }
    }
    // Taken now: a part's buffer is detached once it is sent to a thread.
    const bytes = parts.map((part) => (part ? partSize(part) : 0));
    this.#reserve(bytes, 1);
    let held = true;
    const release = (): void => {
      if (held) this.#reserve(bytes, -1);
      held = false;
    };
    return {
      apply: (early) => {
        release();
        return this.ingest(batch, early);
      },
      release,
    };
  }

  /**
   * Resolves once shard `index` is served by a live worker again: true when its state was rebuilt
   * (so it holds every batch handed to the worker that died), false when it starts empty or the
   * pool stops first.
   */
  restored(index: number): Promise<boolean> {
    if (!this.#shards[index].failed) return Promise.resolve(this.#recovered[index]);
    const { signal } = this.#stopping;
    return new Promise((resolve) => {
      const done = (recovered: boolean): void => {
        this.off('restarted', onRestart);
        signal.removeEventListener('abort', onStop);
        resolve(recovered);
      };
      const onRestart = (shard: number, recovered: boolean): void => {
        if (shard === index) done(recovered);
      };
      const onStop = (): void => done(false);
      this.on('restarted', onRestart);
      signal.addEventListener('abort', onStop);
    });
  }

  /**
   * Hands the batch to its shards and resolves once every one has applied it; with `early` (a query
   * is queued behind it all the same, and a worker that dies is rebuilt from the journal, or has
   * nothing to rebuild from), at once, unless a shard owes more than its share of the backlog bound.
   */
  ingest({ parts }: Pick<Partitioned, 'parts'>, early = false): Promise<void> {
    const ahead = this.#options.maxBacklogBytes === undefined ? Infinity : this.#options.maxBacklogBytes * EARLY_ACK_SHARE;
    let wait = !early;
    for (let s = 0; s < parts.length && !wait; s++) wait = parts[s] !== undefined && this.#shards[s].backlogBytes > ahead;
    if (!wait) {
      // Nobody waits for the shards: no promise per request. The batch that fails is handled once, by
      // its handle; a worker that dies with it, or fails to apply it (it is then ended), is rebuilt
      // from the journal, this batch included.
      for (let s = 0; s < parts.length; s++) {
        const part = parts[s];
        if (part) this.#shards[s].ingest(part, false);
      }
      this.#notePeak();
      return ACKED;
    }
    const applied: Promise<void>[] = [];
    for (let s = 0; s < parts.length; s++) {
      const part = parts[s];
      if (part) applied.push(this.#shards[s].ingest(part, wait));
    }
    this.#notePeak();
    return Promise.all(applied).then(() => undefined);
  }

  top(window: WindowKind, index: number, limit: number): Promise<TopEntries[]> {
    return Promise.all(this.#shards.map((shard) => shard.top(window, index, limit)));
  }

  /** Every shard's part of these windows; see ShardHandle.export for what it covers. */
  async export(windows: { window: WindowKind; index: number }[]): Promise<ExportedWindow[][]> {
    return Promise.all(this.#shards.map((shard) => shard.export(windows)));
  }

  /** Every shard's window totals, each shard's answers in one list. */
  totals(): Promise<WindowTotal[][]> {
    return Promise.all(this.#shards.map((shard) => shard.totals()));
  }

  /** Every shard's deltas since its last drain (see ShardHandle.drain). */
  drain(): Promise<Drained[]> {
    return Promise.all(this.#shards.map((shard) => shard.drain()));
  }

  retain(oldestMinute: number, oldestHour: number): void {
    this.#retained = [oldestMinute, oldestHour];
    for (const shard of this.#shards) shard.retain(oldestMinute, oldestHour);
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    await Promise.all([...this.#restarts]);
    await Promise.all(this.#shards.map((shard) => shard.stop()));
  }

  #reserve(bytes: number[], sign: 1 | -1): void {
    for (let s = 0; s < bytes.length; s++) {
      if (bytes[s] === 0) continue;
      this.#reserved[s] += sign * bytes[s];
      if (this.#reserved[s] === 0) this.#onSettled.get(s)?.();
    }
    if (sign > 0) this.#notePeak();
  }

  /**
   * Resolves once every batch admitted for shard `index` has been handed to it or released (or the
   * pool stops). A dead shard admits nothing more, so this comes; after it, the journal holds every
   * batch its worker was given, which is what a rebuild reads.
   */
  #settled(index: number): Promise<void> {
    if (this.#reserved[index] === 0) return Promise.resolve();
    const { signal } = this.#stopping;
    return new Promise((resolve) => {
      const done = (): void => {
        this.#onSettled.delete(index);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#onSettled.set(index, done);
      signal.addEventListener('abort', done);
    });
  }

  #notePeak(): void {
    const shards = this.#shards;
    for (let s = 0; s < shards.length; s++) this.#peakBacklog = Math.max(this.#peakBacklog, shards[s].backlogBytes + this.#reserved[s]);
  }

  #watch(shard: ShardHandle): void {
    shard.once('exit', (cause) => {
      this.#options.onExit?.(shard.index, cause);
      const restart = this.#restart(shard.index).finally(() => this.#restarts.delete(restart));
      this.#restarts.add(restart);
    });
  }

  async #restart(index: number): Promise<void> {
    const { signal } = this.#stopping;
    for (let attempt = 0; !signal.aborted; attempt++) {
      if (attempt > 0) {
        const delay = Math.min(RESTART_DELAY_MS * 2 ** (attempt - 1), RESTART_DELAY_MAX_MS);
        await sleep(delay, undefined, { signal }).catch(() => {});
        if (signal.aborted) return;
      }
      let handle: ShardHandle | undefined;
      let recovered = false;
      try {
        handle = await ShardHandle.start(index, this.#options.worker);
        await this.#settled(index);
        recovered = (await this.#recover?.(index, handle)) ?? false;
      } catch (err) {
        await handle?.terminate();
        this.emit('restartFailed', index, err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (signal.aborted) return void (await handle.stop());
      if (this.#retained) handle.retain(...this.#retained);
      this.#shards[index] = handle;
      this.#recovered[index] = recovered;
      this.#watch(handle);
      this.emit('restarted', index, recovered);
      return;
    }
  }
}
