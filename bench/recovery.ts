/**
 * Recovery after kill -9 under the S load: how long the port stays closed while start-up replays.
 *
 *   npm run build && node --import tsx bench/recovery.ts [--kills 6] [--worst 3] [--only worst|kills]
 *
 * Worst: the most a crash can leave under S, written straight in the data-directory format: a
 * checkpoint of the open minute and hour holding the whole universe, then CHECKPOINT_RECORDS journal
 * records of one counter with 3 Zipf domains (a checkpoint runs once that many were written since the
 * last one, long before the bytes budget or the minute under S). Kills: the server under the S load
 * (autocannon, 64 connections, its own process on the generator core) killed with SIGKILL after a
 * random 4-40 s, then restarted on the same directory. Either way the server's own start-up line
 * gives the records replayed, the recovery time and the start-up time (process start to listening).
 * Environment: BENCH_SEED, BENCH_UNIVERSE (10,000), BENCH_CONNECTIONS (64).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CHECKPOINT_RECORDS } from '../src/durability/durability.ts';
import { runGenerator } from './lib/generator.js';
import { numberEnv } from './lib/load-protocol.js';
import { DataDirWriter } from './lib/data-dir.js';
import { mulberry32 } from './lib/prng.js';
import { freePort, pinning, ServerProcess, type ProcessSpec } from './lib/server-process.js';

const { values: flags } = parseArgs({
  options: { kills: { type: 'string', default: '6' }, worst: { type: 'string', default: '3' }, only: { type: 'string' } },
});
const seed = numberEnv('BENCH_SEED', 42);
const universe = numberEnv('BENCH_UNIVERSE', 10_000);
const connections = numberEnv('BENCH_CONNECTIONS', 64);
const SHARDS = 2;

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const num = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');

interface Recovered {
  label: string;
  records: number;
  journalBytes: number;
  recoveryMs: number;
  startupMs: number;
}

function serverSpec(port: number, dataDir: string): ProcessSpec {
  return {
    name: 'toptally',
    command: process.execPath,
    args: ['bin/toptally.js', '--port', String(port), '--shards', String(SHARDS), '--data-dir', dataDir],
    ...(pinning === undefined ? {} : { cpu: pinning.server }),
  };
}

/** Starts the server on `dataDir` and reads what its start-up line says it recovered. */
async function start(dataDir: string, label: string): Promise<{ server: ServerProcess; recovered: Recovered }> {
  const port = await freePort();
  const server = await ServerProcess.start(serverSpec(port, dataDir), { port, readyTimeoutMs: 300_000 });
  const line = server
    .tail()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { recovery?: { records: number; journalBytes: number; ms: number }; startupMs?: number })
    .find((l) => l.recovery !== undefined);
  if (!line?.recovery) throw new Error(`no start-up line with recovery from ${server.name}`);
  const { records, journalBytes, ms } = line.recovery;
  return { server, recovered: { label, records, journalBytes, recoveryMs: ms, startupMs: line.startupMs ?? Number.NaN } };
}

/** The open minute and hour with every domain, and CHECKPOINT_RECORDS S records after the cut. */
async function writeWorstCase(dataDir: string, nowSeconds: number): Promise<void> {
  const writer = new DataDirWriter(dataDir, { seed, universe, shards: SHARDS });
  const minute = Math.floor(nowSeconds / 60);
  const hour = Math.floor(nowSeconds / 3600);
  await writer.checkpoint(
    [
      { kind: 'minute', index: minute },
      { kind: 'hour', index: hour },
    ],
    { minute: minute - 120, hour: hour - 24 },
  );
  await writer.journal({ records: CHECKPOINT_RECORDS, counters: 1, entries: 3, minute, atMs: nowSeconds * 1000 });
}

async function worst(run: number): Promise<Recovered> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'toptally-bench-recovery-'));
  try {
    await writeWorstCase(dataDir, Math.floor(Date.now() / 1000));
    const { server, recovered } = await start(dataDir, `worst case, run ${run}`);
    await server.stop(30_000);
    return recovered;
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** S load for `killAfterS`, kill -9, restart on the same directory. */
async function killed(run: number, killAfterS: number): Promise<Recovered> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'toptally-bench-recovery-'));
  try {
    const { server } = await start(dataDir, 'fresh');
    const load = runGenerator(
      {
        name: 'http-load S',
        entry: 'bench/lib/http-load.ts',
        env: { BENCH_SHAPE: 'S', BENCH_CONNECTIONS: connections, BENCH_POOL: 5000, BENCH_SEED: seed + run, BENCH_UNIVERSE: universe },
      },
      server,
      { warmupS: 0, durationS: killAfterS + 2, repeats: 1 },
    ).catch(() => []);
    await sleep(killAfterS * 1000);
    server.child.kill('SIGKILL');
    await server.exited;
    await load;
    const { server: again, recovered } = await start(dataDir, `killed after ${killAfterS.toFixed(1)} s`);
    await again.stop(30_000);
    return recovered;
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const results: Recovered[] = [];
if (flags.only === undefined || flags.only === 'worst') {
  for (let run = 1; run <= Number(flags.worst); run++) {
    log(`worst case ${run}: ${CHECKPOINT_RECORDS.toLocaleString('en-US')} records after the checkpoint`);
    results.push(await worst(run));
  }
}
if (flags.only === undefined || flags.only === 'kills') {
  const random = mulberry32(seed);
  for (let run = 1; run <= Number(flags.kills); run++) {
    const killAfterS = 4 + random() * 36;
    log(`kill ${run}: S load, ${connections} connections, SIGKILL after ${killAfterS.toFixed(1)} s`);
    results.push(await killed(run, killAfterS));
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor((sorted.length - 1) / 2)]!;
};
const lines = [
  `## toptally recovery after kill -9 (Node ${process.version}, ${os.availableParallelism()} CPUs, ${
    pinning === undefined ? 'no pinning' : `server on cpu${pinning.server}, generator on cpu${pinning.generator}`
  }, ${SHARDS} shards, checkpoint every ${CHECKPOINT_RECORDS.toLocaleString('en-US')} records, load average ${os.loadavg()[0]!.toFixed(1)})`,
  '',
  '| run | journal records | journal MiB | recovery ms | start-up ms |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...results.map((r) => `| ${r.label} | ${num(r.records)} | ${(r.journalBytes / 2 ** 20).toFixed(1)} | ${num(r.recoveryMs)} | ${num(r.startupMs)} |`),
  '',
  `worst start-up ${num(Math.max(...results.map((r) => r.startupMs)))} ms, median ${num(median(results.map((r) => r.startupMs)))} ms`,
  '',
];
process.stdout.write(`${lines.join('\n')}\n${JSON.stringify(results)}\n`);
