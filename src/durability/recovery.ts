// Start-up: rebuild every retained window from the newest complete checkpoint plus the journal
// records after its cut, replayed into the state backend.
//
// What the bytes may look like, and what is done about it:
// - a checkpoint directory still named .tmp: a crash while writing it; removed, the previous one counts;
// - zeros after the last whole frame of a journal segment: the space the journal keeps zeroed ahead
//   of its records (journal.ts), cut off without a word. Only the newest segment has it after a
//   crash, but one in an older segment is cut off too: it holds no record, and a record lost from
//   there would show as missing from the next segment;
// - a frame cut short at the very end of the newest journal segment (possibly followed by those
//   zeros), with no whole frame after it: a write torn by a crash; that record was never
//   acknowledged, so it is cut off and start-up goes on;
// - damage holding a whole sector of zeros in the newest segment, whole frames after it: a write
//   lost by a power cut while later ones reached the disk. Every record from there on was written
//   after it, so none was acknowledged in fsync mode (its fdatasync would have covered the lost
//   write), and in interval mode they are within what a power cut may lose: cut off, as a torn tail;
// - anything else (a bad checksum, even on the last frame, which was written whole; a missing
//   record; an unreadable checkpoint file): refused, naming file and offset, unless --repair, which keeps every whole
//   frame, reports what it dropped, and checkpoints at once so the damaged files are left behind.

import { open, readFile, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { StateBackend } from '../backend/state-backend.ts';
import { TopTallyError } from '../errors.ts';
import { DecodeError } from './bytes.ts';
import type { WindowKind, WindowRef } from '../window.ts';
import type { Checkpoint } from './checkpoint.ts';
import {
  CHECKPOINTS_DIR,
  JOURNAL_DIR,
  KEYS_FILE,
  list,
  parseCheckpointName,
  parseSegmentName,
  parseWindowFileName,
} from './files.ts';
import { isLostWrite, isZeroTail, scanFrames, type Damage, type Frame } from './frame.ts';
import type { IdempotencyStore } from './idempotency.ts';
import type { Segment } from './journal.ts';
import { decodePayload, type CounterRecord, type Payload } from './records.ts';
import { Replayer } from './replay.ts';
import { WindowSet } from './window-set.ts';

export interface Dropped {
  file: string;
  offset: number;
  bytes: number;
  reason: string;
}

export interface RecoveryReport {
  /** The cut of the checkpoint loaded, or null when there was none. */
  checkpoint: number | null;
  windows: number;
  entries: number;
  snapshotBytes: number;
  segments: number;
  records: number;
  journalBytes: number;
  keys: number;
  /** The torn end of the newest segment, cut off. */
  tornTail: Dropped | null;
  /** What --repair left out. */
  dropped: Dropped[];
  ms: number;
}

export interface Recovered {
  report: RecoveryReport;
  checkpoint: Checkpoint | null;
  lastLsn: number;
  segments: Segment[];
  /** Windows changed by replayed records or by a repair: the next checkpoint writes them. */
  dirty: WindowSet;
}

export interface RecoverOptions {
  dataDir: string;
  repair: boolean;
  backend: StateBackend;
  idempotency: IdempotencyStore;
  /** The oldest retained window of each kind: older ones are not loaded. */
  oldest: Record<WindowKind, number>;
}

export async function recover(options: RecoverOptions): Promise<Recovered> {
  return new Recovery(options).run();
}

class Recovery {
  readonly #options: RecoverOptions;
  readonly #dirty = new WindowSet();
  readonly #report: RecoveryReport = {
    checkpoint: null,
    windows: 0,
    entries: 0,
    snapshotBytes: 0,
    segments: 0,
    records: 0,
    journalBytes: 0,
    keys: 0,
    tornTail: null,
    dropped: [],
    ms: 0,
  };
  readonly #replayer: Replayer;

  constructor(options: RecoverOptions) {
    this.#options = options;
    const { backend } = options;
    this.#replayer = new Replayer({
      partitions: backend.partitions,
      load: (window, index, partition, part) => backend.load(window, index, partition, part),
      apply: (parts, { counters, entries, minutes, lsn }) => backend.replay({ counters, entries, parts, minutes }, { lsn, minutes }),
    });
  }

  async run(): Promise<Recovered> {
    const started = performance.now();
    let checkpoint: Checkpoint | null;
    let journal: { segments: Segment[]; lastLsn: number };
    try {
      checkpoint = await this.#loadCheckpoint();
      journal = await this.#replayJournal(checkpoint?.cut ?? 0);
    } catch (err) {
      // Let what was handed to the shards land before the caller stops them.
      await this.#replayer.settled();
      throw err;
    }
    const cut = checkpoint?.cut ?? 0;
    const { segments, lastLsn } = journal;
    this.#report.checkpoint = checkpoint ? cut : null;
    this.#report.ms = Math.round(performance.now() - started);
    return { report: this.#report, checkpoint, lastLsn: Math.max(cut, lastLsn), segments, dirty: this.#dirty };
  }

  #relative(file: string): string {
    return path.relative(this.#options.dataDir, file);
  }

  /** Refuses to start, or under --repair notes what is left out. */
  #damaged(file: string, offset: number, bytes: number, reason: string): void {
    const where = this.#relative(file);
    if (!this.#options.repair) {
      throw new TopTallyError(
        'TOPTALLY_ERR_DATA_CORRUPT',
        `${path.join(this.#options.dataDir, where)} at offset ${offset}: ${reason}. ` +
          'Start with --repair to keep what is intact and drop the damaged part.',
        { file: where, offset },
      );
    }
    this.#report.dropped.push({ file: where, offset, bytes, reason });
  }

  #decode(file: string, frame: Frame, type: Payload['type']): Payload | undefined {
    try {
      const payload = decodePayload(frame.payload);
      if (payload.type === type) return payload;
      this.#damaged(file, frame.offset, frame.payload.length, `a ${payload.type} record where ${type} records belong`);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.#damaged(file, frame.offset, frame.payload.length, `undecodable record (${err.message})`);
    }
    return undefined;
  }

  async #loadCheckpoint(): Promise<Checkpoint | null> {
    const root = path.join(this.#options.dataDir, CHECKPOINTS_DIR);
    let newest: { name: string; id: number; cut: number } | null = null;
    for (const name of await list(root)) {
      const parsed = parseCheckpointName(name);
      if (!parsed) continue;
      if (!parsed.complete) {
        await rm(path.join(root, name), { recursive: true, force: true });
      } else if (!newest || parsed.id > newest.id) {
        newest = { name, ...parsed };
      }
    }
    if (!newest) return null;
    const dir = path.join(root, newest.name);
    const checkpoint: Checkpoint = { id: newest.id, cut: newest.cut, dir, windows: new Map() };
    for (const name of await list(dir)) {
      const file = path.join(dir, name);
      if (name === KEYS_FILE) {
        await this.#loadKeys(file);
        continue;
      }
      const ref = parseWindowFileName(name);
      if (!ref || ref.index < this.#options.oldest[ref.kind]) continue;
      checkpoint.windows.set(name, ref);
      await this.#loadWindow(file, ref);
    }
    await this.#replayer.landed();
    return checkpoint;
  }

  async #loadKeys(file: string): Promise<void> {
    const data = await readFile(file);
    this.#report.snapshotBytes += data.length;
    for (const item of scan(data)) {
      if ('reason' in item) {
        this.#damaged(file, item.offset, item.bytes, item.reason);
        continue;
      }
      const keys = this.#decode(file, item, 'keys');
      if (keys?.type !== 'keys') continue;
      for (const answer of keys.answers) this.#options.idempotency.remember(answer);
      this.#report.keys += keys.answers.length;
    }
  }

  async #loadWindow(file: string, ref: WindowRef): Promise<void> {
    const data = await readFile(file);
    this.#report.snapshotBytes += data.length;
    this.#report.windows++;
    for (const item of scan(data)) {
      if ('reason' in item) {
        this.#damaged(file, item.offset, item.bytes, item.reason);
        this.#dirty.add(ref);
        continue;
      }
      const chunk = this.#decode(file, item, 'window');
      if (chunk?.type !== 'window') {
        this.#dirty.add(ref);
        continue;
      }
      if (chunk.window !== ref.kind || chunk.index !== ref.index) {
        this.#damaged(file, item.offset, item.payload.length, `holds ${chunk.window} ${chunk.index}, not ${ref.kind} ${ref.index}`);
        this.#dirty.add(ref);
        continue;
      }
      this.#report.entries += chunk.part.entries;
      this.#replayer.window(chunk);
    }
    await this.#replayer.pace();
  }

  async #replayJournal(cut: number): Promise<{ segments: Segment[]; lastLsn: number }> {
    const dir = path.join(this.#options.dataDir, JOURNAL_DIR);
    const names = (await list(dir))
      .map((name) => ({ file: path.join(dir, name), firstLsn: parseSegmentName(name) }))
      .filter((s): s is { file: string; firstLsn: number } => s.firstLsn !== undefined)
      .sort((a, b) => a.firstLsn - b.firstLsn);
    const segments: Segment[] = [];
    let expected = cut + 1;
    let lastLsn = 0;
    for (let i = 0; i < names.length; i++) {
      const { file, firstLsn } = names[i];
      const isNewest = i === names.length - 1;
      if (!isNewest && names[i + 1].firstLsn - 1 <= Math.min(cut, this.#options.backend.journalDroppable?.() ?? Infinity)) {
        await unlink(file); // wholly covered by the checkpoint: a crash came before it was dropped
        continue;
      }
      const data = await readFile(file);
      this.#report.journalBytes += data.length;
      const segment: Segment = { file, firstLsn, lastLsn: firstLsn - 1 };
      for (const item of scan(data)) {
        if ('reason' in item) {
          if (isZeroTail(data, item)) {
            await truncate(file, item.offset);
            this.#report.journalBytes -= item.bytes;
          } else if (isNewest && item.torn) await this.#cutTornTail(file, item);
          else if (isNewest && isLostWrite(data, item)) {
            // What follows was written after the lost write, so its fdatasync had not finished either.
            const reason = `${item.reason}, with a sector of zeros: a write lost by a power cut; the ${data.length - item.offset - item.bytes} bytes after it were written later`;
            await this.#cutTornTail(file, { offset: item.offset, bytes: data.length - item.offset, reason });
            break;
          } else this.#damaged(file, item.offset, item.bytes, item.reason);
          continue;
        }
        const record = this.#decode(file, item, 'counters');
        if (record?.type !== 'counters') continue;
        if (record.lsn > cut && record.lsn !== expected) {
          const reason =
            record.lsn > expected
              ? `records ${expected} to ${record.lsn - 1} are missing before this one`
              : `record ${record.lsn} is out of order (expected ${expected})`;
          this.#damaged(file, item.offset, 0, reason);
          if (record.lsn < expected) continue;
        }
        segment.lastLsn = record.lsn;
        lastLsn = Math.max(lastLsn, record.lsn);
        if (record.lsn <= cut) continue;
        expected = record.lsn + 1;
        this.#replay(record);
        await this.#replayer.pace();
      }
      await this.#replayer.landed();
      if (segment.lastLsn < firstLsn) {
        await unlink(file); // nothing whole in it: created just before a crash
      } else {
        segments.push(segment);
        this.#report.segments++;
      }
    }
    return { segments, lastLsn };
  }

  #replay(record: CounterRecord): void {
    const { counters, entries, minutes } = record;
    this.#dirty.addMinutes(minutes);
    if (record.key) {
      const { key, fingerprint } = record.key;
      this.#options.idempotency.remember({ key, fingerprint, atMs: record.atMs, accepted: counters, counters: entries });
    }
    this.#report.records++;
    this.#replayer.record(record);
  }

  async #cutTornTail(file: string, torn: { offset: number; bytes: number; reason: string }): Promise<void> {
    await truncate(file, torn.offset);
    this.#report.tornTail = { file: this.#relative(file), offset: torn.offset, bytes: torn.bytes, reason: torn.reason };
  }
}

type ScanItem = Frame | Damage;

/** Whole frames and damaged stretches, in file order, so the first problem is the one reported. */
function scan(data: Buffer): ScanItem[] {
  const { frames, damage } = scanFrames(data);
  const items: ScanItem[] = [...frames, ...damage];
  return items.sort((a, b) => a.offset - b.offset);
}

async function truncate(file: string, length: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.truncate(length);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
