// Where windows live, as the rest of the service sees it. Ingest admits and applies batches through
// it, queries ask it for partial top-Ns, durability exports and loads it, operations read its census.
// The in-process shard workers (LocalBackend) are one implementation; a backend whose windows live
// on other machines too implements the same calls and raises `changedElsewhere` for what other
// instances changed, so the stats cache and the publisher stay current.

import type { EventEmitter } from 'node:events';
import type { Census, ExportedWindow, TopEntries, WindowTotal } from '../protocol/messages.ts';
import type { ShardPart } from '../protocol/shard-part.ts';
import type { Partitioned } from '../routing/partition.ts';
import type { WindowKind } from '../window.ts';

/** Where a batch sits in this instance's journal: what a backend tracks its flush watermark by. */
export interface JournalPosition {
  lsn: number;
  /** The minute indexes the record touches (their hours follow). */
  minutes: readonly number[];
}

/** A batch let in by admit(): it counts against the backend's bounds until applied or released. */
export interface Admission {
  /**
   * Raises `touched`, hands the batch to its partitions and resolves once it is safe to acknowledge:
   * once a query asked after the acknowledgement would see it. A journaled batch (`journaled` is its
   * position) may be acknowledged before it is applied, since a rebuild replays it; without a journal
   * (null), once no later answer can miss it (every partition applied it, or, where queries queue
   * behind what was handed over, once handed over).
   */
  apply(journaled: JournalPosition | null): Promise<void>;
  /** Gives the reservation back when the batch will not be applied (the journal refused it). */
  release(): void;
}

/** A journal record replayed: its batch as ingest partitioned it (the sums are not journaled). */
export type Replayed = Omit<Partitioned, 'sums'>;

/** What one partition owes, for /metrics. */
export interface PartitionLoad {
  partition: number;
  /** Requests sent and not yet answered. */
  pending: number;
  /** Bytes of counters queued and not yet applied. */
  backlogBytes: number;
}

export interface BackendEvents {
  /** Windows of these minutes (and their hours) are about to change through this instance. */
  touched: [minutes: readonly number[]];
  /** Windows of these minutes (and their hours) changed through another instance. */
  changedElsewhere: [minutes: readonly number[]];
}

export interface StateBackend extends Pick<EventEmitter<BackendEvents>, 'on' | 'off' | 'once'> {
  /** How many partitions a batch is split into: parts[p] of a Partitioned belongs to partition p. */
  readonly partitions: number;

  /**
   * Throws a 503 (TOPTALLY_ERR_SHARD_UNAVAILABLE, TOPTALLY_ERR_OVERLOADED) when a partition holding
   * part of the batch cannot take it now, else reserves room for it. Called before the batch is
   * recorded anywhere, so a refused batch leaves no trace.
   */
  admit(batch: Partitioned): Admission;
  /**
   * After Admission.apply failed with TOPTALLY_ERR_SHARD_UNAVAILABLE for `partition`: resolves
   * true once that partition is back with every batch it was handed (so a journaled batch counts),
   * false when it came back empty or the backend stops first.
   */
  restored(partition: number): Promise<boolean>;

  /**
   * Each partition's partial top of a window: its `limit` largest (more when counts tie at the
   * boundary), sorted by count descending then domain, with the partition's total and size.
   * query/merge.ts merges them exactly, since every domain lives in one partition.
   */
  top(window: WindowKind, index: number, limit: number): Promise<TopEntries[]>;
  /** Drops windows older than these indexes. */
  retain(oldestMinute: number, oldestHour: number): void;

  /** For a checkpoint: exported[p][i] is partition p's part of windows[i], as of this call. */
  export(windows: { window: WindowKind; index: number }[]): Promise<ExportedWindow[][]>;
  /** From a checkpoint: adds a partition's part of a window to that window alone. */
  load(window: WindowKind, index: number, partition: number, part: ShardPart): Promise<void>;
  /** From the journal at start-up: applies a record again; resolves once every partition has. */
  replay(batch: Replayed, at: JournalPosition): Promise<void>;
  /** Per partition: the total of every window it holds (ingest bounds totals with them). */
  totals(): Promise<WindowTotal[][]>;

  /** Partitions that cannot serve now (readiness names them). */
  unavailable(): number[];
  /** Per partition: what it owes now. */
  owed(): PartitionLoad[];
  /** Per partition: what it holds, or null for one that did not answer. */
  census(): Promise<(Census | null)[]>;

  /**
   * The highest LSN the journal may drop, for a backend that forwards journaled batches elsewhere
   * and needs them until they have arrived (cluster mode: see src/cluster/flusher.ts). Without it,
   * a checkpoint drops whatever it covers.
   */
  journalDroppable?(): number;

  /**
   * Whether an answer for a window still open may be served from the stats cache now: only when
   * every change to a window raises `touched` before a query could see it, or `changedElsewhere`
   * promptly after. Without it, only closed windows are cached.
   */
  openCacheable?(): boolean;

  /** Stops every partition; what was handed to them before is applied first. */
  stop(): Promise<void>;
}
