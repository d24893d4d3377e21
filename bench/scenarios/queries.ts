/**
 * Q: stats queries while ingest runs at half the server's maximum, with 1,000,000 distinct domains in
 * the minute (and hour) being queried. Before the load, three closed minutes are filled with 10,
 * 10,000 and 1,000,000 domains and each is queried alone: first (uncached) and repeated.
 */
import { filledWindows, timeQuery } from '../lib/closed-windows.js';
import { planFill, sendFill } from '../lib/fill.js';
import { runGenerator } from '../lib/generator.js';
import { RawHttp } from '../lib/raw-http.js';
import type { DetailColumn, Scenario } from './types.js';

const SIZES = [10, 10_000, 1_000_000] as const;
const QUERIES_PER_S = 100;
const WARM_UP_ROUNDS = 5;
/** The probe that finds the maximum ingest rate is the warm-up; shorter ones miss autocannon's ramp. */
const MIN_PROBE_S = 2;

const sizeColumns: DetailColumn[] = SIZES.flatMap((size) => [
  { key: `first@${size}`, label: `${size.toLocaleString('en-US')}: first ms` },
  { key: `repeated@${size}`, label: `${size.toLocaleString('en-US')}: repeated ms` },
]);

export const Q: Scenario = {
  id: 'Q',
  title:
    `stats queries (${QUERIES_PER_S}/s, the seed's minute endpoint and the hour in turn) while B-style ingest runs at half ` +
    'the maximum a warm-up probe found, 1,000,000 domains in the minute and hour queried',
  transport: 'http',
  generator: 'autocannon (probe), then paced raw HTTP/1.1 clients (16 ingest connections, 1 query connection)',
  serverCores: 'all',
  targets: ['toptally', 'naive-uws'],
  compare: false,
  details: {
    title: 'Q: stats latency during ingest, and closed-window query time by domains in the window',
    columns: [
      { key: 'ingestMaxReqPerS', label: 'probe max req/s' },
      { key: 'ingestTargetReqPerS', label: 'ingest target req/s' },
      { key: 'queriesPerS', label: 'queries/s' },
      { key: 'statsP50Ms', label: 'stats p50 ms' },
      { key: 'statsP99Ms', label: 'stats p99 ms' },
      ...sizeColumns,
    ],
    notes: [
      'Stats latency is measured by the generator process (its event loop included) on its own keep-alive connection, ' +
        'as medians over the measured phases; queries still unanswered at a phase end are not counted.',
      'Closed-window times: `GET /api/stats?window=minute&at=…` on an idle server right after that minute was filled; ' +
        'first = the first query after the fill, repeated = median of up to 20 more.',
    ],
  },
  run: async ({ server, plan, seed, universe }) => {
    const windows = filledWindows();
    const details: Record<string, number> = {};
    const client = await RawHttp.connect(server.port);
    try {
      // Warm-up rounds in :52–:56, not reported, so that "first" means the first query of a window and
      // not one of the first the process answers (those took 1–12 ms while its code paths warmed up).
      for (let i = 0; i < WARM_UP_ROUNDS; i++) {
        const minute = windows.lastMinute - SIZES.length - i;
        const size = SIZES[i % 2]!;
        await sendFill(server, planFill(minute, size, seed + 100 + i));
        await timeQuery(client, windows.minutePath(minute), size);
      }
      for (const [i, size] of SIZES.entries()) {
        // 10 in :57, 10,000 in :58, 1,000,000 in :59 of the last complete hour.
        const minute = windows.lastMinute - (SIZES.length - 1 - i);
        await sendFill(server, planFill(minute, size, seed + i));
        const times = await timeQuery(client, windows.minutePath(minute), size);
        details[`first@${size}`] = times.firstMs;
        details[`repeated@${size}`] = times.repeatedMs;
      }
    } finally {
      client.close();
    }
    const measurements = await runGenerator(
      {
        name: 'query-load',
        entry: 'bench/lib/query-load.ts',
        env: {
          BENCH_QUERY_PATHS: JSON.stringify([windows.seedMinutePath(windows.lastMinute), windows.hourPath]),
          BENCH_QUERY_RATE: QUERIES_PER_S,
          BENCH_POOL: 200,
          BENCH_SEED: seed,
          BENCH_UNIVERSE: universe,
        },
      },
      server,
      { ...plan, warmupS: Math.max(MIN_PROBE_S, plan.warmupS) },
    );
    return { measurements, details };
  },
};
