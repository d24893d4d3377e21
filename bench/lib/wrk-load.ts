/**
 * HTTP load generator process for S when Debian's wrk is installed. autocannon saturates its own core
 * near 70k requests/s here, below what the servers can do; wrk (C, epoll, LuaJIT) does several times
 * more per core, so S then measures the servers. This process writes the body pool to a file, runs
 * wrk once per phase (it inherits the generator core's pinning), and reports wrk's own counts and
 * latency distribution as printed by wrk-pool.lua. Configured like http-load.ts:
 *
 *   BENCH_PORT=3000 BENCH_CONNECTIONS=64 node --import tsx bench/lib/wrk-load.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeHttpBodies } from './data.js';
import { runTool, toolTail } from './tool.js';
import { generatorMain, isMain, numberEnv, phasePlanFromEnv, runPhases, type LoadCounts, type LoadDriver } from './load-protocol.js';

export const WRK_PATH = '/usr/bin/wrk';
const SCRIPT = fileURLToPath(new URL('./wrk-pool.lua', import.meta.url));

/** wrk's version line (`wrk debian/4.1.0-3+b2`), or undefined when it is not installed. */
export function wrkVersion(): string | undefined {
  if (!existsSync(WRK_PATH)) return undefined;
  const out = spawnSync(WRK_PATH, ['-v'], { encoding: 'utf8' });
  return /^wrk \S+/.exec(`${out.stdout}${out.stderr}`)?.[0] ?? 'wrk';
}

/** What wrk-pool.lua's done() prints. */
interface WrkSummary {
  requests: number;
  durationUs: number;
  connect: number;
  read: number;
  write: number;
  /** Responses with a status of 400 or above. */
  status: number;
  timeout: number;
  p50Us: number;
  p99Us: number;
}

export interface WrkLoadOptions {
  port: number;
  connections: number;
  pool: number;
  seed: number;
  universe: number;
}

export class WrkLoad implements LoadDriver {
  private readonly poolFile = path.join(os.tmpdir(), `toptally-bench-wrk-${process.pid}.txt`);

  constructor(private readonly options: WrkLoadOptions) {}

  prepare(): void {
    const { pool, seed, universe } = this.options;
    const bodies = makeHttpBodies('S', { seed, size: pool, universe, now: Math.floor(Date.now() / 1000) });
    writeFileSync(this.poolFile, `${bodies.join('\n')}\n`);
    process.once('exit', () => rmSync(this.poolFile, { force: true }));
  }

  async run(durationS: number, started: () => void): Promise<LoadCounts> {
    const { port, connections } = this.options;
    const args = ['-t1', `-c${connections}`, `-d${durationS}s`, '--timeout', '5s', '-s', SCRIPT];
    started();
    const run = await runTool(WRK_PATH, [...args, `http://127.0.0.1:${port}/api/events`, '--', this.poolFile]);
    const line = run.stdout.split('\n').find((l) => l.startsWith('{"wrk":'));
    if (run.code !== 0 || line === undefined) {
      throw new Error(`wrk exited with code ${run.code}: ${toolTail(run)}`);
    }
    const wrk = (JSON.parse(line) as { wrk: WrkSummary }).wrk;
    const socketErrors = wrk.connect + wrk.read + wrk.write + wrk.timeout;
    const errors = socketErrors + wrk.status;
    return {
      durationS: wrk.durationUs / 1e6,
      requests: wrk.requests,
      counters: wrk.requests - wrk.status, // S carries one counter per request
      errors,
      ...(errors === 0
        ? {}
        : { firstError: `wrk: ${wrk.status} HTTP ≥ 400, ${wrk.connect} connect, ${wrk.read} read, ${wrk.write} write, ${wrk.timeout} timeout errors` }),
      latencyP50Ms: wrk.p50Us / 1000,
      latencyP99Ms: wrk.p99Us / 1000,
    };
  }
}

if (isMain(import.meta.url)) {
  await generatorMain(async () => {
    if (wrkVersion() === undefined) throw new Error(`${WRK_PATH} not found (apt-get install wrk)`);
    const load = new WrkLoad({
      port: numberEnv('BENCH_PORT', 3000),
      connections: numberEnv('BENCH_CONNECTIONS', 64),
      pool: numberEnv('BENCH_POOL', 1000),
      seed: numberEnv('BENCH_SEED', 42),
      universe: numberEnv('BENCH_UNIVERSE', 10_000),
    });
    await runPhases(load, phasePlanFromEnv());
  });
}
