// Wires the data flow together: front end -> ingest/partition -> shard actors -> query/merge.
// Used by main.ts and by the tests, which pass a manual clock and port 0.

import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import { AccessControl, bearerToken, routeScope } from './frontend/access.ts';
import { BodyBuffers } from './frontend/body-buffers.ts';
import { Durability, type CheckpointBudget } from './durability/durability.ts';
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
import { WindowTotals } from './ingest/window-totals.ts';
import { TopTallyError } from './errors.ts';
import { createLogger, type Logger } from './log.ts';
import { Metrics } from './ops/metrics.ts';
import { Readiness } from './ops/readiness.ts';
import { Publisher } from './push/publisher.ts';
import { WindowTicker } from './push/window-ticker.ts';
import { StatsService } from './query/stats.ts';
import { oldestRetained, type Retention } from './retention.ts';
import type { ShardHandle } from './shards/shard-handle.ts';
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
  /**
   * Fills a restarted shard before it takes traffic, instead of the rebuild from the data directory
   * (tests hold a restart with it); resolves true when the shard's state was rebuilt.
   */
  recoverShard?: (shard: number, handle: ShardHandle) => Promise<boolean>;
  /** When checkpoints run besides each minute (tests make it small). */
  checkpointEvery?: CheckpointBudget;
}

export async function startToptally(config: Config, options: StartOptions = {}): Promise<Toptally> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? createLogger(config.logLevel);
  const started = performance.now();
  const retention: Retention = { minutes: config.retainMinutes, hours: config.retainHours };
  const metrics = new Metrics();
  const readiness = new Readiness();

  // Assigned once start-up recovery is done; a shard dying before that fails the start anyway.
  let durability: Durability | undefined;
  const pool = await ShardPool.start(config.shards, {
    onExit: (shard, cause) => log.error({ shard, err: cause.message }, 'shard worker died; restarting it, its requests are answered with 503 meanwhile'),
    recover: (shard, handle) => (options.recoverShard ?? durability!.rebuildShard.bind(durability))(shard, handle),
    maxBacklogBytes: config.maxShardBacklog,
  });
  pool.on('restarted', (shard, recovered) => {
    if (recovered) log.info({ shard }, 'shard worker restarted and recovered');
    else log.error({ shard, recovered }, 'shard worker restarted EMPTY: the counts it held are lost (--durability off)');
  });
  pool.on('restartFailed', (shard, err) => log.error({ shard, err: err.message }, 'shard worker restart failed; trying again'));
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
    { dataDir: config.dataDir, mode: config.durability, repair: config.repair, checkpointEvery: options.checkpointEvery },
    { pool, clock, retention, log, flushed: (seconds) => metrics.durabilityFlushed(seconds) },
  );
  readiness.after('recovery', recovering);
  if (options.readyAfter) readiness.after('startup', options.readyAfter);
  try {
    durability = await recovering;
  } catch (err) {
    await pool.stop();
    throw err;
  }
  readiness.check('journal', () => durability.journalProblem);
  const decoders = new DecodePool(config.decodeThreads);
  const offload = new OffloadPolicy(config.offload, config.offloadBytes);
  const ingestor = new Ingestor(pool, decoders, stats, clock, {
    retention,
    maxFutureSeconds: config.maxFuture,
    offload,
    limits: { counters: config.maxCounters, domains: config.maxDomains, domainBytes: config.maxDomainBytes },
    onApplied: (result) => metrics.ingested(result.accepted, result.counters),
    durability,
    totals: WindowTotals.from(await pool.totals()),
  });
  const ticker = new WindowTicker(clock, 'minute');
  ticker.on('close', () => {
    applyRetention();
    durability.minuteClosed();
  });

  const bodyBuffers = new BodyBuffers();
  let inFlight = 0;
  let drained: (() => void) | null = null;
  const track = (res: ConstructorParameters<typeof Exchange>[0], route: string): Exchange => {
    inFlight++;
    const onFinish = (exchange: Exchange): void => {
      metrics.request(route, exchange.status);
      if (exchange.errorCode) metrics.rejected(exchange.errorCode);
      if (--inFlight === 0) drained?.();
    };
    return new Exchange(res, onFinish, config.bodyTimeout, bodyBuffers);
  };

  // uWS.js has no hook for accepted sockets: what is counted is what holds state here, open
  // WebSockets and HTTP requests in progress (idle keep-alive sockets are closed by uWS after 10 s).
  let ws!: WsEndpoint;
  const admit = (adding: number): TopTallyError | null =>
    inFlight + ws.connections + adding > config.maxConnections
      ? new TopTallyError('TOPTALLY_ERR_TOO_MANY_CONNECTIONS', `Over ${config.maxConnections} connections (--max-connections)`, {
          limit: config.maxConnections,
          retryAfter: 1,
        })
      : null;
  const access = new AccessControl({ ingest: config.ingestTokens, read: config.readTokens });
  const router = new Router(track, (method, path, req) => {
    const full = admit(0); // this request is in inFlight already
    const scope = routeScope(method, path);
    if (full || !scope) return full;
    try {
      AccessControl.require(access.grant(bearerToken(req.getHeader('authorization'))), scope);
      return null;
    } catch (err) {
      return err as TopTallyError;
    }
  });
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
  ws = new WsEndpoint(app, { ingestor, publisher, metrics, log, access, admit: () => admit(1) }, config);
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
  // One line, a warning when anyone may ingest or read: who may do what is part of how it started.
  const openTo = openAccess(access, config.host, port);
  const { recovery } = durability;
  log[openTo ? 'warn' : 'info'](
    { uws: uwsImplementation, address: `${config.host}:${port}`, shards: pool.size, durability: config.durability, recovery, open: [...access.open], startupMs: Math.round(performance.now() - started) },
    `toptally listening on http://${config.host}:${port} (uWebSockets.js ${uwsImplementation}, ${pool.size} shards)` +
      (recovery
        ? `; recovered ${recovery.windows} windows (${recovery.entries} entries) and ${recovery.records} journal records ` +
          `(${recovery.snapshotBytes + recovery.journalBytes} bytes) from ${config.dataDir} in ${recovery.ms} ms`
        : '; durability off') +
      `; ${openTo ?? 'ingest and read need a token'}`,
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
      const journal = await durability.close();
      await Promise.all([pool.stop(), decoders.close()]);
      log.info({ journal }, 'toptally stopped');
    })());

  return { port, pool, router, metrics, ws, publisher, ingestor, durability, stop };
}

const LOOPBACK = /^(127\.|::1$|localhost$)/;

/** Who may do what without a token, in words; null when nobody may do anything. Never names a token. */
function openAccess(access: AccessControl, host: string, port: number): string | null {
  const open = [...access.open];
  if (open.length === 0) return null;
  const what = open.map((scope) => (scope === 'ingest' ? 'post counters' : 'read stats')).join(' and ');
  const flags = open.map((scope) => `--${scope}-token`).join(' or ');
  const reach = LOOPBACK.test(host) ? `this machine (${host}:${port})` : `${host}:${port}, which is not a loopback address,`;
  return `no ${flags}: anyone who can connect to ${reach} may ${what}`;
}
