// One process per data directory: two would append to the same journal and each replay only what it
// wrote. The lock is a file naming its holder, created atomically (written aside, then linked into
// place, so nobody ever reads a half-written one). A holder that died without removing it (kill -9)
// leaves a stale lock, recognised because its pid is gone or, on Linux, belongs to a process that
// started at another time (a pid reused, or pid 1 again in a restarted container).

import { link, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TopTallyError } from '../errors.ts';

export const LOCK_FILE = 'toptally.lock';

interface Holder {
  pid: number;
  /** The process's start time in clock ticks since boot (Linux), or null where unknown. */
  started: string | null;
}

/** Directories this process holds: a pid check cannot tell two servers of one process apart. */
const held = new Set<string>();

export class DataDirLock {
  readonly #file: string;
  readonly #dir: string;

  private constructor(file: string, dir: string) {
    this.#file = file;
    this.#dir = dir;
  }

  /** Takes the lock of `dir` (which exists), or throws TOPTALLY_ERR_DATA_DIR_IN_USE naming the holder. */
  static async acquire(dir: string): Promise<DataDirLock> {
    const real = await realpath(dir);
    const file = path.join(real, LOCK_FILE);
    if (held.has(real)) throw inUse(dir, file, process.pid);
    const me: Holder = { pid: process.pid, started: startTime(process.pid) };
    const aside = `${file}.${process.pid}.${Date.now()}`;
    await writeFile(aside, JSON.stringify(me) + '\n');
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await link(aside, file);
          held.add(real);
          return new DataDirLock(file, real);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const holder = await readHolder(file);
        if (holder && alive(holder)) throw inUse(dir, file, holder.pid);
        await rm(file, { force: true });
      }
      throw new Error(`cannot take the lock ${file}: it keeps coming back`);
    } finally {
      await rm(aside, { force: true });
    }
  }

  /** Removes the lock file, unless another process has taken it over meanwhile. */
  async release(): Promise<void> {
    if (!held.delete(this.#dir)) return;
    const holder = await readHolder(this.#file);
    if (holder?.pid === process.pid) await rm(this.#file, { force: true });
  }
}

async function readHolder(file: string): Promise<Holder | null> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<Holder>;
    return typeof parsed.pid === 'number' ? { pid: parsed.pid, started: parsed.started ?? null } : null;
  } catch {
    return null; // gone, or not ours to read: stale
  }
}

function alive(holder: Holder): boolean {
  // Our own pid in a lock we do not hold was left by an earlier process that had this pid.
  if (holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const started = startTime(holder.pid);
  return holder.started === null || started === null || started === holder.started;
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function inUse(dir: string, file: string, pid: number): TopTallyError {
  return new TopTallyError(
    'TOPTALLY_ERR_DATA_DIR_IN_USE',
    `the data directory ${dir} is in use by another toptally (pid ${pid}, see ${file}); stop it, or start with another --data-dir`,
    { pid, file },
  );
}
