// Moves this node's acknowledged counters into Redis. The shard workers, which count every entry
// anyway, keep what they applied per (minute, domain) since they were last drained; every flush
// interval the flusher drains them (a drain is queued behind every part handed over before it, so
// it covers the records up to the last one added) and splits the deltas by partition into chunks.
// Each chunk covers the node's records (lo, hi] for its partition and goes to Redis as a batch of a
// tt_flush call (library.ts), one batch in flight per partition; the batches sent together go in
// one call per master (flush-calls.ts). The I/O thread therefore handles distinct (domain, minute)
// pairs per interval, not entries, and so does Redis. Once a minute it also has Redis fold the
// closed minutes into their hours (see library.ts).
//
// A worker that just started (every one at start-up, one that replaced a dead one) kept nothing
// before its first drain: that drain resets, and every partition is rebuilt from the journal
// records after its watermark up to the drain, as after a failover.
//
// The ordering rule, enforced here: a partition's watermark in Redis only moves from lo to hi, so
// a chunk is applied at most once. When Redis answers with a lower watermark than this node last
// saw (a failover lost applied batches), the partition is rewound: its chunks are dropped and
// rebuilt from the journal records after that watermark, then sent again. A journal record may be
// dropped (see journalKeepFrom) only once every partition it touched holds it in Redis, verified:
// read back and, when the master has replicas, replicated to one (WAIT).

import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../clock.ts';
import type { CounterRecord } from '../durability/records.ts';
import { payloads } from '../durability/shard-rebuild.ts';
import type { Segment } from '../durability/journal.ts';
import type { Drained } from '../protocol/messages.ts';
import type { ShardPart } from '../protocol/shard-part.ts';
import { TopTallyError } from '../errors.ts';
import { partSize, viewPart } from '../protocol/shard-part.ts';
import { minuteToHour, WINDOW_SECONDS, windowIndex, type WindowKind } from '../window.ts';
import type { Retention } from '../retention.ts';
import { addDelta, emptyChunk, flushArgs, minutesOf, openChunk, type Chunk } from './chunk.ts';
import { FlushCalls, type FlushOutcome } from './flush-calls.ts';
import { RecordQueue, Touches } from './touches.ts';
import { watermarkKey } from './keys.ts';
import { functionMissing, type RedisLink } from './redis-link.ts';

/** Seconds a window's keys outlive the retention: a node whose clock is a little behind still finds them. */
const EXPIRY_MARGIN_SECONDS = 120;
/** How often watermarks are read back and replication checked. */
const VERIFY_INTERVAL_MS = 1000;
const WAIT_TIMEOUT_MS = 100;
const REPLAY_RETRY_MS = 1000;
const RETRY_MAX_MS = 2000;

interface Partition {
  index: number;
  tag: string;
  /** The watermark Redis last confirmed for this node, or -1 before it was read. */
  mark: number;
  /** The highest mark known to be kept (read back, and replicated where there are replicas). */
  verified: number;
  chunks: Chunk[];
  inFlight: boolean;
  /** Rebuilding from the journal: nothing is sent meanwhile. */
  replaying: boolean;
  /** After failed calls, no new one before this (Date.now() ms), so a stopped master is not flooded. */
  retryAt: number;
  failures: number;
  /** LSNs of records that touched this partition and are not yet verified. */
  lsns: Touches;
  /** The highest LSN whose entries reached this partition's chunks. */
  lastLsn: number;
  /** A reset waiting for the call in flight to end: rebuild from the journal up to this LSN. */
  resetTo: number;
}

export interface FlusherOptions {
  link: RedisLink;
  /** Each shard's deltas since its last drain, queued behind every part handed to it before. */
  drain: () => Promise<Drained[]>;
  tags: readonly string[];
  nodeId: string;
  clock: Clock;
  retention: Retention;
  flushIntervalMs: number;
  /** The journal's segments now (for replays). */
  segments: () => readonly Segment[];
  /** Follow each batch with WAIT so a confirmation means replicated (ack mode `cluster`). */
  waitReplicas: boolean;
  onError?: (err: Error) => void;
  onFlush?: (entries: number, seconds: number) => void;
  onGap?: (partition: number, from: number, to: number) => void;
  /** The minutes a batch just applied in Redis touched (their hours follow). */
  onApplied?: (minutes: number[]) => void;
}

interface Waiter {
  lsn: number;
  verified: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class Flusher {
  readonly #o: FlusherOptions;
  readonly #calls: FlushCalls;
  readonly #partitions: Partition[];
  /** Records not yet confirmed everywhere they went, in LSN order (for unflushed bytes and the flushed-through time). */
  readonly #records = new RecordQueue();
  #waiters: Waiter[] = [];
  #timer: NodeJS.Timeout | null = null;
  #verifyTimer: NodeJS.Timeout | null = null;
  #synced = false;
  #stopped = false;
  #lastError: Error | null = null;
  #lastOkAt = 0;
  #lastAdded = 0;
  /** Whether every record added so far is confirmed (then the next one added moves the cursor). */
  #allConfirmed = true;
  /** Every record up to this LSN has been drained from the shards into chunks (or a replay). */
  #drainedThrough = 0;
  #draining = false;
  /** The next drain rebuilds every partition from the journal instead (start-up, a failed drain). */
  #resetPending = true;
  /** Partitions waiting for a replay: from (exclusive) → to (inclusive). */
  #rewinds = new Map<number, { from: number; to: number }>();
  #replaying: Promise<void> | null = null;
  #verifying = false;
  /** Minutes up to this one are folded into their hours in every partition (see #fold). */
  #foldedThrough = -1;
  #folding = false;
  #foldRetryAt = 0;
  readonly stats = { flushes: 0, entries: 0, gaps: 0, errors: 0 };

  constructor(options: FlusherOptions) {
    this.#o = options;
    this.#calls = new FlushCalls(options.link, options.nodeId);
    this.#partitions = options.tags.map((tag, index) => ({
      index,
      tag,
      mark: -1,
      verified: -1,
      chunks: [],
      inFlight: false,
      replaying: false,
      retryAt: 0,
      failures: 0,
      lsns: new Touches(),
      lastLsn: 0,
      resetTo: 0,
    }));
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Whether the watermarks have been read and every partition can flush. */
  get synced(): boolean {
    return this.#synced;
  }

  /** The last Redis error, cleared by the next success. */
  get lastError(): Error | null {
    return this.#lastError;
  }

  /** Bytes of journal records that some partition has not confirmed yet. */
  get unflushedBytes(): number {
    return this.#records.unconfirmedBytes;
  }

  /** Every record acknowledged before this time (toptally's clock, ms) is in Redis. */
  flushedThrough(): number {
    return this.#records.firstUnconfirmedAtMs ?? this.#o.clock.now();
  }

  /** Journal records at or below this LSN may be dropped. */
  journalKeepFrom(): number {
    if (!this.#synced) return 0;
    // What the shards hold undrained may touch any partition: a reset reads it from the journal.
    let lowest = this.#drainedThrough + 1;
    for (const p of this.#partitions) {
      // A partition being rewound needs everything after its verified mark read again.
      const next = p.replaying ? p.verified + 1 : p.lsns.firstUnverified();
      if (next !== undefined && next < lowest) lowest = next;
    }
    return Math.min(this.#lastAdded, lowest - 1);
  }

  /**
   * Reads this node's watermarks (retried until Redis answers), then drains the shards for the first
   * time: that drain replays the journal records after the watermarks, those recovered from disk (up
   * to `journalLsn`) and those taken since.
   */
  async sync(journalLsn: number): Promise<void> {
    this.#lastAdded = Math.max(this.#lastAdded, journalLsn);
    for (;;) {
      if (this.#stopped) return;
      try {
        const marks = await Promise.all(this.#partitions.map((p) => this.#readMark(p)));
        this.#partitions.forEach((p, i) => {
          p.mark = marks[i];
          p.verified = marks[i];
          if (marks[i] > journalLsn) {
            throw new Error(`Redis holds LSN ${marks[i]} of node ${this.#o.nodeId} for partition ${i}, past this journal's end (${journalLsn}): is another node using this node id?`);
          }
          p.lsns.confirm(marks[i]);
          p.lsns.verify(marks[i]);
        });
        this.#succeeded(); // an attempt that failed before does not make this node look unable to flush
        break;
      } catch (err) {
        if ((err as Error).message.includes('past this journal')) throw err;
        this.#failed(err as Error);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    this.#synced = true;
    // The workers keep deltas from their first drain on: this one, at once, so that the reset it
    // makes only rebuilds what the journal holds past the watermarks (nothing, on a clean start).
    await this.#drain();
    this.#timer = setInterval(() => this.#tick(), this.#o.flushIntervalMs);
    this.#timer.unref();
    this.#verifyTimer = setInterval(() => void this.#verify(), VERIFY_INTERVAL_MS);
    this.#verifyTimer.unref();
  }

  /** Takes a journaled record (in LSN order). */
  add(record: CounterRecord): void {
    this.#lastAdded = record.lsn;
    this.#records.push(unflushed(record));
    // A record added while every earlier one is confirmed is the first unconfirmed one.
    if (this.#allConfirmed) this.#progress();
  }

  /**
   * Resolves once every record added so far is confirmed in Redis by every partition it touched
   * (`verified`: and replicated); a 503 when that takes longer than `timeoutMs`.
   */
  settled(options: { verified?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const lsn = this.#lastAdded;
    const verified = options.verified ?? false;
    if (this.#reached(lsn, verified)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(unavailable(this.#lastError));
      }, options.timeoutMs ?? 2000);
      const waiter: Waiter = { lsn, verified, resolve, reject, timer };
      this.#waiters.push(waiter);
      this.#tick();
    });
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#verifyTimer) clearInterval(this.#verifyTimer);
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new TopTallyError('TOPTALLY_ERR_SHUTTING_DOWN', 'The node is stopping'));
    }
    this.#waiters = [];
  }

  /**
   * Adds the parts' entries to the open chunk of each partition they touch (or of `only`), as those
   * of journal record `lsn`, or of a drain through `lsn` (then `touch` is the lowest LSN it covers);
   * whether they touched any.
   */
  #aggregate(parts: readonly (ShardPart | undefined)[], lsn: number, touch: number, only?: Partition): boolean {
    const count = this.#partitions.length;
    let touched = false;
    for (const part of parts) {
      if (!part) continue;
      const view = viewPart(part);
      const names = Buffer.from(view.names.buffer, view.names.byteOffset, view.names.byteLength);
      let start = 0;
      for (let i = 0; i < view.entries; i++) {
        const end = view.nameEnds[i];
        const p = this.#partitions[view.hashes[i] % count];
        if (only && p !== only) {
          start = end;
          continue;
        }
        touched = true;
        if (p.lastLsn < lsn) {
          p.lsns.push(touch);
          p.lastLsn = lsn;
        }
        const chunk = openChunk(p.chunks, lsn);
        const minute = view.minutes[i];
        let members = chunk.minutes.get(minute);
        if (!members) chunk.minutes.set(minute, (members = new Map()));
        chunk.entries += addDelta(members, view.hashes[i], names, start, end, view.counts[i]);
        start = end;
      }
    }
    return touched;
  }

  /**
   * Drains the shards into chunks, or resets (see the header); then sends what it can. A waiter for
   * a record added during the drain gets another one at once rather than at the next interval.
   */
  async #drain(): Promise<void> {
    this.#draining = true;
    const through = this.#lastAdded;
    const from = this.#drainedThrough;
    let drained = false;
    try {
      const deltas = await this.#o.drain();
      if (this.#stopped) return;
      this.#drainedThrough = through;
      if (this.#resetPending || deltas.some((d) => d.fresh)) {
        this.#resetPending = false;
        for (const p of this.#partitions) {
          if (p.mark >= through) continue;
          if (!p.inFlight) {
            this.#rewind(p, p.mark, through);
            continue;
          }
          // Its call ends first (Redis may take it): then the rest is rebuilt (#resetAfterCall).
          p.chunks = p.chunks.slice(0, 1);
          p.resetTo = through;
        }
      } else {
        for (const d of deltas) this.#aggregate(d.parts, through, from + 1);
      }
      this.#progress();
      drained = true;
    } catch {
      // A shard that died took its deltas with it: its successor starts afresh, and the next drain
      // rebuilds from the journal what this one would have held.
      this.#resetPending = true;
    } finally {
      this.#draining = false;
    }
    if (drained && this.#waiters.some((w) => w.lsn > this.#drainedThrough)) return this.#tick();
    for (const p of this.#partitions) this.#send(p);
  }

  #tick(): void {
    if (!this.#synced || this.#stopped) return;
    if (!this.#draining && this.#lastAdded > this.#drainedThrough) void this.#drain();
    for (const p of this.#partitions) this.#send(p);
    this.#fold();
  }

  /**
   * Once a minute, folds every partition's closed minutes into their hours (tt_fold, library.ts),
   * in the hours whose minutes are still retained. Every node does it; the calls after the first
   * change nothing. Whether a minute is folded yet never changes an answer, only what reading its
   * hour costs and how long the minute's sorted set is kept.
   */
  #fold(): void {
    const now = Math.floor(this.#o.clock.now() / 1000);
    const through = windowIndex('minute', now) - 1;
    if (through <= this.#foldedThrough || this.#folding || Date.now() < this.#foldRetryAt) return;
    this.#folding = true;
    const hours: string[] = [];
    const oldest = minuteToHour(through - this.#o.retention.minutes - EXPIRY_MARGIN_SECONDS / 60);
    for (let hour = oldest; hour <= minuteToHour(through); hour++) hours.push(String(hour));
    const expiry = String(this.#expiry('minute', now));
    Promise.all(
      this.#partitions.map((p) => {
        const route = watermarkKey(p.tag);
        return this.#o.link.call(route, ['FCALL', 'tt_fold', '1', route, p.tag, String(through), expiry, ...hours]);
      }),
    )
      .then(
        () => (this.#foldedThrough = through),
        (err: Error) => {
          // Counted and told, but not a failed flush: nothing this node acknowledged waits on it.
          this.stats.errors++;
          if (!this.#lastError) this.#o.onError?.(err);
          this.#foldRetryAt = Date.now() + REPLAY_RETRY_MS;
          this.#reloadIfMissing(err);
        },
      )
      .finally(() => (this.#folding = false));
  }

  #send(p: Partition): void {
    if (p.inFlight || p.replaying || p.chunks.length === 0 || this.#stopped || Date.now() < p.retryAt) return;
    const chunk = p.chunks[0];
    chunk.sealed = true;
    p.inFlight = true;
    const started = performance.now();
    const lo = p.mark;
    const hwm = watermarkKey(p.tag);
    this.#apply(p, lo, chunk).then(
      async ([kind, mark]) => {
        p.inFlight = false;
        p.failures = 0;
        this.#succeeded();
        if (kind === 'gap') {
          this.stats.gaps++;
          this.#o.onGap?.(p.index, mark, p.lastLsn);
          this.#rewind(p, mark, Math.max(p.lastLsn, p.mark, p.resetTo));
          p.resetTo = 0;
          return;
        }
        this.stats.flushes++;
        this.stats.entries += chunk.entries;
        this.#o.onFlush?.(chunk.entries, (performance.now() - started) / 1000);
        if (kind === 'ok') this.#o.onApplied?.(minutesOf(chunk));
        p.chunks.shift();
        p.mark = Math.max(mark, chunk.hi);
        p.lsns.confirm(p.mark);
        this.#resetAfterCall(p);
        if (this.#o.waitReplicas && (await this.#replicated(hwm))) this.#verified(p, p.mark);
        this.#progress();
        // The open chunk goes too when someone waits: it may hold the record they wait for.
        if (p.chunks.length > 0 && (p.chunks[0].sealed || p.chunks.length > 1 || this.#waiters.length > 0)) this.#send(p);
      },
      (err: Error) => {
        p.inFlight = false;
        if (p.resetTo > 0) {
          p.chunks.shift(); // the rebuild covers it
          this.#resetAfterCall(p);
        }
        p.retryAt = Date.now() + Math.min(RETRY_MAX_MS, this.#o.flushIntervalMs * 2 ** p.failures++);
        this.#failed(err);
        this.#reloadIfMissing(err);
      },
    );
  }

  /**
   * A reset that waited for `p`'s call to end: the records after its mark up to the reset's drain
   * are read from the journal, and go before the chunks later drains made meanwhile.
   */
  #resetAfterCall(p: Partition): void {
    const to = p.resetTo;
    if (to === 0) return;
    p.resetTo = 0;
    if (p.mark >= to) return;
    const later = p.chunks;
    this.#rewind(p, p.mark, to);
    p.chunks = later;
  }

  #apply(p: Partition, lo: number, chunk: Chunk): Promise<FlushOutcome> {
    const now = Math.floor(this.#o.clock.now() / 1000);
    const args = flushArgs(chunk, p.tag, lo, windowIndex('minute', now), (kind, index) => this.#ttl(kind, index, now));
    return this.#calls.send(p.tag, args, chunk.entries);
  }

  /** Seconds until the window leaves the retention, on toptally's clock (Redis's own clock may differ). */
  #ttl(kind: WindowKind, index: number, nowSeconds: number): number {
    return Math.max(1, index * WINDOW_SECONDS[kind] + this.#expiry(kind, nowSeconds));
  }

  /** What #ttl adds to a window's start: its retention and margin, less the time now. */
  #expiry(kind: WindowKind, nowSeconds: number): number {
    const kept = kind === 'minute' ? this.#o.retention.minutes : this.#o.retention.hours;
    return (kept + 1) * WINDOW_SECONDS[kind] - nowSeconds + EXPIRY_MARGIN_SECONDS;
  }

  async #readMark(p: Partition): Promise<number> {
    const key = watermarkKey(p.tag);
    const mark = await this.#o.link.call(key, ['HGET', key, this.#o.nodeId]);
    return mark == null ? 0 : Number(String(mark));
  }

  /**
   * Whether this connection's writes to the master of `key` reached a replica, or it has none (then
   * Redis's own persistence is all there is). WAIT blocks the connection it is sent on, so it is
   * sent once per master and only where there is a replica to wait for.
   */
  async #replicated(key: string): Promise<boolean> {
    if (this.#o.link.masterOf(key).replicas === 0) return true;
    try {
      return Number(await this.#o.link.call(key, ['WAIT', '1', String(WAIT_TIMEOUT_MS)])) >= 1;
    } catch (err) {
      this.#failed(err as Error);
      return false;
    }
  }

  /**
   * Reads the watermarks of the idle partitions back (a lower one means Redis lost the last batches:
   * rewind), then, master by master, waits for a replica to hold them and marks them verified.
   */
  async #verify(): Promise<void> {
    if (!this.#synced || this.#stopped || this.#verifying) return;
    this.#verifying = true;
    try {
      const byMaster = new Map<string, { p: Partition; mark: number }[]>();
      await Promise.all(
        this.#partitions.map(async (p) => {
          if (p.inFlight || p.replaying || p.mark <= p.verified) return;
          const before = p.mark;
          const mark = await this.#readMark(p);
          if (p.inFlight || p.replaying || p.mark !== before) return;
          if (mark < before) {
            this.stats.gaps++;
            this.#o.onGap?.(p.index, mark, before);
            this.#rewind(p, mark, Math.max(p.lastLsn, before));
            return;
          }
          const { address } = this.#o.link.masterOf(watermarkKey(p.tag));
          byMaster.set(address, [...(byMaster.get(address) ?? []), { p, mark: before }]);
        }),
      );
      await Promise.all(
        [...byMaster.values()].map(async (group) => {
          if (await this.#replicated(watermarkKey(group[0].p.tag))) for (const { p, mark } of group) this.#verified(p, mark);
        }),
      );
    } catch (err) {
      this.#failed(err as Error);
    } finally {
      this.#verifying = false;
    }
  }

  #verified(p: Partition, mark: number): void {
    if (mark <= p.verified) return;
    p.verified = mark;
    p.lsns.verify(mark);
    this.#progress();
  }

  /** Drops chunks and in-memory state after `from`, and rebuilds them from the journal up to `to`. */
  #rewind(p: Partition, from: number, to: number): void {
    p.lastLsn = Math.max(p.lastLsn, to);
    p.mark = from;
    p.verified = Math.min(p.verified, from);
    p.chunks = [];
    p.replaying = true;
    const earlier = this.#rewinds.get(p.index);
    this.#rewinds.set(p.index, { from, to: Math.max(to, earlier?.to ?? 0) });
    // From a microtask, so that rewinds made together (a failover, start-up) share one read of the journal.
    this.#replaying ??= Promise.resolve()
      .then(() => this.#replay())
      .finally(() => (this.#replaying = null));
  }

  async #replay(): Promise<void> {
    while (this.#rewinds.size > 0 && !this.#stopped) {
      const rewinds = new Map(this.#rewinds);
      this.#rewinds.clear();
      const lowest = Math.min(...[...rewinds.values()].map((r) => r.from));
      const highest = Math.max(...[...rewinds.values()].map((r) => r.to));
      // Records added meanwhile stay in p.chunks, to go after the replayed ones.
      const replayed = new Map<Partition, { chunks: Chunk[]; lsns: number[] }>();
      for (const index of rewinds.keys()) replayed.set(this.#partitions[index], { chunks: [], lsns: [] });
      try {
        for (const segment of this.#o.segments()) {
          if (segment.lastLsn <= lowest || segment.firstLsn > highest) continue;
          const records = await payloads(segment.file, 'counters').catch((err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return []; // dropped: it held only records Redis keeps
            throw err;
          });
          for (const record of records) {
            if (record.lsn <= lowest || record.lsn > highest) continue;
            this.#insertRecord(record);
            for (const [p, into] of replayed) {
              const r = rewinds.get(p.index)!;
              if (record.lsn <= r.from || record.lsn > r.to) continue;
              const live = p.chunks;
              p.chunks = into.chunks;
              if (this.#aggregate(record.parts, record.lsn, record.lsn, p)) into.lsns.push(record.lsn);
              p.chunks = live;
            }
          }
        }
      } catch (err) {
        // Nothing is installed from a replay that could not read the journal: it is tried again.
        this.#failed(err as Error);
        for (const [index, r] of rewinds) {
          const later = this.#rewinds.get(index);
          this.#rewinds.set(index, { from: r.from, to: Math.max(r.to, later?.to ?? 0) });
        }
        await sleep(REPLAY_RETRY_MS);
        continue;
      }
      for (const [p, into] of replayed) {
        const r = rewinds.get(p.index)!;
        // The last replayed chunk covers the whole range, so the mark moves to its end even when
        // the partition's last records in it were elsewhere.
        if (into.chunks.length === 0) into.chunks.push(emptyChunk(r.to, true));
        into.chunks[into.chunks.length - 1].hi = r.to;
        for (const chunk of into.chunks) chunk.sealed = true;
        p.chunks = [...into.chunks, ...p.chunks];
        const kept = p.lsns.unverified();
        p.lsns.reset([...kept.filter((lsn) => lsn <= r.from), ...into.lsns, ...kept.filter((lsn) => lsn > r.to)], p.mark, p.verified);
        p.lastLsn = Math.max(p.lastLsn, r.to);
        p.replaying = false;
      }
      this.#progress();
      this.#tick();
    }
  }

  /** Puts a replayed record back into the unconfirmed list (it may have been pruned). */
  #insertRecord(record: CounterRecord): void {
    this.#records.restore(unflushed(record));
  }

  /** The lowest LSN some partition has not confirmed; past the last one added when none. */
  #lowestUnconfirmed(): number {
    let lowest = this.#drainedThrough + 1;
    for (const p of this.#partitions) {
      const first = p.replaying ? p.mark + 1 : p.lsns.firstUnconfirmed();
      if (first !== undefined && first < lowest) lowest = first;
    }
    return lowest;
  }

  #reached(lsn: number, verified: boolean): boolean {
    if (!this.#synced) return false;
    if (verified) return this.journalKeepFrom() >= lsn;
    return this.#lowestUnconfirmed() > lsn;
  }

  #progress(): void {
    const lowest = this.#lowestUnconfirmed();
    this.#allConfirmed = lowest > this.#lastAdded;
    this.#records.moveTo(lowest);
    this.#records.prune(Math.min(lowest, this.journalKeepFrom() + 1));
    if (this.#waiters.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => {
      if (!this.#reached(w.lsn, w.verified)) return true;
      clearTimeout(w.timer);
      w.resolve();
      return false;
    });
  }

  /** A master that lacks the function library (new, or restarted empty) gets it again. */
  #reloadIfMissing(err: Error): void {
    if (functionMissing(err)) void this.#o.link.loadLibrary().catch((e: Error) => this.#failed(e));
  }

  #succeeded(): void {
    this.#lastError = null;
    this.#lastOkAt = Date.now();
  }

  #failed(err: Error): void {
    this.stats.errors++;
    if (!this.#lastError) this.#o.onError?.(err);
    this.#lastError = err;
  }

  /** Milliseconds since Redis last answered a batch (0 when nothing was ever sent). */
  get sinceLastOkMs(): number {
    return this.#lastOkAt === 0 ? 0 : Date.now() - this.#lastOkAt;
  }
}

/** What the unconfirmed list keeps of a record: when it was taken, and its bytes (--max-unflushed). */
function unflushed(record: CounterRecord): { lsn: number; atMs: number; bytes: number } {
  let bytes = 0;
  for (const part of record.parts) bytes += part ? partSize(part) : 0;
  return { lsn: record.lsn, atMs: record.atMs, bytes };
}

export function unavailable(cause: Error | null): TopTallyError {
  return new TopTallyError(
    'TOPTALLY_ERR_CLUSTER_UNAVAILABLE',
    `Redis does not answer${cause ? ` (${cause.message})` : ''}; try again shortly`,
    { retryAfter: 1 },
  );
}
