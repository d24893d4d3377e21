/**
 * Q's load generator process: stats queries while ingest runs at half the server's maximum.
 *
 * The warm-up phase is the probe: B-style ingest through autocannon, unlimited, whose rate is taken as
 * the maximum. Each measured phase then paces the same bodies at half that rate over INGEST_CONNECTIONS
 * keep-alive connections, and paces stats queries (BENCH_QUERY_PATHS in turn) on one more connection.
 * Pacing is smooth, slot by slot: autocannon's own rate limit sends each connection's quota back to
 * back at the start of every second, which would alternate full load and none rather than half.
 * A slot missed while a response is still outstanding is skipped, not made up later.
 *
 *   BENCH_PORT=3000 BENCH_QUERY_PATHS='["/api/stats?window=hour"]' node --import tsx bench/lib/query-load.ts
 *
 * Also BENCH_QUERY_RATE (queries/s), BENCH_POOL, BENCH_SEED, BENCH_UNIVERSE and the phase variables of
 * load-protocol.ts. Latencies are measured here, so they include this process's own event loop.
 */
import { makeHttpBodies, shapes } from './data.js';
import { HttpLoad } from './http-load.js';
import { generatorMain, isMain, numberEnv, phasePlanFromEnv, runPhases, type LoadCounts, type LoadDriver, type Phase } from './load-protocol.js';
import { RawHttp, type RawResponse } from './raw-http.js';
import { LatencyHistogram } from './stats.js';

const PROBE_CONNECTIONS = 32;
const INGEST_CONNECTIONS = 16;
const SETTLE_TIMEOUT_MS = 15_000;

export interface QueryLoadOptions {
  port: number;
  queryPaths: string[];
  queriesPerS: number;
  pool: number;
  seed: number;
  universe: number;
}

/** One measured phase's tallies; responses that arrive after its deadline are not counted. */
class PhaseTally {
  running = true;
  ingestRequests = 0;
  ingestCounters = 0;
  queries = 0;
  errors = 0;
  firstError: string | undefined;
  readonly ingestLatency = new LatencyHistogram();
  readonly queryLatency = new LatencyHistogram();

  /** Counts a response; false when it is an error. */
  check(response: RawResponse, what: string): boolean {
    if (response.status === 200) return true;
    this.errors++;
    this.firstError ??= `${what}: HTTP ${response.status} ${response.body.toString('utf8').slice(0, 200)}`;
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends `request()` on `client` once per `intervalMs`, the first after `offsetMs`, while the tally is
 * running; late responses push the next slot back instead of bunching the ones after it.
 */
async function paced(
  client: RawHttp,
  intervalMs: number,
  offsetMs: number,
  tally: PhaseTally,
  request: () => Buffer,
  onResponse: (response: RawResponse) => void,
): Promise<void> {
  let due = performance.now() + offsetMs;
  while (tally.running) {
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    if (!tally.running) return;
    let response: RawResponse;
    try {
      response = await client.send(request());
    } catch (error) {
      tally.errors++;
      tally.firstError ??= (error as Error).message;
      return; // the connection is gone; the other loops go on
    }
    if (tally.running) onResponse(response);
    due = Math.max(due + intervalMs, performance.now());
  }
}

export class QueryLoad implements LoadDriver {
  private readonly probe: HttpLoad;
  private ingestRequests: Buffer[] = [];
  private queryRequests: Buffer[] = [];
  private ingestClients: RawHttp[] = [];
  private queryClient: RawHttp | undefined;
  private maxReqPerS = Number.NaN;
  private loops: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: QueryLoadOptions) {
    const { port, pool, seed, universe } = options;
    this.probe = new HttpLoad({ port, shape: 'B', connections: PROBE_CONNECTIONS, pool, seed, universe });
  }

  async prepare(): Promise<void> {
    const { pool, seed, universe, queryPaths } = this.options;
    this.probe.prepare();
    const now = Math.floor(Date.now() / 1000);
    this.ingestRequests = makeHttpBodies('B', { seed, size: pool, universe, now }).map((body) => RawHttp.format('POST', '/api/events', body));
    this.queryRequests = queryPaths.map((path) => RawHttp.format('GET', path));
  }

  async run(durationS: number, started: () => void, phase: Phase): Promise<LoadCounts> {
    if (phase === 'warmup') {
      const counts = await this.probe.run(durationS, started);
      this.maxReqPerS = counts.requests / durationS;
      return counts;
    }
    if (!Number.isFinite(this.maxReqPerS) || this.maxReqPerS <= 0) throw new Error('Q needs a warm-up phase to probe the maximum ingest rate');
    // Connected after the probe, so that idle keep-alive connections are not timed out by the server meanwhile.
    if (this.queryClient === undefined) {
      const connect = () => RawHttp.connect(this.options.port);
      this.ingestClients = await Promise.all(Array.from({ length: INGEST_CONNECTIONS }, connect));
      this.queryClient = await connect();
    }
    const targetReqPerS = this.maxReqPerS / 2;
    const tally = new PhaseTally();
    const countersPerBody = shapes.B.countersPerBody;
    let nextBody = 0;
    let nextQuery = 0;
    const ingestInterval = (1000 * this.ingestClients.length) / targetReqPerS;
    const queryInterval = 1000 / this.options.queriesPerS;
    started();
    const startedAt = performance.now();
    this.loops = Promise.all([
      ...this.ingestClients.map((client, i) =>
        paced(
          client,
          ingestInterval,
          (ingestInterval * i) / this.ingestClients.length,
          tally,
          () => this.ingestRequests[nextBody++ % this.ingestRequests.length]!,
          (response) => {
            tally.ingestRequests++;
            if (!tally.check(response, 'ingest')) return;
            tally.ingestCounters += countersPerBody;
            tally.ingestLatency.recordMs(response.ms);
          },
        ),
      ),
      paced(
        this.queryClient!,
        queryInterval,
        0,
        tally,
        () => this.queryRequests[nextQuery++ % this.queryRequests.length]!,
        (response) => {
          tally.queries++;
          if (tally.check(response, 'query')) tally.queryLatency.recordMs(response.ms);
        },
      ),
    ]);
    await sleep(durationS * 1000);
    tally.running = false;
    const elapsedS = (performance.now() - startedAt) / 1000;
    return {
      durationS: elapsedS,
      requests: tally.ingestRequests,
      counters: tally.ingestCounters,
      errors: tally.errors,
      ...(tally.firstError === undefined ? {} : { firstError: tally.firstError }),
      latencyP50Ms: tally.ingestLatency.quantileMs(0.5),
      latencyP99Ms: tally.ingestLatency.quantileMs(0.99),
      extra: {
        ingestMaxReqPerS: this.maxReqPerS,
        ingestTargetReqPerS: targetReqPerS,
        queriesPerS: tally.queries / elapsedS,
        statsP50Ms: tally.queryLatency.quantileMs(0.5),
        statsP99Ms: tally.queryLatency.quantileMs(0.99),
        statsMaxMs: tally.queryLatency.quantileMs(1),
      },
    };
  }

  close(): void {
    for (const client of this.ingestClients) client.close();
    this.queryClient?.close();
  }

  /** Waits for the responses still outstanding (a naive server may be sorting a million entries). */
  async settle(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`responses still outstanding ${SETTLE_TIMEOUT_MS} ms after the phase`)), SETTLE_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.loops, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

if (isMain(import.meta.url)) {
  await generatorMain(async () => {
    const queryPaths = JSON.parse(process.env['BENCH_QUERY_PATHS'] ?? '[]') as unknown;
    if (!Array.isArray(queryPaths) || queryPaths.length === 0 || !queryPaths.every((p) => typeof p === 'string')) {
      throw new Error('BENCH_QUERY_PATHS must be a JSON array of paths');
    }
    const load = new QueryLoad({
      port: numberEnv('BENCH_PORT', 3000),
      queryPaths,
      queriesPerS: numberEnv('BENCH_QUERY_RATE', 100),
      pool: numberEnv('BENCH_POOL', 200),
      seed: numberEnv('BENCH_SEED', 42),
      universe: numberEnv('BENCH_UNIVERSE', 10_000),
    });
    await runPhases(load, phasePlanFromEnv());
    load.close();
  });
}
