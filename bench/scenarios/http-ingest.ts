/** S and B: POST /api/events through autocannon, one small counter per request or a batch of 100. */
import { runGenerator } from '../lib/generator.js';
import type { HttpShape } from '../lib/data.js';
import type { Scenario } from './types.js';

function httpIngest(shape: HttpShape, title: string, connections: number, pool: number, serverCores: 'one' | 'all'): Scenario {
  return {
    id: shape,
    title,
    transport: 'http',
    serverCores,
    run: ({ server, plan, seed, universe }) =>
      runGenerator(
        {
          name: `http-load ${shape}`,
          entry: 'bench/lib/http-load.ts',
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
  };
}

export const S = httpIngest('S', 'one counter (3 domains) per POST, 64 connections', 64, 1000, 'one');
export const B = httpIngest('B', 'JSON array of 100 counters (5 domains) per POST, 32 connections', 32, 200, 'all');
