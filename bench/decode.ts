/**
 * The decode step alone, in one thread: request body bytes to per-shard parts, through the slow path
 * (TextDecoder + JSON.parse + validate) and the byte scanner (src/ingest/fast-decode.ts).
 *
 *   node --import tsx bench/decode.ts [--repeats 7] [--ms 100]
 *
 * Bodies are the load bench's seeded S and B shapes (bench/lib/data.ts). Each repeat times both paths
 * over the same pool for about `ms` each, alternating which goes first; the table shows the median
 * of the repeats in µs per body. No server, no other threads.
 */
import { parseArgs } from 'node:util';
import { slowDecodeParts, type DecodeTask } from '../src/ingest/decode-parts.ts';
import { fastDecodeParts } from '../src/ingest/fast-decode.ts';
import { DEFAULT_LIMITS } from '../src/ingest/validate.ts';
import type { Partitioned } from '../src/routing/partition.ts';
import { makeHttpBodies, type HttpShape } from './lib/data.js';
import { median } from './lib/stats.js';

const { values: flags } = parseArgs({ options: { repeats: { type: 'string', default: '7' }, ms: { type: 'string', default: '100' } } });
const repeats = Number(flags.repeats);
const targetMs = Number(flags.ms);

const NOW = 1_608_102_631;
const SHARDS = 2; // the default on this 2-core machine
const POOL = 64;
const cases: { label: string; shape: HttpShape; universe: number }[] = [
  { label: 'S (1 x 3)', shape: 'S', universe: 10_000 },
  { label: 'B (100 x 5), 10k universe', shape: 'B', universe: 10_000 },
  { label: 'B (100 x 5), 1M universe', shape: 'B', universe: 1_000_000 },
];

type Decoder = (task: DecodeTask) => Partitioned | undefined;
let sink = 0;

/** µs per body over `rounds` passes of the pool. */
function time(decoder: Decoder, tasks: DecodeTask[], rounds: number): number {
  const start = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const task of tasks) sink += decoder(task)!.entries;
  return Number(process.hrtime.bigint() - start) / 1000 / (rounds * tasks.length);
}

const rows = [];
for (const { label, shape, universe } of cases) {
  const tasks = makeHttpBodies(shape, { seed: 42, size: POOL, universe, now: NOW }).map(
    (text): DecodeTask => ({ body: Buffer.from(text), format: 'json', bounds: { oldest: NOW - 7200, newest: NOW + 60, retainHours: 1, maxFuture: 60 }, shards: SHARDS, limits: DEFAULT_LIMITS }),
  );
  // A bench of the fast path is worthless if it falls back, or answers something else.
  for (const task of tasks) {
    const fast = fastDecodeParts(task);
    if (!fast || fast.entries !== slowDecodeParts(task).entries) throw new Error(`the fast path did not take a ${label} body`);
  }
  const bytes = tasks.reduce((n, t) => n + t.body.length, 0) / tasks.length;
  // Warm both paths up, then size the passes so each timing takes about targetMs.
  const rounds = (decoder: Decoder) => Math.max(1, Math.round(targetMs / 1000 / ((time(decoder, tasks, 3) * POOL) / 1e6)));
  const slowRounds = rounds(slowDecodeParts);
  const fastRounds = rounds(fastDecodeParts);
  const slow: number[] = [];
  const fast: number[] = [];
  for (let r = 0; r < repeats; r++) {
    if (r % 2 === 0) {
      slow.push(time(slowDecodeParts, tasks, slowRounds));
      fast.push(time(fastDecodeParts, tasks, fastRounds));
    } else {
      fast.push(time(fastDecodeParts, tasks, fastRounds));
      slow.push(time(slowDecodeParts, tasks, slowRounds));
    }
  }
  rows.push({ label, bytes: Math.round(bytes), slowUs: median(slow), fastUs: median(fast), ratio: median(slow) / median(fast) });
}

console.log(`decode, ${repeats} repeats of ~${targetMs} ms per path, median µs per body (${SHARDS} shards, node ${process.version})\n`);
console.log('| body | bytes | slow path µs | fast path µs | slow / fast |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.label} | ${r.bytes} | ${r.slowUs.toFixed(2)} | ${r.fastUs.toFixed(2)} | ${r.ratio.toFixed(1)}× |`);
console.log(`\n${JSON.stringify({ bench: 'decode', repeats, rows })}`);
if (sink === 0) console.log('(no entries decoded)');
