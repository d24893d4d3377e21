/**
 * S and B: POST /api/events, one small counter per request or a batch of 100. S is replayed by wrk
 * when it is installed (autocannon saturates its own core below what the servers can do), else by
 * autocannon; B's requests are few and large, so autocannon is light enough there.
 */
import { runGenerator } from '../lib/generator.js';
import type { HttpShape } from '../lib/data.js';
import { WRK_PATH, wrkVersion } from '../lib/wrk-load.js';
import type { Scenario } from './types.js';

interface HttpGenerator {
  /** Entry file of the generator process. */
  entry: string;
  /** For the report header. */
  description: string;
}

const AUTOCANNON: HttpGenerator = { entry: 'bench/lib/http-load.ts', description: 'autocannon' };

/**
 * wrk when /usr/bin/wrk exists, unless BENCH_S_GENERATOR=autocannon asks for the fallback;
 * BENCH_S_GENERATOR=wrk makes a missing wrk an error instead of a fallback.
 */
function sGenerator(): HttpGenerator & { missingWrk: boolean } {
  const wanted = process.env['BENCH_S_GENERATOR'] ?? 'auto';
  if (!['auto', 'wrk', 'autocannon'].includes(wanted)) {
    throw new Error(`BENCH_S_GENERATOR must be auto, wrk or autocannon, not ${JSON.stringify(wanted)}`);
  }
  const version = wanted === 'autocannon' ? undefined : wrkVersion();
  if (version !== undefined) return { entry: 'bench/lib/wrk-load.ts', description: `${version}, 1 thread`, missingWrk: false };
  if (wanted === 'wrk') throw new Error(`BENCH_S_GENERATOR=wrk but ${WRK_PATH} is missing (apt-get install wrk)`);
  return { ...AUTOCANNON, missingWrk: wanted === 'auto' };
}

export const S_GENERATOR = sGenerator();

function httpIngest(
  shape: HttpShape,
  title: string,
  connections: number,
  pool: number,
  serverCores: 'one' | 'all',
  generator: HttpGenerator,
): Scenario {
  return {
    id: shape,
    title,
    transport: 'http',
    generator: generator.description,
    serverCores,
    run: async ({ server, plan, seed, universe, generator: own }) => ({
      measurements: await runGenerator(
        {
          name: `http-load ${shape}`,
          entry: own ?? generator.entry,
          env: {
            BENCH_SHAPE: shape,
            BENCH_CONNECTIONS: connections,
            BENCH_POOL: pool,
            BENCH_SEED: seed,
            BENCH_UNIVERSE: universe,
          },
        },
        server,
        plan,
      ),
    }),
  };
}

export const S = httpIngest('S', 'one counter (3 domains) per POST, 64 connections', 64, 1000, 'one', S_GENERATOR);
export const B = httpIngest('B', 'JSON array of 100 counters (5 domains) per POST, 32 connections', 32, 200, 'all', AUTOCANNON);
