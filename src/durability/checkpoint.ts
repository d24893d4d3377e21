// Writing a checkpoint: a directory holding every retained window as of the cut, plus the live
// idempotency keys. Windows that changed since the last checkpoint are written from what the shards
// packed; the others are hard links to the last checkpoint's files, so a checkpoint costs what
// changed, not what is retained. The directory is written under a .tmp name, fsynced and renamed:
// a checkpoint is either complete on disk or ignored.

import { link, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as yieldTurn } from 'node:timers/promises';
import type { ExportedWindow } from '../protocol/messages.ts';
import type { WindowKind, WindowRef } from '../window.ts';
import {
  CHECKPOINTS_DIR,
  checkpointName,
  fsyncDir,
  KEYS_FILE,
  list,
  windowFileName,
  writeDurably,
} from './files.ts';
import { encodeKeys, encodeWindowChunk, type KeyedAnswer } from './records.ts';

const KEYS_PER_FRAME = 10_000;

export interface Checkpoint {
  id: number;
  cut: number;
  dir: string;
  /** The window files it holds, by name. */
  windows: Map<string, WindowRef>;
}

export interface CheckpointContent {
  cut: number;
  /** The windows that changed since the previous checkpoint… */
  changed: WindowRef[];
  /** …and their entries: exported[shard][i] is that shard's part of changed[i]. */
  exported: ExportedWindow[][];
  answers: KeyedAnswer[];
  oldest: Record<WindowKind, number>;
}

export async function writeCheckpoint(dataDir: string, previous: Checkpoint | null, content: CheckpointContent): Promise<Checkpoint> {
  const id = (previous?.id ?? 0) + 1;
  const root = path.join(dataDir, CHECKPOINTS_DIR);
  const dir = path.join(root, checkpointName(id, content.cut));
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });

  const windows = new Map<string, WindowRef>();
  const rewritten = new Set<string>();
  const shards = content.exported.length;
  for (let i = 0; i < content.changed.length; i++) {
    const { kind, index } = content.changed[i];
    const file = windowFileName(kind, index);
    rewritten.add(file);
    const frames: Buffer[] = [];
    for (let shard = 0; shard < shards; shard++) {
      for (const part of content.exported[shard][i].parts) {
        frames.push(encodeWindowChunk({ window: kind, index, shard, shards, part }));
        // Yielding between chunks (up to 65,536 entries each) keeps a large window from holding up the
        // event loop, and the queries behind it, while it is encoded (docs/performance.md).
        await yieldTurn();
      }
    }
    if (frames.length === 0) continue;
    await writeDurably(path.join(tmp, file), frames);
    windows.set(file, { kind, index });
  }
  for (const [file, ref] of previous?.windows ?? []) {
    if (rewritten.has(file) || ref.index < content.oldest[ref.kind]) continue;
    await link(path.join(previous!.dir, file), path.join(tmp, file));
    windows.set(file, ref);
  }
  const keyFrames: Buffer[] = [];
  for (let i = 0; i < content.answers.length; i += KEYS_PER_FRAME) {
    keyFrames.push(encodeKeys(content.answers.slice(i, i + KEYS_PER_FRAME)));
  }
  await writeDurably(path.join(tmp, KEYS_FILE), keyFrames);

  await fsyncDir(tmp);
  await rename(tmp, dir);
  await fsyncDir(root);
  return { id, cut: content.cut, dir, windows };
}

/** Removes every checkpoint directory but `keep` (its files live on through their links). */
export async function removeCheckpointsBut(dataDir: string, keep: Checkpoint | null): Promise<void> {
  const root = path.join(dataDir, CHECKPOINTS_DIR);
  for (const name of await list(root)) {
    const dir = path.join(root, name);
    if (dir !== keep?.dir) await rm(dir, { recursive: true, force: true });
  }
}
