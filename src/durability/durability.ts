// The durability layer as the rest of the service sees it: recovery on open, commit on the ingest
// path (journal, then apply), checkpoints that bound the journal and drop what left the retention,
// and the idempotency keys. In mode off there is no journal and nothing touches the disk.
//
// When the journal fails (a write or fsync fails, or the segment being written is deleted or
// replaced), ingest is refused with 503 and Retry-After, /readyz says why, and a repair is tried at
// once and then every second: end the failed segment, checkpoint everything applied (it may be on
// disk nowhere else), and take appends again in a new segment.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { StateBackend } from '../backend/state-backend.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { oldestRetained, type Retention } from '../retention.ts';
import type { ExportedWindow } from '../protocol/messages.ts';
import type { ShardHandle } from '../shards/shard-handle.ts';
import type { WindowKind, WindowRef } from '../window.ts';
import { removeCheckpointsBut, writeCheckpoint, type Checkpoint } from './checkpoint.ts';
import { DataDirLock } from './data-dir-lock.ts';
import { CHECKPOINTS_DIR, JOURNAL_DIR } from './files.ts';
import { IdempotencyStore } from './idempotency.ts';
import { Commit } from './commit.ts';
import { Journal, type DurabilityMode, type JournalFailure, type JournalStats, type Segment } from './journal.ts';
import type { CounterRecord, KeyedAnswer } from './records.ts';
import { recover, type Recovered, type RecoveryReport } from './recovery.ts';
import { rebuildShard } from './shard-rebuild.ts';
import { WindowSet } from './window-set.ts';

/**
 * A checkpoint runs without waiting for the next minute once the journal has grown by this many
 * bytes or records since the last one. Bytes bound the disk it takes; records bound the time a
 * recovery takes to replay it, which for small records is set by their number, not their size
 * (see docs/design.md for the figures).
 */
export const CHECKPOINT_BYTES = 128 * 2 ** 20;
export const CHECKPOINT_RECORDS = 50_000;

export interface CheckpointBudget {
  bytes: number;
  records: number;
}

/** Between repair attempts of a failed journal; the first is made at once. */
const REPAIR_RETRY_MS = 1000;

export interface DurabilityConfig {
  dataDir: string;
  mode: DurabilityMode;
  repair: boolean;
  /** When a checkpoint runs besides each minute (default CHECKPOINT_BYTES, CHECKPOINT_RECORDS). */
  checkpointEvery?: CheckpointBudget;
}

export interface DurabilityDeps {
  backend: StateBackend;
  clock: Clock;
  retention: Retention;
  log: Logger;
  /** Told how long each journal group took to become durable: its fsync in fsync mode, its write in interval mode. */
  flushed?: (seconds: number) => void;
}

export class Durability {
  readonly idempotency: IdempotencyStore;
  /** What start-up recovered, or null in mode off. */
  readonly recovery: RecoveryReport | null;
  readonly #config: DurabilityConfig;
  readonly #deps: DurabilityDeps;
  readonly #journal: Journal | null;
  #checkpoint: Checkpoint | null;
  readonly #dirty: WindowSet;
  #chain: Promise<void> = Promise.resolve();
  #queued = false;
  #closing = false;
  /** The journal's counters at the last checkpoint's cut. */
  #cutAt = { bytes: 0, records: 0 };
  #repairTimer: NodeJS.Timeout | null = null;
  /** The last reason a repair failed, so that it is logged once, not every second. */
  #repairFailure = '';
  #writable: (() => void)[] = [];
  /** Held from open to close: one process per data directory. */
  #lock: DataDirLock | null = null;

  private constructor(
    config: DurabilityConfig,
    deps: DurabilityDeps,
    idempotency: IdempotencyStore,
    journal: Journal | null,
    recovered: Recovered | null,
  ) {
    this.#config = config;
    this.#deps = deps;
    this.idempotency = idempotency;
    this.#journal = journal;
    this.recovery = recovered?.report ?? null;
    this.#checkpoint = recovered?.checkpoint ?? null;
    this.#dirty = recovered?.dirty ?? new WindowSet();
  }

  /** Why ingest is refused because of the journal (for /readyz), or null. */
  get journalProblem(): string | null {
    const failure = this.#journal?.failure;
    if (!failure) return null;
    return failure.lost ? `segment lost (${failure.reason}); checkpointing into a new one` : `cannot write (${failure.reason}); retrying every second`;
  }

  /** Resolves once the journal takes appends: at once, unless it failed and is not repaired yet. */
  whenWritable(): Promise<void> {
    if (!this.#journal?.failure) return Promise.resolve();
    return new Promise((resolve) => this.#writable.push(resolve));
  }

  /** Whether ingest is journaled: false in mode off, where the shards' memory is all there is. */
  get journaled(): boolean {
    return this.#journal !== null;
  }

  /** The journal's segments now, oldest first (empty in mode off). */
  get journalSegments(): readonly Segment[] {
    return this.#journal?.segments ?? [];
  }

  /** The LSN of the last record journaled and applied (0 in mode off). */
  get journalLsn(): number {
    return this.#journal?.appliedLsn ?? 0;
  }

  /** Recovers what the data directory holds into the shards; call before serving anything. */
  static async open(config: DurabilityConfig, deps: DurabilityDeps): Promise<Durability> {
    const idempotency = new IdempotencyStore(deps.clock);
    if (config.mode === 'off') return new Durability(config, deps, idempotency, null, null);
    await mkdir(config.dataDir, { recursive: true });
    const lock = await DataDirLock.acquire(config.dataDir);
    try {
      const durability = await Durability.#openLocked({ ...config, mode: config.mode }, deps, idempotency);
      durability.#lock = lock;
      return durability;
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  static async #openLocked(config: DurabilityConfig & { mode: 'fsync' | 'interval' }, deps: DurabilityDeps, idempotency: IdempotencyStore): Promise<Durability> {
    await mkdir(path.join(config.dataDir, JOURNAL_DIR), { recursive: true });
    await mkdir(path.join(config.dataDir, CHECKPOINTS_DIR), { recursive: true });
    const recovered = await recover({
      dataDir: config.dataDir,
      repair: config.repair,
      backend: deps.backend,
      idempotency,
      oldest: oldest(deps),
    });
    let durability: Durability | undefined;
    const journal = new Journal(
      path.join(config.dataDir, JOURNAL_DIR),
      config.mode,
      recovered.lastLsn,
      recovered.segments,
      // Only a write can fail, and none is made before the constructor below has run.
      (failure) => durability!.#journalFailed(failure),
      deps.flushed,
    );
    durability = new Durability(config, deps, idempotency, journal, recovered);
    durability.#logRecovery(recovered.report);
    // A repair rewrites what it kept into a fresh checkpoint, which leaves the damaged files behind.
    if (recovered.report.dropped.length > 0) await durability.checkpoint();
    return durability;
  }

  /**
   * Journals the record, then calls `apply` with its LSN (null in mode off), in journal order, and
   * resolves once what `apply` returned has: the caller may acknowledge then. Its key, if any, is answered from now on.
   */
  commit(record: Omit<CounterRecord, 'lsn'>, apply: (lsn: number | null) => Promise<void>): Promise<void> {
    const journal = this.#journal;
    // Without a journal the shards' memory is all there is: a key is answered from once they hold
    // the counters, so a retry after a shard died with them is counted.
    if (!journal) return apply(null).then(() => this.#remember(record));
    const committed = new Promise<void>((resolve, reject) => journal.append(new Commit(record, apply, this.#durable, resolve, reject)));
    const budget = this.#config.checkpointEvery ?? { bytes: CHECKPOINT_BYTES, records: CHECKPOINT_RECORDS };
    if (journal.bytesWritten - this.#cutAt.bytes >= budget.bytes || journal.stats.records - this.#cutAt.records >= budget.records) {
      this.#checkpointSoon();
    }
    return committed;
  }

  /** Called when a minute closes: forget expired keys, and checkpoint if anything changed. */
  minuteClosed(): void {
    this.idempotency.prune();
    const journal = this.#journal;
    if (!journal) return;
    const cut = this.#checkpoint?.cut ?? 0;
    const oldestNow = oldest(this.#deps);
    const expired = [...(this.#checkpoint?.windows.values() ?? [])].some((ref) => ref.index < oldestNow[ref.kind]);
    if (journal.appliedLsn > cut || expired) this.#checkpointSoon();
  }

  /** Writes a checkpoint of everything applied so far, then drops the journal it covers. */
  checkpoint(): Promise<void> {
    const run = this.#chain.then(() => this.#checkpointOnce());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Fills the replacement of a shard worker that died with that shard's windows, from the newest
   * checkpoint and the journal; false in mode off, where nothing was kept. It runs between
   * checkpoints (which could not export the dead shard anyway), on a journal cut: every record up
   * to the cut is on disk, and none after it holds a part for this shard, since ingest for a dead
   * shard is refused before it is journaled and the pool waits for those admitted before the death.
   */
  rebuildShard(shard: number, handle: ShardHandle): Promise<boolean> {
    const journal = this.#journal;
    if (!journal) return Promise.resolve(false);
    const run = this.#chain.then(async () => {
      const started = performance.now();
      let upTo = 0;
      let segments: Segment[] = [];
      await journal.cut((appliedLsn) => {
        upTo = appliedLsn;
        segments = [...journal.segments];
      });
      const { backend, log } = this.#deps;
      const rebuilt = await rebuildShard({ shard, shards: backend.partitions, handle, checkpoint: this.#checkpoint, segments, upTo, oldest: oldest(this.#deps) });
      log.info({ shard, ...rebuilt, upTo, ms: Math.round(performance.now() - started) }, `shard ${shard} rebuilt from ${this.#config.dataDir}`);
      return true;
    });
    this.#chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Waits for checkpoints under way, writes out the journal and closes it; says what it wrote. */
  async close(): Promise<JournalStats | null> {
    this.#closing = true;
    if (this.#repairTimer) clearTimeout(this.#repairTimer);
    await this.#chain;
    await this.#journal?.close();
    await this.#lock?.release();
    return this.#journal?.stats ?? null;
  }

  /** A journaled record is durable: what a checkpoint must cover, and its key's answer. */
  readonly #durable = (record: Omit<CounterRecord, 'lsn'>): void => {
    this.#dirty.addMinutes(record.minutes);
    this.#remember(record);
  };

  #remember(record: Omit<CounterRecord, 'lsn'>): void {
    if (!record.key) return;
    const answer: KeyedAnswer = { ...record.key, atMs: record.atMs, accepted: record.counters, counters: record.entries };
    this.idempotency.remember(answer);
  }

  #checkpointSoon(): void {
    if (this.#queued || this.#closing) return;
    this.#queued = true;
    this.checkpoint().catch((err: Error) => this.#deps.log.error({ err }, 'checkpoint failed; will retry'));
  }

  async #checkpointOnce(): Promise<void> {
    this.#queued = false;
    const journal = this.#journal;
    if (!journal) return;
    const started = performance.now();
    const oldestNow = oldest(this.#deps);
    let cut = 0;
    let cutAt = this.#cutAt;
    let changed: WindowRef[] = [];
    let answers: KeyedAnswer[] = [];
    let exporting: Promise<ExportedWindow[][]> | undefined;
    // Between two journal groups: the export requests reach every shard after the records up to
    // the cut and before any later one, so the snapshot holds exactly the records up to the cut.
    await journal.cut((appliedLsn) => {
      cut = appliedLsn;
      cutAt = { bytes: journal.bytesWritten, records: journal.stats.records };
      changed = this.#dirty.take().filter((ref) => ref.index >= oldestNow[ref.kind]);
      answers = this.idempotency.answers();
      exporting = this.#deps.backend.export(changed.map(({ kind, index }) => ({ window: kind, index })));
    });
    try {
      const exported = await exporting!;
      const previous = this.#checkpoint;
      this.#checkpoint = await writeCheckpoint(this.#config.dataDir, previous, { cut, changed, exported, answers, oldest: oldestNow });
      this.#cutAt = cutAt;
    } catch (err) {
      for (const ref of changed) this.#dirty.add(ref);
      throw err;
    }
    await journal.drop(Math.min(cut, this.#deps.backend.journalDroppable?.() ?? Infinity));
    await removeCheckpointsBut(this.#config.dataDir, this.#checkpoint);
    this.#deps.log.debug(
      { cut, changed: changed.length, windows: this.#checkpoint.windows.size, keys: answers.length, ms: Math.round(performance.now() - started) },
      'checkpoint written',
    );
  }

  #journalFailed({ reason, lost }: JournalFailure): void {
    const { log } = this.#deps;
    if (lost) log.error({ reason }, 'journal segment deleted or replaced: checkpointing what is in memory into a new segment before acknowledging more');
    else log.error({ reason }, 'journal cannot write: ingest answers 503 with Retry-After and /readyz is not ready until it can; retrying every second');
    this.#repairFailure = '';
    this.#scheduleRepair(0);
  }

  #scheduleRepair(delayMs: number): void {
    if (this.#repairTimer || this.#closing) return;
    this.#repairTimer = setTimeout(() => {
      this.#repairTimer = null;
      this.#repair().then(
        () => this.#deps.log.warn('journal writes again: ingest resumed'),
        (err: Error) => {
          if (err.message !== this.#repairFailure) this.#deps.log.warn({ err }, 'journal still cannot write; retrying every second');
          this.#repairFailure = err.message;
          this.#scheduleRepair(REPAIR_RETRY_MS);
        },
      );
    }, delayMs);
  }

  /** End the failed segment, make what was applied durable by a checkpoint, take appends again. */
  async #repair(): Promise<void> {
    const journal = this.#journal!;
    await journal.endFailedSegment();
    await this.checkpoint();
    if (this.#closing) return;
    journal.resume();
    for (const resolve of this.#writable.splice(0)) resolve();
  }

  /** Warnings for what recovery cut off or dropped; the summary goes in the start-up line. */
  #logRecovery(report: RecoveryReport): void {
    const { log } = this.#deps;
    if (report.tornTail) {
      const { file, offset, bytes, reason } = report.tornTail;
      log.warn({ tornTail: report.tornTail }, `discarded a torn record at the end of ${file} (offset ${offset}, ${bytes} bytes: ${reason})`);
    }
    for (const { file, offset, bytes, reason } of report.dropped) {
      log.error({ file, offset, bytes, reason }, `repair dropped ${bytes} bytes of ${file} at offset ${offset}: ${reason}`);
    }
  }
}

function oldest({ clock, retention }: DurabilityDeps): Record<WindowKind, number> {
  const now = Math.floor(clock.now() / 1000);
  return { minute: oldestRetained(retention, 'minute', now), hour: oldestRetained(retention, 'hour', now) };
}
