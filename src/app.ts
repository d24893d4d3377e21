// Wires the data flow together: front end -> ingest/partition -> shard actors -> query/merge.
// Used by main.ts and by the tests, which pass a manual clock and port 0.

import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import { Durability } from './durability/durability.ts';
import { Exchange } from './frontend/http.ts';
import { Router } from './frontend/router.ts';
import { addRoutes } from './frontend/routes.ts';
import { uWS, uwsImplementation, type us_listen_socket } from './frontend/uws.ts';
import { Ingestor } from './ingest/ingest.ts';
import { createLogger, type Logger } from './log.ts';
import { WindowTicker } from './push/window-ticker.ts';
import { StatsService } from './query/stats.ts';
import { oldestRetained, type Retention } from './retention.ts';
import { ShardPool } from './shards/shard-pool.ts';

export interface Toptally {
  port: number;
  pool: ShardPool;
  ingestor: Ingestor;
  durability: Durability;
  /** Stops accepting, answers what is in flight, stops the workers. */
  stop(): Promise<void>;
}

export interface StartOptions {
  clock?: Clock;
  log?: Logger;
}

export async function startToptally(config: Config, options: StartOptions = {}): Promise<Toptally> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? createLogger(config.logLevel);
  const started = performance.now();
  const retention: Retention = { minutes: config.retainMinutes, hours: config.retainHours };

  const pool = await ShardPool.start(config.shards, (shard, cause) => {
    log.error({ shard, err: cause.message }, 'shard worker died; its requests are answered with 503');
  });
  const stats = new StatsService(pool, clock, retention);

  const nowSeconds = (): number => Math.floor(clock.now() / 1000);
  const applyRetention = (): void => {
    const now = nowSeconds();
    pool.retain(oldestRetained(retention, 'minute', now), oldestRetained(retention, 'hour', now));
    stats.prune(now);
  };
  applyRetention();
  // Recovery fills the shards before the port opens: no request sees a half-loaded state.
  let durability: Durability;
  try {
    durability = await Durability.open(
      { dataDir: config.dataDir, mode: config.durability, repair: config.repair },
      { pool, clock, retention, log },
    );
  } catch (err) {
    await pool.stop();
    throw err;
  }
  const ingestor = new Ingestor(pool, stats, clock, { retention, maxFutureSeconds: config.maxFuture }, durability);
  const ticker = new WindowTicker(clock, 'minute');
  ticker.on('close', () => {
    applyRetention();
    durability.minuteClosed();
  });

  let inFlight = 0;
  let drained: (() => void) | null = null;
  const track = (res: ConstructorParameters<typeof Exchange>[0]): Exchange => {
    inFlight++;
    return new Exchange(res, () => {
      if (--inFlight === 0) drained?.();
    });
  };

  const router = new Router(track);
  addRoutes(router, { ingestor, stats, maxBody: config.maxBody, nowSeconds });
  const app = uWS.App();
  router.mount(app);

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (socket) =>
      socket ? resolve(socket) : reject(new Error(`cannot listen on ${config.host}:${config.port}`)),
    );
  }).catch(async (err: unknown) => {
    ticker.stop();
    await durability.close();
    await pool.stop();
    throw err;
  });
  const port = uWS.us_socket_local_port(listenSocket);
  log.info(
    { uws: uwsImplementation, address: `${config.host}:${port}`, shards: pool.size, durability: config.durability, startupMs: Math.round(performance.now() - started) },
    `toptally listening on http://${config.host}:${port} (uWebSockets.js ${uwsImplementation}, ${pool.size} shards)`,
  );

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      uWS.us_listen_socket_close(listenSocket);
      ticker.stop();
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
      await durability.close();
      await pool.stop();
      log.info('toptally stopped');
    })());

  return { port, pool, ingestor, durability, stop };
}
