/**
 * Durability benchmark: toptally's ingest throughput in each --durability mode side by side, and its
 * recovery time for a full retention written straight into the data-directory format.
 *
 *   node --import tsx bench/durability.ts [--duration 10] [--only throughput|recovery]
 *
 * Throughput: the bench's B shape (JSON arrays of 100 counters x 5 Zipf domains) from autocannon in
 * its own process, server and generator pinned to separate cores as in bench/run.ts, a fresh data
 * directory per mode. Recovery: every retained window (24 closed hours + the open one, 120 closed
 * minutes + the open one) holding every domain of the universe, which is the most a retention can
 * hold, optionally plus a journal tail; the server's own log says how long loading took.
 * Environment: BENCH_SEED, BENCH_UNIVERSE (10,000), BENCH_CONNECTIONS (32).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CHECKPOINT_BYTES } from '../src/durability/durability.ts';
import type { WindowRef } from '../src/window.ts';
import { runGenerator } from './lib/generator.js';
import { numberEnv } from './lib/load-protocol.js';
import { DataDirWriter } from './lib/data-dir.js';
import { metricsOf, type Metrics } from './lib/report.js';
import { freePort, pinning, ServerProcess, type ProcessSpec } from './lib/server-process.js';

const { values: flags } = parseArgs({
  options: { duration: { type: 'string', default: '10' }, only: { type: 'string' } },
});
const durationS = Number(flags.duration);
const seed = numberEnv('BENCH_SEED', 42);
const universe = numberEnv('BENCH_UNIVERSE', 10_000);
const connections = numberEnv('BENCH_CONNECTIONS', 32);
const SHARDS = 2;

const log = (line: string): void => void process.stderr.write(`${line}\n`);
function num(n: number): string {
  if (!Number.isFinite(n)) return '—';
  return n >= 100 || Number.isInteger(n) ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3);
}
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

function diskBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

function freshDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'toptally-bench-durability-'));
}

function serverSpec(port: number, dataDir: string, mode: string): ProcessSpec {
  return {
    name: `toptally --durability ${mode}`,
    command: process.execPath,
    args: ['bin/toptally.js', '--port', String(port), '--shards', String(SHARDS), '--durability', mode, '--data-dir', dataDir],
    ...(pinning === undefined ? {} : { cpu: pinning.server }),
  };
}

/** The JSON log lines the server wrote so far (the tail the process wrapper keeps). */
function logLines(server: ServerProcess): Record<string, unknown>[] {
  return server
    .tail()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

// ---------------------------------------------------------------------------------------------------
// Throughput per mode

interface ModeResult {
  mode: string;
  metrics: Metrics;
  recordsPerFsync: number;
  diskBytes: number;
}

async function throughput(mode: string): Promise<ModeResult> {
  const dataDir = freshDir();
  const port = await freePort();
  const server = await ServerProcess.start(serverSpec(port, dataDir, mode), { port });
  try {
    log(`throughput: --durability ${mode}, ${durationS} s after 2 s warm-up`);
    const [measurement] = await runGenerator(
      {
        name: 'http-load B',
        entry: 'bench/lib/http-load.ts',
        env: { BENCH_SHAPE: 'B', BENCH_CONNECTIONS: connections, BENCH_POOL: 200, BENCH_SEED: seed, BENCH_UNIVERSE: universe },
      },
      server,
      { warmupS: 2, durationS, repeats: 1 },
    );
    await server.stop(30_000);
    const journal = logLines(server).find((line) => line['journal'] !== undefined)?.['journal'] as
      | { records: number; syncs: number }
      | undefined;
    return {
      mode,
      metrics: metricsOf(measurement!),
      recordsPerFsync: journal && journal.syncs > 0 ? journal.records / journal.syncs : Number.NaN,
      diskBytes: diskBytes(dataDir),
    };
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// Recovery of a full retention

interface RecoveryResult {
  label: string;
  report: { windows: number; entries: number; snapshotBytes: number; records: number; journalBytes: number; ms: number };
  startupMs: number;
  rssMiB: number;
}

/** Every retained window with every domain of the universe, Zipf-weighted counts, as a checkpoint. */
async function writeFullRetention(dataDir: string, nowSeconds: number, tailRecords: number): Promise<void> {
  const writer = new DataDirWriter(dataDir, { seed, universe, shards: SHARDS });
  const minute = Math.floor(nowSeconds / 60);
  const hour = Math.floor(nowSeconds / 3600);
  const changed: WindowRef[] = [];
  for (let m = minute - 120; m <= minute; m++) changed.push({ kind: 'minute', index: m });
  for (let h = hour - 24; h <= hour; h++) changed.push({ kind: 'hour', index: h });
  await writer.checkpoint(changed, { minute: minute - 120, hour: hour - 24 });
  // A checkpoint runs once the journal reaches CHECKPOINT_BYTES, so it never holds more.
  if (tailRecords > 0) await writer.journal({ records: tailRecords, maxBytes: CHECKPOINT_BYTES, counters: 100, entries: 500, minute, atMs: nowSeconds * 1000 });
}

function rssMiB(pid: number | undefined): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

async function recovery(label: string, tailRecords: number): Promise<RecoveryResult> {
  const dataDir = freshDir();
  try {
    log(`recovery: generating ${label}`);
    await writeFullRetention(dataDir, Math.floor(Date.now() / 1000), tailRecords);
    const port = await freePort();
    const server = await ServerProcess.start(serverSpec(port, dataDir, 'fsync'), { port, readyTimeoutMs: 300_000 });
    try {
      const lines = logLines(server);
      const recovered = lines.find((line) => line['recovery'] !== undefined)?.['recovery'] as RecoveryResult['report'];
      const startupMs = lines.find((line) => line['startupMs'] !== undefined)?.['startupMs'] as number;
      return { label, report: recovered, startupMs, rssMiB: rssMiB(server.pid) };
    } finally {
      await server.stop(60_000);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------

const lines: string[] = [
  `## toptally durability (Node ${process.version}, ${os.availableParallelism()} CPUs, ${
    pinning === undefined ? 'no pinning' : `server on cpu${pinning.server}, generator on cpu${pinning.generator}`
  }, ${SHARDS} shards, Zipf universe ${universe.toLocaleString('en-US')})`,
  '',
];

let fsyncRate = Number.NaN;
if (flags.only === undefined || flags.only === 'throughput') {
  const results: ModeResult[] = [];
  for (const mode of ['off', 'interval', 'fsync']) results.push(await throughput(mode));
  fsyncRate = results.find((r) => r.mode === 'fsync')!.metrics.requestsPerS;
  lines.push(
    `### Ingest: POST /api/events, 100 counters x 5 domains per request, ${connections} connections, ${durationS} s`,
    '',
    '| --durability | req/s | counters/s | p50 ms | p99 ms | server CPU ms/req | records per fsync | disk after | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map(
      (r) =>
        `| ${r.mode} | ${num(r.metrics.requestsPerS)} | ${num(r.metrics.countersPerS)} | ${num(r.metrics.latencyP50Ms)} | ` +
        `${num(r.metrics.latencyP99Ms)} | ${num(r.metrics.serverCpuMsPerRequest)} | ${num(r.recordsPerFsync)} | ` +
        `${mib(r.diskBytes)} MiB | ${r.metrics.errors} |`,
    ),
    '',
  );
}

if (flags.only === undefined || flags.only === 'recovery') {
  // The longest journal a crash can leave: a minute at the fsync rate just measured (checkpoints run
  // every minute; 1,000 requests/s when throughput was not measured), at most CHECKPOINT_BYTES.
  const tail = Math.round((Number.isFinite(fsyncRate) ? fsyncRate : 1000) * 60);
  const results = [await recovery('checkpoint only', 0), await recovery('checkpoint + the longest journal tail', tail)];
  lines.push(
    '### Recovery of a full retention (146 windows, each holding the whole universe)',
    '',
    '| data | windows | entries | snapshot | journal records | journal | recovery ms | start-up ms | RSS after |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map(
      ({ label, report: r, startupMs, rssMiB }) =>
        `| ${label} | ${r.windows} | ${num(r.entries)} | ${mib(r.snapshotBytes)} MiB | ${num(r.records)} | ` +
        `${mib(r.journalBytes)} MiB | ${num(r.ms)} | ${num(startupMs)} | ${num(rssMiB)} MiB |`,
    ),
    '',
  );
}

process.stdout.write(`${lines.join('\n')}\n`);
