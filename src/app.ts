// Wires the data flow together: front end -> ingest/partition -> shard actors -> query/merge.
// Used by main.ts and by the tests, which pass a manual clock and port 0.

import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import { Durability } from './durability/durability.ts';
import { addDashboardRoutes } from './frontend/dashboard-routes.ts';
import { Exchange } from './frontend/http.ts';
import { addOpsRoutes } from './frontend/ops-routes.ts';
import { Router } from './frontend/router.ts';
import { addRoutes } from './frontend/routes.ts';
import { uWS, uwsImplementation, type us_listen_socket } from './frontend/uws.ts';
import { WsEndpoint } from './frontend/ws.ts';
import { DecodePool } from './ingest/decode-pool.ts';
import { Ingestor } from './ingest/ingest.ts';
import { OffloadPolicy } from './ingest/offload-policy.ts';
import { createLogger, type Logger } from './log.ts';
import { Metrics } from './ops/metrics.ts';
import { Readiness } from './ops/readiness.ts';
import { Publisher } from './push/publisher.ts';
import { WindowTicker } from './push/window-ticker.ts';
import { StatsService } from './query/stats.ts';
import { oldestRetained, type Retention } from './retention.ts';
import { ShardPool } from './shards/shard-pool.ts';

/** How long a stop waits for requests in flight. */
const STOP_GRACE_MS = 10_000;

export interface Toptally {
  port: number;
  pool: ShardPool;
  router: Router;
  metrics: Metrics;
  ws: WsEndpoint;
  publisher: Publisher;
  ingestor: Ingestor;
  durability: Durability;
  /** Stops accepting, answers what is in flight, stops the workers. */
  stop(): Promise<void>;
}

export interface StartOptions {
  clock?: Clock;
  log?: Logger;
  /** /readyz answers 503 until this has resolved too (tests hold it to see start-up from outside). */
  readyAfter?: Promise<unknown>;
}

export async function startToptally(config: Config, options: StartOptions = {}): Promise<Toptally> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? createLogger(config.logLevel);
  const started = performance.now();
  const retention: Retention = { minutes: config.retainMinutes, hours: config.retainHours };
  const metrics = new Metrics();
  const readiness = new Readiness();

  const pool = await ShardPool.start(config.shards, (shard, cause) => {
    log.error({ shard, err: cause.message }, 'shard worker died; its requests are answered with 503');
  });
  metrics.watchShards(pool);
  readiness.check('shards', () => {
    const down = pool.shards.filter((shard) => shard.failed).map((shard) => shard.index);
    return down.length > 0 ? `unavailable: shard ${down.join(', ')}` : null;
  });
  const stats = new StatsService(pool, clock, retention);
  const nowSeconds = (): number => Math.floor(clock.now() / 1000);
  const applyRetention = (): void => {
    const now = nowSeconds();
    pool.retain(oldestRetained(retention, 'minute', now), oldestRetained(retention, 'hour', now));
    stats.prune(now);
  };
  applyRetention();
  // Recovery fills the shards before the port opens, so no request sees a half-loaded state.
  const recovering = Durability.open(
    { dataDir: config.dataDir, mode: config.durability, repair: config.repair },
    { pool, clock, retention, log },
  );
  readiness.after('recovery', recovering);
  if (options.readyAfter) readiness.after('startup', options.readyAfter);
  let durability: Durability;
  try {
    durability = await recovering;
  } catch (err) {
    await pool.stop();
    throw err;
  }
  const decoders = new DecodePool(config.decodeThreads);
  const offload = new OffloadPolicy(config.offload, config.offloadBytes, config.decodeThreads);
  const ingestor = new Ingestor(pool, decoders, stats, clock, {
    retention,
    maxFutureSeconds: config.maxFuture,
    offload,
    onApplied: (result) => metrics.ingested(result.accepted, result.counters),
    durability,
  });
  const ticker = new WindowTicker(clock, 'minute');
  ticker.on('close', () => {
    applyRetention();
    durability.minuteClosed();
  });

  let inFlight = 0;
  let drained: (() => void) | null = null;
  const track = (res: ConstructorParameters<typeof Exchange>[0], route: string): Exchange => {
    inFlight++;
    return new Exchange(res, (exchange) => {
      metrics.request(route, exchange.status);
      if (exchange.errorCode) metrics.rejected(exchange.errorCode);
      if (--inFlight === 0) drained?.();
    });
  };

  const router = new Router(track);
  addRoutes(router, { ingestor, stats, maxBody: config.maxBody, nowSeconds });
  addOpsRoutes(router, { metrics, readiness });
  addDashboardRoutes(router);
  const app = uWS.App();
  const hourTicker = new WindowTicker(clock, 'hour');
  const publisher = new Publisher({
    stats,
    clock,
    tickers: { minute: ticker, hour: hourTicker },
    liveIntervalMs: config.liveInterval,
    onError: (err) => log.warn({ err }, 'computing a top-N push failed'),
  });
  const ws = new WsEndpoint(app, { ingestor, publisher, metrics, log }, config);
  router.mount(app);

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (socket) =>
      socket ? resolve(socket) : reject(new Error(`cannot listen on ${config.host}:${config.port}`)),
    );
  }).catch(async (err: Error) => {
    ticker.stop();
    hourTicker.stop();
    publisher.stop();
    await durability.close();
    await Promise.all([pool.stop(), decoders.close()]);
    throw err;
  });
  const port = uWS.us_socket_local_port(listenSocket);
  const { recovery } = durability;
  log.info(
    { uws: uwsImplementation, address: `${config.host}:${port}`, shards: pool.size, durability: config.durability, recovery, startupMs: Math.round(performance.now() - started) },
    `toptally listening on http://${config.host}:${port} (uWebSockets.js ${uwsImplementation}, ${pool.size} shards)` +
      (recovery
        ? `; recovered ${recovery.windows} windows (${recovery.entries} entries) and ${recovery.records} journal records ` +
          `(${recovery.snapshotBytes + recovery.journalBytes} bytes) from ${config.dataDir} in ${recovery.ms} ms`
        : '; durability off'),
  );

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      uWS.us_listen_socket_close(listenSocket);
      ticker.stop();
      hourTicker.stop();
      publisher.stop();
      await ws.stop();
      if (inFlight > 0) {
        // A client that never finishes its body must not hold the process forever.
        const grace = setTimeout(() => drained?.(), STOP_GRACE_MS);
        await new Promise<void>((resolve) => (drained = resolve));
        clearTimeout(grace);
      }
      offload.stop();
      const journal = await durability.close();
      await Promise.all([pool.stop(), decoders.close()]);
      log.info({ journal }, 'toptally stopped');
    })());

  return { port, pool, router, metrics, ws, publisher, ingestor, durability, stop };
}
