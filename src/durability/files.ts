// The data directory's layout and the few file operations that make writes durable.
//
//   <data-dir>/journal/<first LSN>.log         counter records since the last checkpoint
//   <data-dir>/checkpoints/<id>-<cut LSN>/     one complete checkpoint: every retained window up to
//       minute-<index>.win, hour-<index>.win   the cut, plus the live idempotency keys
//       keys.idem
//   <data-dir>/checkpoints/<id>-<cut>.tmp/     a checkpoint being written (ignored and removed on start)

import { open, readdir } from 'node:fs/promises';
import type { WindowKind } from '../window.ts';

export const JOURNAL_DIR = 'journal';
export const CHECKPOINTS_DIR = 'checkpoints';
export const KEYS_FILE = 'keys.idem';

const pad = (n: number): string => String(n).padStart(16, '0');

export const segmentName = (firstLsn: number): string => `${pad(firstLsn)}.log`;

export function parseSegmentName(name: string): number | undefined {
  const match = /^([0-9]{16})\.log$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** Checkpoints are numbered (two may share a cut when only the retention moved) and carry their cut. */
export const checkpointName = (id: number, cut: number): string => `${String(id).padStart(10, '0')}-${pad(cut)}`;

export function parseCheckpointName(name: string): { id: number; cut: number; complete: boolean } | undefined {
  const match = /^([0-9]{10})-([0-9]{16})(\.tmp)?$/.exec(name);
  return match ? { id: Number(match[1]), cut: Number(match[2]), complete: match[3] === undefined } : undefined;
}

export const windowFileName = (kind: WindowKind, index: number): string => `${kind}-${index}.win`;

export function parseWindowFileName(name: string): { kind: WindowKind; index: number } | undefined {
  const match = /^(minute|hour)-(-?[0-9]+)\.win$/.exec(name);
  return match ? { kind: match[1] as WindowKind, index: Number(match[2]) } : undefined;
}

/** Entries of a directory that may not exist yet. */
export async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Makes a directory's entries (created, renamed or removed files) survive a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes the buffers to a new file and fsyncs it. */
export async function writeDurably(file: string, buffers: readonly Uint8Array[]): Promise<number> {
  const handle = await open(file, 'wx');
  let bytes = 0;
  try {
    for (const buffer of buffers) {
      await handle.writeFile(buffer);
      bytes += buffer.length;
    }
    await handle.datasync();
  } finally {
    await handle.close();
  }
  return bytes;
}
