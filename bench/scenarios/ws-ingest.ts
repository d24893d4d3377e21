/** WS: MessagePack frames of 1,000 counters over WebSocket, a few frames in flight per connection. */
import { runGenerator } from '../lib/generator.js';
import type { Scenario } from './types.js';

const CONNECTIONS = 4;
const IN_FLIGHT = 4;

export const WS: Scenario = {
  id: 'WS',
  title: `MessagePack frames of 1,000 counters (5 domains), ${CONNECTIONS} connections x ${IN_FLIGHT} in flight`,
  transport: 'ws',
  generator: 'ws (Node client)',
  serverCores: 'all',
  run: async ({ server, plan, seed, universe }) => ({
    measurements: await runGenerator(
      {
        name: 'ws-load',
        entry: 'bench/lib/ws-load.ts',
        env: {
          BENCH_WS_PATH: '/ws',
          BENCH_CONNECTIONS: CONNECTIONS,
          BENCH_IN_FLIGHT: IN_FLIGHT,
          BENCH_POOL: 200,
          BENCH_SEED: seed,
          BENCH_UNIVERSE: universe,
        },
      },
      server,
      plan,
    ),
  }),
};
