/**
 * HTTP load generator process: replays a pre-built pool of POST /api/events bodies with autocannon.
 * Run by the harness as its own process (pinned to its own core); configured by environment:
 *
 *   BENCH_PORT=3000 BENCH_SHAPE=S BENCH_CONNECTIONS=64 node --import tsx bench/lib/http-load.ts
 *
 * BENCH_SHAPE is S or B (see data.ts); BENCH_POOL, BENCH_SEED, BENCH_UNIVERSE shape the bodies and
 * BENCH_WARMUP_S, BENCH_DURATION_S, BENCH_REPEATS the phases. Prints one JSON line per phase event.
 */
import autocannon, { type Request } from 'autocannon';
import { makeHttpBodies, shapes, type HttpShape } from './data.js';
import { generatorMain, isMain, numberEnv, phasePlanFromEnv, runPhases, type LoadCounts, type LoadDriver } from './load-protocol.js';
import { LatencyHistogram } from './stats.js';

export interface HttpLoadOptions {
  port: number;
  shape: HttpShape;
  connections: number;
  pool: number;
  seed: number;
  universe: number;
  /** Stamp each body with the second it is sent in (see prepare). */
  fresh?: boolean;
}

export class HttpLoad implements LoadDriver {
  private requests: Request[] = [];

  constructor(private readonly options: HttpLoadOptions) {}

  prepare(): void {
    const { shape, pool, seed, universe, fresh } = this.options;
    const now = Math.floor(Date.now() / 1000);
    const bodies = makeHttpBodies(shape, { seed, size: pool, universe, now });
    // Fresh: each body carries the second it is sent in, as real counters do (rewritten once a
    // second per body, and autocannon builds the request each time). Otherwise the pool's second,
    // which is cheaper for the generator but, once its minute has closed, makes every counter late.
    this.requests = fresh
      ? bodies.map((body) => {
          const stamp = `"timestamp":${now},`;
          if (!body.includes(stamp)) throw new Error(`a body without ${stamp}`);
          let second = now;
          let current = Buffer.from(body);
          return {
            setupRequest: (request) => {
              const at = Math.floor(Date.now() / 1000);
              if (at !== second) {
                second = at;
                current = Buffer.from(body.replaceAll(stamp, `"timestamp":${at},`));
              }
              return { ...request, body: current };
            },
          };
        })
      : bodies.map((body) => ({ body: Buffer.from(body) }));
  }

  run(durationS: number, started: () => void): Promise<LoadCounts> {
    const { port, connections, shape } = this.options;
    // autocannon's own histogram has whole-millisecond buckets; loopback latencies need finer ones.
    const latency = new LatencyHistogram();
    let firstError: string | undefined;
    return new Promise((resolve, reject) => {
      const instance = autocannon(
        {
          url: `http://127.0.0.1:${port}/api/events`,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          connections,
          duration: durationS,
          requests: this.requests,
        },
        (error, result) => {
          if (error !== null) {
            reject(error);
            return;
          }
          resolve({
            requests: result.requests.total,
            counters: result['2xx'] * shapes[shape].countersPerBody,
            errors: result.errors + result.timeouts + result.non2xx,
            ...(firstError === undefined ? {} : { firstError }),
            latencyP50Ms: latency.quantileMs(0.5),
            latencyP99Ms: latency.quantileMs(0.99),
          });
        },
      );
      // autocannon builds every request of the pool once per connection, synchronously (half a second
      // for S), then emits 'start' and starts its clock; the window opens there, after the build.
      instance.once('start', started);
      instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
        if (statusCode >= 200 && statusCode < 300) latency.recordMs(responseTimeMs);
        else firstError ??= `HTTP ${statusCode}`;
      });
      instance.on('reqError', (error: Error) => {
        firstError ??= error.message;
      });
    });
  }
}

if (isMain(import.meta.url)) {
  await generatorMain(async () => {
    const shape = process.env['BENCH_SHAPE'];
    if (shape !== 'S' && shape !== 'B') throw new Error(`BENCH_SHAPE must be S or B, got ${JSON.stringify(shape)}`);
    const load = new HttpLoad({
      port: numberEnv('BENCH_PORT', 3000),
      shape,
      connections: numberEnv('BENCH_CONNECTIONS', 64),
      pool: numberEnv('BENCH_POOL', shape === 'S' ? 1000 : 200),
      seed: numberEnv('BENCH_SEED', 42),
      universe: numberEnv('BENCH_UNIVERSE', 10_000),
      fresh: process.env['BENCH_FRESH_TIMESTAMPS'] === '1',
    });
    await runPhases(load, phasePlanFromEnv());
  });
}
