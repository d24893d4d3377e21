// The write-ahead journal: one writer on the main thread appends counter records to the active
// segment with group commit, in two stages that overlap. Records that arrive while a write is under
// way go out together in the next write; written records wait for the next fsync, which covers every
// record written before it started, so many requests share one fsync, and the next group is written
// while the previous one is being synced. Under load the disk is always syncing and the event loop
// never waits for it (when it did, a batch of requests was decoded, then the disk synced it while
// the event loop sat idle, and so on in turn).
//
// Durability ordering: write -> fsync (mode fsync) -> apply each record in LSN order -> the callers
// ack. A record is therefore never applied, and never acknowledged, before it is on disk. In
// interval mode a record is applied once written to the OS (it survives a crash of the process) and
// fsynced at most a second later. A checkpoint cuts the journal between two groups: everything up to
// the cut is applied, nothing after it is, and later records go to a new segment.

import { writeSync } from 'node:fs';
import { unlink, type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';
import { TopTallyError } from '../errors.ts';
import { ByteWriter } from './bytes.ts';
import { fsyncDir, segmentName } from './files.ts';

export type DurabilityMode = 'fsync' | 'interval' | 'off';

const INTERVAL_SYNC_MS = 1000;

/**
 * Groups up to this size are written from the event loop (as Redis writes its append-only file):
 * a small write() into the page cache costs less than handing it to a pool thread and back
 * (docs/performance.md). Larger groups go to the pool, so a write never holds up the event loop for
 * long.
 */
const SYNC_WRITE_BYTES = 64 * 1024;

/**
 * Records waiting to be written are written at once, without waiting for the end of the event-loop
 * turn, once they reach this size and no write is under way: the disk starts on a large burst of
 * requests while the rest of it is still being decoded.
 */
const EAGER_WRITE_BYTES = 256 * 1024;

/**
 * Records are encoded straight into a write buffer, and two of them take turns: one fills while the
 * other is being written. A buffer per record made the I/O thread's collector run full
 * mark-compacts several times a second with batch ingest (V8 counts ArrayBuffers against a budget),
 * each a pause of a few milliseconds for whatever waited behind it. A buffer that grew past this
 * size for a burst is let go once written.
 */
const WRITE_BUFFER_BYTES = 1024 * 1024;
const KEPT_BUFFER_BYTES = 8 * WRITE_BUFFER_BYTES;

export interface Segment {
  file: string;
  firstLsn: number;
  /** firstLsn - 1 while it holds no record. */
  lastLsn: number;
}

interface Pending {
  lsn: number;
  apply(): void;
  resolve(): void;
  reject(err: unknown): void;
}

interface Barrier {
  run(lastLsn: number): void;
  resolve(): void;
  reject(err: unknown): void;
}

export interface JournalStats {
  records: number;
  writes: number;
  syncs: number;
}

export class Journal {
  readonly #dir: string;
  readonly #mode: 'fsync' | 'interval';
  readonly #onFailure: (err: TopTallyError) => void;
  #nextLsn: number;
  /** The last record applied: the cut a checkpoint taken now would have. */
  #appliedLsn: number;
  /** Appended, not yet written; their frames are in #filling. */
  #queue: Pending[] = [];
  #filling = new ByteWriter(WRITE_BUFFER_BYTES);
  /** The other write buffer, when it is not being written. */
  #spare: ByteWriter | null = new ByteWriter(WRITE_BUFFER_BYTES);
  /** Written, waiting for an fsync (mode fsync). */
  #written: Pending[] = [];
  #barriers: Barrier[] = [];
  #kicked = false;
  #writing = false;
  #syncingGroup = false;
  #drained: (() => void)[] = [];
  #handle: FileHandle | null = null;
  #active: Segment | null = null;
  /** Segments no longer written to, oldest first: dropped once a checkpoint covers them. */
  readonly #closed: Segment[];
  /** Closing the segments a cut retired: fsynced (interval mode) before a newer one is written. */
  #retiring: Promise<void> = Promise.resolve();
  #unsynced = false;
  /** The interval mode's fsync under way; writes go on meanwhile. */
  #syncing: Promise<void> | null = null;
  readonly #timer: NodeJS.Timeout | null;
  #failure: TopTallyError | null = null;
  #closing = false;
  /** Bytes written since the last cut, so the service can checkpoint before the journal grows large. */
  bytesSinceCut = 0;
  readonly stats: JournalStats = { records: 0, writes: 0, syncs: 0 };

  readonly #onFlushed: (seconds: number) => void;

  constructor(
    dir: string,
    mode: 'fsync' | 'interval',
    lastLsn: number,
    closed: Segment[],
    onFailure: (err: TopTallyError) => void,
    onFlushed: (seconds: number) => void = () => {},
  ) {
    this.#onFlushed = onFlushed;
    this.#dir = dir;
    this.#mode = mode;
    this.#nextLsn = lastLsn + 1;
    this.#appliedLsn = lastLsn;
    this.#closed = closed;
    this.#onFailure = onFailure;
    this.#timer =
      mode === 'interval'
        ? setInterval(() => this.#syncInBackground(), INTERVAL_SYNC_MS).unref()
        : null;
  }

  get appliedLsn(): number {
    return this.#appliedLsn;
  }

  get segments(): readonly Segment[] {
    return this.#active ? [...this.#closed, this.#active] : this.#closed;
  }

  /**
   * Appends the frame `encode` writes for its LSN. Once it is written (and fsynced in fsync mode),
   * `apply` runs, in LSN order with every other record, and the promise resolves.
   */
  append(encode: (lsn: number, into: ByteWriter) => void, apply: () => void): Promise<void> {
    if (this.#closing) return Promise.reject(new TopTallyError('TOPTALLY_ERR_SHUTTING_DOWN', 'The journal is closed'));
    if (this.#failure) return Promise.reject(this.#failure);
    const filling = this.#filling;
    const start = filling.length;
    try {
      encode(this.#nextLsn, filling);
    } catch (err) {
      filling.truncate(start);
      return Promise.reject(err);
    }
    const lsn = this.#nextLsn++;
    return new Promise((resolve, reject) => {
      this.#queue.push({ lsn, apply, resolve, reject });
      if (filling.length >= EAGER_WRITE_BYTES) this.#writeNext();
      else this.#kick();
    });
  }

  /**
   * Runs `run` between two groups, when every record written so far is applied and none after
   * it, with the LSN of the last one; the records after it go to a new segment.
   */
  cut(run: (appliedLsn: number) => void): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#barriers.push({ run, resolve, reject });
      this.#settle();
    });
  }

  /** Deletes the segments whose every record is at or below `lsn`. */
  async drop(lsn: number): Promise<void> {
    await this.#retiring;
    while (this.#closed.length > 0 && this.#closed[0].lastLsn <= lsn) {
      const [segment] = this.#closed.splice(0, 1);
      await unlink(segment.file);
    }
  }

  /** Waits for what was appended to be written, fsyncs and closes the segment. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#busy) await new Promise<void>((resolve) => this.#drained.push(resolve));
    await Promise.all([this.#retiring, this.#syncing]);
    const handle = this.#handle;
    this.#handle = null;
    if (handle) {
      if (this.#unsynced) await handle.datasync();
      await handle.close();
    }
  }

  /** True while records are on their way: queued, being written, or waiting for an fsync. */
  get #busy(): boolean {
    return this.#queue.length > 0 || this.#writing || this.#written.length > 0 || this.#syncingGroup;
  }

  #kick(): void {
    if (this.#kicked) return;
    this.#kicked = true;
    // At the end of this event-loop turn, so that the records of every request it read go out as one group.
    setImmediate(() => {
      this.#kicked = false;
      this.#writeNext();
    });
  }

  /** Writes what is queued, unless a write is under way (it comes back here) or a cut waits. */
  #writeNext(): void {
    if (this.#writing || this.#queue.length === 0 || this.#barriers.length > 0 || this.#failure) return;
    const group = this.#queue;
    const frames = this.#filling;
    this.#queue = [];
    this.#filling = this.#spare ?? new ByteWriter(WRITE_BUFFER_BYTES);
    this.#spare = null;
    this.#writing = true;
    void this.#write(group, frames.finish()).then(
      () => {
        this.#writing = false;
        frames.reset();
        if (frames.buffer.length <= KEPT_BUFFER_BYTES) this.#spare = frames;
        if (this.#failure) {
          this.#fail(this.#failure, group);
        } else if (this.#mode === 'fsync') {
          for (const pending of group) this.#written.push(pending);
          void this.#syncNext();
        } else {
          this.#apply(group);
        }
        this.#settle();
      },
      (err: unknown) => {
        this.#writing = false;
        this.#fail(err, group);
        this.#settle();
      },
    );
  }

  /** Fsyncs every record written so far, unless an fsync is under way (it comes back here). */
  async #syncNext(): Promise<void> {
    if (this.#syncingGroup || this.#written.length === 0 || this.#failure) return;
    const group = this.#written;
    this.#written = [];
    this.#syncingGroup = true;
    const started = performance.now();
    try {
      await this.#sync();
      this.#onFlushed((performance.now() - started) / 1000);
      this.#apply(group);
    } catch (err) {
      this.#fail(err, group);
    }
    this.#syncingGroup = false;
    void this.#syncNext();
    this.#settle();
  }

  /** Applies a group now on disk, in LSN order, and answers its callers. */
  #apply(group: Pending[]): void {
    for (const pending of group) {
      try {
        pending.apply();
        pending.resolve();
      } catch (err) {
        pending.reject(err);
      }
      this.#appliedLsn = pending.lsn;
    }
  }

  /** After a stage finished: cuts that wait for a quiet moment, the next write, and close(). */
  #settle(): void {
    this.#runBarriers();
    this.#writeNext();
    if (!this.#busy || this.#failure) for (const resolve of this.#drained.splice(0)) resolve();
  }

  async #write(group: Pending[], bytes: Buffer): Promise<void> {
    if (!this.#handle) {
      await this.#retiring;
      if (this.#failure) throw this.#failure;
      await this.#open(group[0].lsn);
    }
    const started = performance.now();
    if (bytes.length > SYNC_WRITE_BYTES) await this.#handle!.writeFile(bytes);
    else for (let at = 0; at < bytes.length; ) at += writeSync(this.#handle!.fd, bytes, at);
    if (this.#mode === 'interval') this.#onFlushed((performance.now() - started) / 1000);
    this.#unsynced = true;
    this.#active!.lastLsn = group[group.length - 1].lsn;
    this.bytesSinceCut += bytes.length;
    this.stats.records += group.length;
    this.stats.writes++;
  }

  async #sync(): Promise<void> {
    if (!this.#unsynced || !this.#handle) return;
    this.#unsynced = false;
    await this.#handle.datasync();
    this.stats.syncs++;
  }

  /** Interval mode: fsync what was written, without holding up the writes that follow. */
  #syncInBackground(): void {
    if (this.#syncing || !this.#handle || !this.#unsynced) return;
    this.#syncing = this.#sync()
      .catch((err: unknown) => this.#fail(err, []))
      .finally(() => (this.#syncing = null));
  }

  async #open(firstLsn: number): Promise<void> {
    const file = path.join(this.#dir, segmentName(firstLsn));
    // 'wx': a segment is never reopened; an existing name would mean two writers or a bug.
    this.#handle = await open(file, 'wx');
    this.#active = { file, firstLsn, lastLsn: firstLsn - 1 };
    await fsyncDir(this.#dir);
  }

  /** Ends the active segment: records after a cut go to a new one, so the old one can be dropped. */
  #retire(): void {
    const handle = this.#handle;
    if (!handle) return;
    const unsynced = this.#unsynced;
    this.#closed.push(this.#active!);
    this.#handle = null;
    this.#active = null;
    this.#unsynced = false;
    this.#retiring = Promise.all([this.#retiring, this.#syncing]).then(async () => {
      if (unsynced) {
        await handle.datasync();
        this.stats.syncs++;
      }
      await handle.close();
    }).catch((err: unknown) => this.#fail(err, []));
  }

  /** Runs the cuts asked for, once every record written is applied and no write is under way. */
  #runBarriers(): void {
    if (this.#writing || this.#written.length > 0 || this.#syncingGroup) return;
    for (const barrier of this.#barriers.splice(0)) {
      try {
        barrier.run(this.#appliedLsn);
        this.#retire();
        this.bytesSinceCut = 0;
        barrier.resolve();
      } catch (err) {
        barrier.reject(err);
      }
    }
  }

  #fail(cause: unknown, group: Pending[]): void {
    if (!this.#failure) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      this.#failure = new TopTallyError(
        'TOPTALLY_ERR_JOURNAL_FAILED',
        `The journal could not write to disk (${reason}); nothing more is accepted until a restart`,
      );
      this.#onFailure(this.#failure);
    }
    for (const pending of [...group, ...this.#written.splice(0), ...this.#queue.splice(0)]) pending.reject(this.#failure);
    this.#filling.reset();
    for (const barrier of this.#barriers.splice(0)) barrier.reject(this.#failure);
  }
}
