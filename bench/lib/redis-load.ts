/**
 * Load generator process for the redis-fsync baseline in S: redis-benchmark sends what S's request
 * does, three ZINCRBYs of one minute's sorted set, as one pipelined round trip (`-P 3`) from each of
 * BENCH_CONNECTIONS clients. A request is three operations, so requests = ops / 3. redis-benchmark
 * runs a fixed number of operations, not a duration: each phase sizes its count from the rate the
 * previous phase measured (the first from a short probe), so a phase lasts about BENCH_DURATION_S.
 * Members are uniform over BENCH_UNIVERSE names (redis-benchmark's `-r`), not Zipf as S's bodies.
 *
 *   BENCH_PORT=6380 BENCH_CONNECTIONS=64 node --import tsx bench/lib/redis-load.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { runTool, toolTail } from './tool.js';
import { generatorMain, isMain, numberEnv, phasePlanFromEnv, runPhases, type LoadCounts, type LoadDriver } from './load-protocol.js';

export const REDIS_SERVER_PATH = '/usr/bin/redis-server';
export const REDIS_BENCHMARK_PATH = '/usr/bin/redis-benchmark';
/** The ZINCRBYs of one request, sent as one pipeline. */
export const OPS_PER_REQUEST = 3;
const PROBE_OPS = 30_000;

/** True when both Redis programs are installed (Debian's redis-server package has both). */
export function redisPresent(): boolean {
  return existsSync(REDIS_SERVER_PATH) && existsSync(REDIS_BENCHMARK_PATH);
}

/** `redis-server v=7.0.15`, or undefined when it is not installed. */
export function redisVersion(): string | undefined {
  if (!redisPresent()) return undefined;
  const out = spawnSync(REDIS_SERVER_PATH, ['--version'], { encoding: 'utf8' });
  return /v=\S+/.exec(out.stdout)?.[0] ?? 'unknown version';
}

interface RedisRun {
  ops: number;
  opsPerS: number;
  p50Ms: number;
  p99Ms: number;
}

export class RedisLoad implements LoadDriver {
  #opsPerS = 0;

  constructor(private readonly options: { port: number; connections: number; universe: number }) {}

  async prepare(): Promise<void> {
    this.#opsPerS = (await this.#bench(PROBE_OPS)).opsPerS;
  }

  async run(durationS: number, started: () => void): Promise<LoadCounts> {
    const ops = Math.max(PROBE_OPS, Math.round((this.#opsPerS * durationS) / OPS_PER_REQUEST) * OPS_PER_REQUEST);
    started();
    const run = await this.#bench(ops);
    this.#opsPerS = run.opsPerS;
    const requests = Math.floor(run.ops / OPS_PER_REQUEST);
    return {
      // redis-benchmark's own rate, over the operations' own time (connection set-up excluded).
      durationS: run.ops / run.opsPerS,
      requests,
      counters: requests,
      errors: 0,
      // Each operation's latency runs from its pipeline's write to its reply: the request's round trip.
      latencyP50Ms: run.p50Ms,
      latencyP99Ms: run.p99Ms,
    };
  }

  async #bench(ops: number): Promise<RedisRun> {
    const { port, connections, universe } = this.options;
    const minute = Math.floor(Date.now() / 60_000);
    const args = ['-p', String(port), '-c', String(connections), '-P', String(OPS_PER_REQUEST), '-n', String(ops), '-r', String(universe), '--csv'];
    const command = ['ZINCRBY', `minute:${minute}`, '1', 'domain-__rand_int__.example'];
    const run = await runTool(REDIS_BENCHMARK_PATH, [...args, ...command]);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    const row = run.stdout.split('\n').find((line) => line.startsWith('"ZINCRBY'));
    const cells = row?.split('","').map((cell) => Number(cell.replaceAll('"', '')));
    if (run.code !== 0 || cells === undefined || !(cells[1]! > 0)) {
      throw new Error(`redis-benchmark exited with code ${run.code}: ${toolTail(run)}`);
    }
    return { ops, opsPerS: cells[1]!, p50Ms: cells[4]!, p99Ms: cells[6]! };
  }
}

if (isMain(import.meta.url)) {
  await generatorMain(async () => {
    if (!redisPresent()) throw new Error(`${REDIS_BENCHMARK_PATH} not found (apt-get install redis-server)`);
    const load = new RedisLoad({
      port: numberEnv('BENCH_PORT', 6380),
      connections: numberEnv('BENCH_CONNECTIONS', 64),
      universe: numberEnv('BENCH_UNIVERSE', 10_000),
    });
    await runPhases(load, phasePlanFromEnv());
  });
}
