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
//
// Failures: a write or fsync that fails, or the segment being written found deleted or replaced (it
// is checked before each group is applied, and every second), fails the group and everything after
// it, and appends are refused until the owner has ended the failed segment (endFailedSegment), made
// what was applied durable by a checkpoint (cuts still run), and resumed. Records refused that way
// were never applied, and their LSNs are used again, so no refused record can be replayed later
// (the failed segment is cut back to what was applied, or dropped by that checkpoint).
//
// Preallocation: the active segment keeps zeros, written and fdatasynced, ahead of its records, and
// records are written over them at explicit positions. An fdatasync then has only data to flush,
// where one after a write that extends the file must also commit the file's new size and blocks to
// the filesystem's own journal. Two rules keep this safe. A record is never written where zeros are
// still being written (a top-up's range begins past every record written so far, and a write that
// would reach it waits for the zeros' write to finish), so zeros never land on a record. And a
// segment that ends (a cut, shutdown, a failed segment ended) is truncated to its last record and
// fdatasynced before the next segment is created, so only the newest segment can end in zeros;
// recovery cuts such a tail off quietly (it also accepts one in an older segment, where the LSN
// check across segments would still catch a lost record).

import { readlinkSync, statSync, writeSync } from 'node:fs';
import { mkdir, unlink, type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';
import { TopTallyError } from '../errors.ts';
import { ByteWriter } from './bytes.ts';
import { fsyncDir, segmentName } from './files.ts';

export type DurabilityMode = 'fsync' | 'interval' | 'off';

/**
 * Every second: the fsync of interval mode, and in every mode a check that the segment being
 * written is still the file at its path (it is also checked before each group is applied).
 */
const TICK_MS = 1000;

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

/**
 * Zeros kept ahead of the records of the active segment, topped up to this whenever less than half
 * is left. A top-up is kept short because every group fdatasync that overlaps it waits for its
 * zeros to reach the disk (an fdatasync flushes the whole file); half of this is still hundreds of
 * groups of small requests, so the file's new size is committed once per top-up instead of once per
 * group, and it is more than a large group, so records seldom catch up with a top-up under way (they
 * would wait for its write). A segment ended early has at most this much to truncate.
 */
const PREALLOC_BYTES = 2 ** 20;

/**
 * A new segment's first top-up begins this far past its first records, which meanwhile extend the
 * file as without preallocation: the groups right after a cut need not wait for the zeros' write.
 */
const PREALLOC_GAP_BYTES = 128 * 1024;

/** Written ahead of records, never changed; allocated on first use (mode off writes nothing). */
let zeros: Buffer | null = null;

/** The path an open file is linked at (" (deleted)" appended once unlinked), or null off Linux. */
function linkOf(fd: number): string | null {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/** Writes all of `bytes` at `position`, from the libuv pool. */
async function writeAllAt(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let at = 0; at < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, at, bytes.length - at, position + at);
    at += bytesWritten;
  }
}

interface TopUp {
  /** Its zeros go to [from, ...): no record may be written there before `written` settles. */
  from: number;
  written: Promise<void>;
  /** The zeros are written and fdatasynced, or the top-up failed (and said so). */
  done: Promise<void>;
}

export interface Segment {
  file: string;
  firstLsn: number;
  /** firstLsn - 1 while it holds no record. */
  lastLsn: number;
}

/**
 * A record on its way through the journal, as its owner sees it: encoded when appended, then told
 * once it is durable (in LSN order with every other record) or refused. One object per record, kept
 * in the journal's queues as it is: a request costs no promise or closure here.
 */
export interface JournalEntry {
  /** Writes the record's frame, numbered `lsn`, into `into`. */
  encode(lsn: number, into: ByteWriter): void;
  /** The record is written (and fsynced in mode fsync): apply and answer it. A throw refuses it. */
  durable(lsn: number): void;
  /** The record is not applied, and never will be. */
  refused(err: unknown): void;
}

interface Barrier {
  run(lastLsn: number): void;
  resolve(): void;
  reject(err: unknown): void;
}

export interface JournalFailure {
  /** What ingest is answered meanwhile. */
  error: TopTallyError;
  /** What failed, in a few words (the system error's message). */
  reason: string;
  /**
   * The segment being written was deleted or replaced: what was applied from it is in memory
   * only, until a checkpoint covers it.
   */
  lost: boolean;
}

export interface JournalStats {
  records: number;
  writes: number;
  syncs: number;
}

export class Journal {
  readonly #dir: string;
  readonly #mode: 'fsync' | 'interval';
  readonly #onFailure: (failure: JournalFailure) => void;
  #nextLsn: number;
  /** The last record applied: the cut a checkpoint taken now would have. */
  #appliedLsn: number;
  /** Appended, not yet written (numbered up to #nextLsn - 1); their frames are in #filling. */
  #queue: JournalEntry[] = [];
  #filling = new ByteWriter(WRITE_BUFFER_BYTES);
  /** The other write buffer, when it is not being written. */
  #spare: ByteWriter | null = new ByteWriter(WRITE_BUFFER_BYTES);
  /** Written, waiting for an fsync (mode fsync), numbered from #writtenLsn on. */
  #written: JournalEntry[] = [];
  #writtenLsn = 0;
  #barriers: Barrier[] = [];
  #kicked = false;
  #writing = false;
  #syncingGroup = false;
  #drained: (() => void)[] = [];
  #handle: FileHandle | null = null;
  #active: Segment | null = null;
  /** The active segment's identity, to tell it from a file put in its place. */
  #identity: { dev: number; ino: number; link: string | null } | null = null;
  /** Bytes of the active segment written whole, and those of them applied. */
  #writtenEnd = 0;
  #appliedEnd = 0;
  /** How far the active segment's file may reach: records, then the zeros written ahead of them. */
  #fileEnd = 0;
  /** Zeros are written and fdatasynced up to here, ahead of #writtenEnd. */
  #zeroedEnd = 0;
  #topUp: TopUp | null = null;
  /** A top-up's write failed: this segment's records extend the file from then on. */
  #noPrealloc = false;
  #topUpSyncFailed = false;
  /** Segments no longer written to, oldest first: dropped once a checkpoint covers them. */
  readonly #closed: Segment[];
  /** Closing the segments a cut retired: fsynced (interval mode) before a newer one is written. */
  #retiring: Promise<void> = Promise.resolve();
  #unsynced = false;
  /** The interval mode's fsync under way; writes go on meanwhile. */
  #syncing: Promise<void> | null = null;
  readonly #timer: NodeJS.Timeout;
  #failure: JournalFailure | null = null;
  #closing = false;
  /** Bytes written in all, so the service can checkpoint before the journal grows large. */
  bytesWritten = 0;
  readonly stats: JournalStats = { records: 0, writes: 0, syncs: 0 };

  readonly #onFlushed: (seconds: number) => void;

  constructor(
    dir: string,
    mode: 'fsync' | 'interval',
    lastLsn: number,
    closed: Segment[],
    onFailure: (failure: JournalFailure) => void,
    onFlushed: (seconds: number) => void = () => {},
  ) {
    this.#onFlushed = onFlushed;
    this.#dir = dir;
    this.#mode = mode;
    this.#nextLsn = lastLsn + 1;
    this.#appliedLsn = lastLsn;
    this.#closed = closed;
    this.#onFailure = onFailure;
    this.#timer = setInterval(() => {
      if (!this.#failure && !this.#linked()) this.#fail(this.#unlinked(), [], true);
      if (mode === 'interval') this.#syncInBackground();
    }, TICK_MS).unref();
  }

  /** Why appends are refused, or null while they are taken. */
  get failure(): JournalFailure | null {
    return this.#failure;
  }

  get appliedLsn(): number {
    return this.#appliedLsn;
  }

  get segments(): readonly Segment[] {
    return this.#active ? [...this.#closed, this.#active] : this.#closed;
  }

  /**
   * Encodes the entry's record with the next LSN; once it is written (and fsynced in fsync mode), the
   * entry is told it is durable, in LSN order with every other record. Throws, and keeps nothing,
   * while appends are refused or when the record cannot be encoded.
   */
  append(entry: JournalEntry): void {
    if (this.#closing) throw new TopTallyError('TOPTALLY_ERR_SHUTTING_DOWN', 'The journal is closed');
    if (this.#failure) throw this.#failure.error;
    const filling = this.#filling;
    const start = filling.length;
    try {
      entry.encode(this.#nextLsn, filling);
    } catch (err) {
      filling.truncate(start);
      throw err;
    }
    this.#nextLsn++;
    this.#queue.push(entry);
    if (filling.length >= EAGER_WRITE_BYTES) this.#writeNext();
    else this.#kick();
  }

  /**
   * Runs `run` between two groups, when every record written so far is applied and none after
   * it, with the LSN of the last one; the records after it go to a new segment. Cuts also run
   * while appends are refused, so that a checkpoint can make what was applied durable again.
   */
  cut(run: (appliedLsn: number) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#barriers.push({ run, resolve, reject });
      this.#settle();
    });
  }

  /** Deletes the segments whose every record is at or below `lsn`; one stays listed until it is gone. */
  async drop(lsn: number): Promise<void> {
    await this.#retiring;
    while (this.#closed.length > 0 && this.#closed[0].lastLsn <= lsn) {
      await unlink(this.#closed[0].file).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      this.#closed.shift();
    }
  }

  /**
   * After a failure, once nothing is in flight: cuts the failed segment back to what was applied
   * (best effort: a checkpoint must cover it next anyway) and ends it, so the next record opens a
   * new segment. Appends stay refused until resume(). Rejects when the directory cannot be made.
   */
  async endFailedSegment(): Promise<void> {
    if (!this.#failure) return;
    while (this.#writing || this.#syncingGroup) await new Promise<void>((resolve) => this.#drained.push(resolve));
    await Promise.all([this.#retiring, this.#syncing, this.#topUp?.done]);
    const handle = this.#handle;
    const active = this.#active;
    if (handle && active) {
      const lost = this.#failure.lost || !this.#linked();
      this.#failure.lost = lost;
      await this.#cutBack(handle);
      await handle.close().catch(() => undefined);
      active.lastLsn = this.#appliedLsn;
      // A file put in place of a lost segment is not ours to delete later.
      if (!lost && active.lastLsn >= active.firstLsn) this.#closed.push(active);
      else if (!lost) await unlink(active.file).catch(() => undefined);
    }
    this.#handle = this.#active = this.#identity = null;
    this.#unsynced = false;
    this.#resetEnds();
    this.#nextLsn = this.#appliedLsn + 1;
    await mkdir(this.#dir, { recursive: true });
  }

  /** Takes appends again, after endFailedSegment() and a checkpoint. */
  resume(): void {
    if (this.#handle) throw new Error('resume() before endFailedSegment()');
    this.#failure = null;
  }

  /** Waits for what was appended to be written, fsyncs and closes the segment. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#timer);
    if (this.#busy) await new Promise<void>((resolve) => this.#drained.push(resolve));
    await Promise.all([this.#retiring, this.#syncing, this.#topUp?.done]);
    const handle = this.#handle;
    this.#handle = null;
    if (!handle) return;
    if (this.#failure) {
      // Refused records must not be replayed on the next start.
      await this.#cutBack(handle);
      await handle.close().catch(() => undefined);
      return;
    }
    await endSegment(handle, this.#writtenEnd, this.#fileEnd, this.#unsynced);
    await handle.close();
  }

  /**
   * Cuts the segment being written back to what was applied (refused records and the zeros ahead),
   * when it is still the one linked.
   */
  async #cutBack(handle: FileHandle): Promise<void> {
    if (this.#failure?.lost || this.#fileEnd === this.#appliedEnd) return;
    try {
      await handle.truncate(this.#appliedEnd);
      await handle.datasync();
    } catch {
      // Left to the checkpoint that follows, which drops the whole segment.
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
    const first = this.#nextLsn - group.length;
    const frames = this.#filling;
    this.#queue = [];
    this.#filling = this.#spare ?? new ByteWriter(WRITE_BUFFER_BYTES);
    this.#spare = null;
    this.#writing = true;
    void this.#write(group, first, frames.finish()).then(
      () => {
        this.#writing = false;
        frames.reset();
        if (frames.buffer.length <= KEPT_BUFFER_BYTES) this.#spare = frames;
        if (this.#failure) {
          this.#fail(this.#failure.error, group);
        } else if (this.#mode === 'fsync') {
          if (this.#written.length === 0) this.#writtenLsn = first;
          for (const entry of group) this.#written.push(entry);
          void this.#syncNext();
        } else if (!this.#linked()) {
          this.#fail(this.#unlinked(), group, true);
        } else {
          this.#apply(group, first, this.#writtenEnd);
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
    const first = this.#writtenLsn;
    const end = this.#writtenEnd;
    this.#written = [];
    this.#syncingGroup = true;
    const started = performance.now();
    try {
      await this.#sync();
      this.#onFlushed((performance.now() - started) / 1000);
      // A top-up's fdatasync that failed meanwhile may have taken the report of this group's failed
      // write-back with it (an error is reported once per open file).
      if (this.#topUpSyncFailed) this.#fail(new Error('fdatasync failed'), group);
      // A segment deleted under us takes its records with it however well they were synced.
      else if (this.#linked()) this.#apply(group, first, end);
      else this.#fail(this.#unlinked(), group, true);
    } catch (err) {
      this.#fail(err, group);
    }
    this.#syncingGroup = false;
    void this.#syncNext();
    this.#settle();
  }

  /**
   * Tells a group now on disk, numbered from `first` on, that it is durable, in LSN order; `end`:
   * where it ends in the segment.
   */
  #apply(group: JournalEntry[], first: number, end: number): void {
    this.#appliedEnd = end;
    for (let i = 0; i < group.length; i++) {
      const entry = group[i];
      try {
        entry.durable(first + i);
      } catch (err) {
        entry.refused(err);
      }
      this.#appliedLsn = first + i;
    }
  }

  /** After a stage finished: cuts that wait for a quiet moment, the next write, and close(). */
  #settle(): void {
    this.#runBarriers();
    this.#writeNext();
    if (!this.#busy || this.#failure) for (const resolve of this.#drained.splice(0)) resolve();
  }

  async #write(group: JournalEntry[], first: number, bytes: Buffer): Promise<void> {
    if (!this.#handle) {
      await this.#retiring;
      if (this.#failure) throw this.#failure.error;
      await this.#open(first);
    }
    const handle = this.#handle!;
    const position = this.#writtenEnd;
    const end = position + bytes.length;
    // Zeros must never land on a record: wait for the zeros' write when the group would reach it.
    if (this.#topUp && end > this.#topUp.from) await this.#topUp.written;
    const started = performance.now();
    if (bytes.length > SYNC_WRITE_BYTES) await writeAllAt(handle, bytes, position);
    else for (let at = 0; at < bytes.length; ) at += writeSync(handle.fd, bytes, at, bytes.length - at, position + at);
    if (this.#mode === 'interval') this.#onFlushed((performance.now() - started) / 1000);
    this.#unsynced = true;
    this.#active!.lastLsn = first + group.length - 1;
    this.#writtenEnd = end;
    this.#fileEnd = Math.max(this.#fileEnd, end);
    this.bytesWritten += bytes.length;
    this.stats.records += group.length;
    this.stats.writes++;
    this.#preallocate();
  }

  /**
   * Tops up the zeros ahead of the records once less than half of PREALLOC_BYTES is left, from the
   * libuv pool. The range begins past every record written so far, and #write keeps later records
   * out of it until the zeros are written.
   */
  #preallocate(): void {
    const handle = this.#handle;
    if (!handle || this.#topUp || this.#noPrealloc || this.#failure) return;
    const ahead = this.#writtenEnd + PREALLOC_BYTES;
    if (ahead - Math.max(this.#zeroedEnd, this.#writtenEnd) <= PREALLOC_BYTES / 2) return;
    const from = this.#zeroedEnd > 0 ? Math.max(this.#zeroedEnd, this.#writtenEnd) : this.#writtenEnd + PREALLOC_GAP_BYTES;
    if (from >= ahead) return;
    zeros ??= Buffer.alloc(PREALLOC_BYTES);
    // From now on the file may reach `ahead`, whatever becomes of the write: a segment that ends is cut back.
    this.#fileEnd = Math.max(this.#fileEnd, ahead);
    const written = writeAllAt(handle, zeros.subarray(0, ahead - from), from);
    const topUp: TopUp = {
      from,
      written: written.catch(() => undefined),
      done: written.then(
        async () => {
          // Its failure is the journal's: it may be how a record's failed write-back is reported.
          await handle.datasync().catch((err: unknown) => {
            if (this.#handle === handle) this.#topUpSyncFailed = true;
            throw err;
          });
          if (this.#handle === handle) this.#zeroedEnd = ahead;
        },
        () => {
          // Not a record's write: this segment just goes on without zeros ahead.
          if (this.#handle === handle) this.#noPrealloc = true;
        },
      ).catch((err: unknown) => this.#fail(err, [])),
    };
    this.#topUp = topUp;
    void topUp.done.then(() => {
      if (this.#topUp === topUp) this.#topUp = null;
    });
  }

  #resetEnds(): void {
    this.#writtenEnd = this.#appliedEnd = this.#fileEnd = this.#zeroedEnd = 0;
    this.#topUp = null;
    this.#noPrealloc = this.#topUpSyncFailed = false;
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
    const handle = await open(file, 'wx');
    try {
      const { dev, ino } = await handle.stat();
      await fsyncDir(this.#dir);
      this.#identity = { dev, ino, link: linkOf(handle.fd) };
    } catch (err) {
      await handle.close();
      throw err;
    }
    this.#handle = handle;
    this.#active = { file, firstLsn, lastLsn: firstLsn - 1 };
    this.#resetEnds();
  }

  /** Whether the segment being written is still the file at its path (true when there is none). */
  #linked(): boolean {
    const active = this.#active;
    const identity = this.#identity;
    if (!active || !identity) return true;
    // Where Linux has it, the name the open file is linked under, read without a stat of the file:
    // a stat asks for its change time, which (multigrain timestamps, Linux 6.13 on) makes the next
    // write update its timestamps finely, and the fdatasync after it commit them, which the zeros
    // written ahead are there to spare.
    if (identity.link !== null && this.#handle) return linkOf(this.#handle.fd) === identity.link;
    try {
      const now = statSync(active.file, { throwIfNoEntry: false });
      return now !== undefined && now.ino === identity.ino && now.dev === identity.dev;
    } catch {
      return false; // ENOTDIR and the like: the path leads nowhere
    }
  }

  #unlinked(): Error {
    return new Error(`${this.#active?.file ?? this.#dir} was deleted or replaced while it was being written`);
  }

  /** Ends the active segment: records after a cut go to a new one, so the old one can be dropped. */
  #retire(): void {
    const handle = this.#handle;
    if (!handle || this.#failure) return; // a failed segment is ended by endFailedSegment()
    const unsynced = this.#unsynced;
    const end = this.#writtenEnd;
    const fileEnd = this.#fileEnd;
    const topUp = this.#topUp;
    this.#closed.push(this.#active!);
    this.#handle = null;
    this.#active = null;
    this.#identity = null;
    this.#unsynced = false;
    this.#resetEnds();
    // The next segment is created only once this has finished (#write waits for #retiring), so a
    // crash never leaves zeros at the end of a segment that has a newer one.
    this.#retiring = Promise.all([this.#retiring, this.#syncing, topUp?.done]).then(async () => {
      if (await endSegment(handle, end, fileEnd, unsynced)) this.stats.syncs++;
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
        barrier.resolve();
      } catch (err) {
        barrier.reject(err);
      }
    }
  }

  #fail(cause: unknown, group: JournalEntry[], lost = false): void {
    if (!this.#failure) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      const error = new TopTallyError(
        'TOPTALLY_ERR_JOURNAL_FAILED',
        `The journal could not write to disk (${reason}); nothing of this was counted, and ingest resumes once it can write again`,
        { retryAfter: 1 },
      );
      this.#failure = { error, reason, lost };
      this.#onFailure(this.#failure);
    } else if (lost) {
      this.#failure.lost = true;
    }
    const error = this.#failure.error;
    for (const entry of [...group, ...this.#written.splice(0), ...this.#queue.splice(0)]) entry.refused(error);
    this.#filling.reset();
  }
}

/**
 * Ends a segment: truncated to its last record when zeros follow it, and fdatasynced when that or a
 * record is not on disk yet. True when it synced records.
 */
async function endSegment(handle: FileHandle, end: number, fileEnd: number, unsynced: boolean): Promise<boolean> {
  const zeroTail = fileEnd > end;
  if (zeroTail) await handle.truncate(end);
  if (zeroTail || unsynced) await handle.datasync();
  return unsynced;
}
