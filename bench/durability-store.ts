/**
 * The measurement behind the storage choice in docs/design.md: the same durable writes through
 * toptally's append-only journal and through lmdb, used either as a log or as the counter store.
 *
 *   node --import tsx bench/durability-store.ts [--seconds 3] [--producers 32]
 *
 * Each record is one request of the bench's B shape (100 counters x 5 Zipf domains = 500 entries, in
 * two shards' parts, as the journal writes it).
 * `producers` writers each wait for their record to be durable (fsynced) before writing the next,
 * as HTTP clients wait for their acknowledgement. Then everything written is read back, as a
 * recovery would. No server, no network: the storage path alone.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { open as openLmdb } from 'lmdb';
import { FRAME_HEADER_BYTES, scanFrames } from '../src/durability/frame.ts';
import { Journal } from '../src/durability/journal.ts';
import { decodePayload, encodeCounters, writeCounters, type CounterRecord } from '../src/durability/records.ts';
import { PartBuilder } from '../src/protocol/shard-part.ts';
import { hashDomain, shardOf } from '../src/routing/hash.ts';
import { domainName, mulberry32, Zipf } from './lib/prng.js';

const { values: flags } = parseArgs({
  options: { seconds: { type: 'string', default: '3' }, producers: { type: 'string', default: '32' } },
});
const seconds = Number(flags.seconds);
const producers = Number(flags.producers);

const SHARDS = 2;
const random = mulberry32(42);
const zipf = new Zipf(10_000);
const minute = Math.floor(Date.now() / 60_000);

interface Sample {
  record: CounterRecord;
  /** The same entries as [domain, count, minute], for the lmdb counter store. */
  entries: [string, number, number][];
}

function makeSample(): Sample {
  const entries: [string, number, number][] = [];
  const builders: (PartBuilder | undefined)[] = new Array(SHARDS);
  for (let i = 0; i < 500; i++) {
    const domain = domainName(zipf.sample(random));
    const count = 1 + Math.floor(random() * 10);
    const hash = hashDomain(domain);
    (builders[shardOf(hash, SHARDS)] ??= new PartBuilder()).add(domain, hash, count, minute);
    entries.push([domain, count, minute]);
  }
  const parts = Array.from(builders, (b) => b?.finish());
  return { record: { lsn: 0, atMs: Date.now(), counters: 100, entries: 500, shards: SHARDS, parts, minutes: [minute] }, entries };
}
const pool = Array.from({ length: 256 }, makeSample);
const recordFor = (lsn: number): CounterRecord => ({ ...pool[lsn % pool.length]!.record, lsn });

interface Result {
  store: string;
  records: number;
  writeS: number;
  diskBytes: number;
  readMs: number;
}

function diskBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

/** Runs `producers` loops of `write` until the deadline; returns how many records were written. */
async function drive(write: (lsn: () => number) => Promise<void>): Promise<{ records: number; writeS: number }> {
  let next = 1;
  const lsn = (): number => next++;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: producers }, async () => {
      while (performance.now() < deadline) await write(lsn);
    }),
  );
  return { records: next - 1, writeS: (performance.now() - started) / 1000 };
}

async function appendLog(dir: string): Promise<Result> {
  const journal = new Journal(dir, 'fsync', 0, [], (err) => {
    throw err;
  });
  const { records, writeS } = await drive((count) => {
    count();
    return new Promise<void>((resolve, reject) =>
      journal.append({ encode: (lsn, into) => writeCounters(into, recordFor(lsn), lsn), durable: () => resolve(), refused: reject }),
    );
  });
  await journal.close();
  const started = performance.now();
  let entries = 0;
  for (const name of readdirSync(dir)) {
    for (const frame of scanFrames(readFileSync(path.join(dir, name))).frames) {
      const record = decodePayload(frame.payload);
      if (record.type === 'counters') entries += record.entries;
    }
  }
  if (entries !== records * 500) throw new Error(`read ${entries} entries, wrote ${records * 500}`);
  return { store: 'append-only journal (this service)', records, writeS, diskBytes: diskBytes(dir), readMs: performance.now() - started };
}

async function lmdbLog(dir: string): Promise<Result> {
  const db = openLmdb<Buffer, number>({ path: dir, encoding: 'binary' });
  const { records, writeS } = await drive(async (lsn) => {
    const n = lsn();
    await db.put(n, encodeCounters(recordFor(n)));
    await db.flushed;
  });
  const started = performance.now();
  let entries = 0;
  for (const { value } of db.getRange()) {
    const record = decodePayload(value.subarray(FRAME_HEADER_BYTES));
    if (record.type === 'counters') entries += record.entries;
  }
  if (entries !== records * 500) throw new Error(`read ${entries} entries, wrote ${records * 500}`);
  const readMs = performance.now() - started;
  await db.close();
  return { store: 'lmdb as the journal (key = LSN)', records, writeS, diskBytes: diskBytes(dir), readMs };
}

async function lmdbCounters(dir: string): Promise<Result> {
  const db = openLmdb<number, string>({ path: dir });
  const { records, writeS } = await drive(async (lsn) => {
    const { entries } = pool[lsn() % pool.length]!;
    await db.transaction(() => {
      for (const [domain, count, m] of entries) {
        for (const key of [`m:${m}:${domain}`, `h:${Math.floor(m / 60)}:${domain}`]) db.put(key, (db.get(key) ?? 0) + count);
      }
    });
    await db.flushed;
  });
  const started = performance.now();
  let total = 0;
  for (const { key, value } of db.getRange()) if (key.startsWith('m:')) total += value;
  const readMs = performance.now() - started;
  let expected = 0;
  for (let n = 1; n <= records; n++) for (const [, count] of pool[n % pool.length]!.entries) expected += count;
  if (total !== expected) throw new Error(`read a total of ${total}, wrote ${expected}`);
  await db.close();
  return { store: 'lmdb as the counter store (key = window:domain)', records, writeS, diskBytes: diskBytes(dir), readMs };
}

const results: Result[] = [];
for (const run of [appendLog, lmdbLog, lmdbCounters]) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'toptally-store-'));
  try {
    process.stderr.write(`${run.name}: ${seconds} s, ${producers} producers\n`);
    results.push(await run(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
process.stdout.write(
  [
    `## Durable writes of 500-entry records, ${producers} producers each waiting for its fsync, ${seconds} s (Node ${process.version})`,
    '',
    '| store | records/s | entries/s | disk per record | read back (recovery) |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...results.map(
      (r) =>
        `| ${r.store} | ${fmt(r.records / r.writeS)} | ${fmt((r.records * 500) / r.writeS)} | ` +
        `${fmt(r.diskBytes / r.records)} B | ${fmt(r.readMs)} ms for ${fmt(r.records)} records |`,
    ),
    '',
  ].join('\n'),
);
