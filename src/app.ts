// The composition root: builds the parts in dependency order (operations, core state, durability,
// ingest and push, the HTTP/WS front end), then names the steps of a stop. Used by main.ts and by
// the tests, which pass a manual clock and port 0.

import { LocalBackend } from './backend/local-backend.ts';
import type { StateBackend } from './backend/state-backend.ts';
import { openCluster, type ClusterMode } from './cluster/cluster-mode.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import { Durability, type CheckpointBudget } from './durability/durability.ts';
import type { JournalStats } from './durability/journal.ts';
import { TopTallyError } from './errors.ts';
import { bodyReading } from './frontend/body-reading.ts';
import { AccessControl, bearerToken, routeScope } from './access/access.ts';
import { addDashboardRoutes } from './frontend/dashboard-routes.ts';
import { Exchange } from './frontend/http.ts';
import { checkPortFree, listenExclusive } from './frontend/listen.ts';
import { addOpsRoutes, opsReserve } from './frontend/ops-routes.ts';
import { requestScreen } from './frontend/request-screen.ts';
import { Router } from './frontend/router.ts';
import { addRoutes } from './frontend/routes.ts';
import { uWS, uwsImplementation, uwsWarning, type TemplatedApp, type us_listen_socket } from './frontend/uws.ts';
import { WsEndpoint } from './frontend/ws.ts';
import { DecodePool } from './ingest/decode-pool.ts';
import { Ingestor } from './ingest/ingest.ts';
import { OffloadPolicy } from './ingest/offload-policy.ts';
import { WindowTotals } from './ingest/window-totals.ts';
import { InFlight } from './lifecycle/in-flight.ts';
import { runStopSteps, type StopStep } from './lifecycle/shutdown.ts';
import { createLogger, type Logger } from './log.ts';
import { Metrics } from './ops/metrics.ts';
import { Readiness } from './ops/readiness.ts';
import { Publisher } from './push/publisher.ts';
import { WindowTicker } from './push/window-ticker.ts';
import { StatsService } from './query/stats.ts';
import { oldestRetained, type Retention } from './retention.ts';
import type { ShardHandle } from './shards/shard-handle.ts';
import { ShardPool } from './shards/shard-pool.ts';

/** How long a stop waits, all steps together, before it gives up on what is still running. */
const STOP_GRACE_MS = 10_000;

export interface Toptally {
  port: number;
  pool: ShardPool;
  backend: StateBackend;
  router: Router;
  metrics: Metrics;
  ws: WsEndpoint;
  publisher: Publisher;
  ingestor: Ingestor;
  durability: Durability;
  /** Stops accepting, answers what is in flight, stops the workers; resolves within the stop grace. */
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
  /** How long stop() may take, all steps together (default 10 s). */
  stopGraceMs?: number;
  /** When checkpoints run besides each minute (tests make it small). */
  checkpointEvery?: CheckpointBudget;
}

interface Context {
  config: Config;
  clock: Clock;
  log: Logger;
  retention: Retention;
  nowSeconds: () => number;
}

export async function startToptally(config: Config, options: StartOptions = {}): Promise<Toptally> {
  const started = performance.now();
  await checkPortFree(config.host, config.port);
  const clock = options.clock ?? systemClock;
  const ctx: Context = {
    config,
    clock,
    log: options.log ?? createLogger(config.logLevel),
    retention: { minutes: config.retainMinutes, hours: config.retainHours },
    nowSeconds: () => Math.floor(clock.now() / 1000),
  };
  const ops = buildOperations();
  const core = await buildCore(ctx, ops);
  const durability = await openDurability(ctx, ops, core, options);
  const ingest = buildIngest(ctx, ops, core, durability, WindowTotals.from(await core.backend.totals()));
  const push = buildPush(ctx, core, durability);
  const front = buildFrontEnd(ctx, ops, core, ingest, push);
  let listenSocket: us_listen_socket;
  try {
    listenSocket = await listen(front.app, config);
  } catch (err) {
    await Promise.all([push.stop(), durability.close()]);
    await Promise.all([core.backend.stop(), ingest.decoders.close()]);
    throw err;
  }
  const port = uWS.us_socket_local_port(listenSocket);
  logStarted(ctx, core, durability, front.access, port, started);

  let journal: JournalStats | null = null;
  const steps: StopStep[] = [
    { name: 'refuse new connections and requests', run: () => (front.refuseNew(), uWS.us_listen_socket_close(listenSocket)) },
    { name: 'stop window tickers and pushes', run: push.stop },
    { name: 'answer WebSocket ingests in flight', run: () => front.ws.drained() },
    { name: 'answer HTTP requests in flight', run: () => front.http.drained() },
    { name: 'close WebSockets', run: () => front.ws.closeAll() },
    { name: 'close the journal', run: async () => (journal = await durability.close()) },
    { name: 'stop the state backend', run: () => core.backend.stop() },
    { name: 'stop the decode threads', run: () => ingest.decoders.close() },
  ];
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= runStopSteps(steps, options.stopGraceMs ?? STOP_GRACE_MS, ctx.log).then(({ late }) =>
      ctx.log.info({ journal, late }, 'toptally stopped'),
    ));

  const { router, ws } = front;
  return { port, pool: core.pool, backend: core.backend, router, metrics: ops.metrics, ws, publisher: push.publisher, ingestor: ingest.ingestor, durability, stop };
}

interface Operations {
  metrics: Metrics;
  readiness: Readiness;
}

/** What every other part reports to: metrics and readiness. */
function buildOperations(): Operations {
  return { metrics: new Metrics(), readiness: new Readiness() };
}

interface Core {
  pool: ShardPool;
  backend: StateBackend;
  /** Cluster mode (--redis): the shared windows live in Redis, behind the same backend interface. */
  cluster: ClusterMode | null;
  stats: StatsService;
  /** Drops windows (and cached answers) that left the retention. */
  applyRetention(): void;
}

/** The shard workers behind the state backend, and the stats service in front of it. */
async function buildCore({ config, clock, log, retention, nowSeconds }: Context, { metrics, readiness }: Operations): Promise<Core> {
  const pool = await ShardPool.start(config.shards, {
    onExit: (shard, cause) => log.error({ shard, err: cause }, 'shard worker died; restarting it, its requests are answered with 503 meanwhile'),
    // Until durability is open there is nothing to rebuild from: the restart is tried again later.
    recover: () => Promise.reject(new Error('start-up recovery is still running')),
    maxBacklogBytes: config.maxShardBacklog,
  });
  pool.on('restarted', (shard, recovered) => {
    if (recovered) log.info({ shard }, 'shard worker restarted and recovered');
    else log.error({ shard, recovered }, 'shard worker restarted EMPTY: the counts it held are lost (--durability off)');
  });
  pool.on('restartFailed', (shard, err) => log.error({ shard, err }, 'shard worker restart failed; trying again'));
  const local = new LocalBackend(pool);
  const cluster =
    config.redis.length === 0
      ? null
      : await openCluster(config, { local, clock, retention, log, metrics }).catch(async (err: Error) => {
          await pool.stop();
          throw err;
        });
  const backend: StateBackend = cluster?.backend ?? local;
  metrics.watchShards(backend);
  pool.on('restarted', (shard) => metrics.shardRestarted(shard));
  readiness.check('shards', () => {
    const down = backend.unavailable();
    return down.length > 0 ? `unavailable: shard ${down.join(', ')}` : null;
  });
  const stats = new StatsService(backend, clock, retention);
  metrics.watchStatsCache(stats.hits);
  const applyRetention = (): void => {
    const now = nowSeconds();
    backend.retain(oldestRetained(retention, 'minute', now), oldestRetained(retention, 'hour', now));
    stats.prune(now);
  };
  applyRetention();
  return { pool, backend, cluster, stats, applyRetention };
}

/**
 * Recovers the data directory into the backend, before the port opens, so no request sees a
 * half-loaded state; from then on a restarted shard is rebuilt from it.
 */
async function openDurability({ config, clock, log, retention }: Context, { metrics, readiness }: Operations, core: Core, options: StartOptions): Promise<Durability> {
  const recovering = Durability.open(
    { dataDir: config.dataDir, mode: config.durability, repair: config.repair, checkpointEvery: options.checkpointEvery },
    { backend: core.backend, clock, retention, log, flushed: (seconds) => metrics.durabilityFlushed(seconds) },
  );
  readiness.after('recovery', recovering);
  if (options.readyAfter) readiness.after('startup', options.readyAfter);
  let durability: Durability;
  try {
    durability = await recovering;
  } catch (err) {
    await core.backend.stop();
    throw err;
  }
  core.pool.recoverWith(options.recoverShard ?? ((shard, handle) => durability.rebuildShard(shard, handle)));
  readiness.check('journal', () => durability.journalProblem);
  const { cluster } = core;
  if (cluster) {
    // In the background: a node whose Redis is down still starts, journals and says why it is not ready.
    readiness.after('redis', cluster.start(durability));
    readiness.check('cluster', () => cluster.notReady());
  }
  return durability;
}

interface Ingest {
  decoders: DecodePool;
  ingestor: Ingestor;
}

function buildIngest({ config, clock, retention }: Context, { metrics }: Operations, core: Core, durability: Durability, totals: WindowTotals): Ingest {
  const decoders = new DecodePool(config.decodeThreads);
  const ingestor = new Ingestor(core.backend, decoders, clock, {
    retention,
    maxFutureSeconds: config.maxFuture,
    offload: new OffloadPolicy(config.offload, config.offloadBytes),
    limits: { counters: config.maxCounters, domains: config.maxDomains, domainBytes: config.maxDomainBytes },
    onApplied: (result) => metrics.ingested(result.accepted, result.counters),
    durability,
    totals,
    sharedKeys: core.cluster?.sharedKeys,
  });
  return { decoders, ingestor };
}

interface Push {
  publisher: Publisher;
  stop(): void;
}

/** The window tickers: each minute close applies the retention and may checkpoint; both feed pushes. */
function buildPush({ config, clock, log }: Context, core: Core, durability: Durability): Push {
  const tickers = { minute: new WindowTicker(clock, 'minute'), hour: new WindowTicker(clock, 'hour') };
  tickers.minute.on('close', () => {
    core.applyRetention();
    durability.minuteClosed();
  });
  const publisher = new Publisher({
    stats: core.stats,
    clock,
    tickers,
    liveIntervalMs: config.liveInterval,
    whenFinal: core.cluster?.whenFinal,
    onError: (err) => log.warn({ err }, 'computing a top-N push failed'),
  });
  return {
    publisher,
    stop: () => {
      tickers.minute.stop();
      tickers.hour.stop();
      publisher.stop();
    },
  };
}

interface FrontEnd {
  app: TemplatedApp;
  router: Router;
  ws: WsEndpoint;
  access: AccessControl;
  http: InFlight;
  /** From now on, requests (also on kept-alive connections) get 503 TOPTALLY_ERR_SHUTTING_DOWN. */
  refuseNew(): void;
}

function buildFrontEnd({ config, log, nowSeconds }: Context, ops: Operations, core: Core, ingest: Ingest, push: Push): FrontEnd {
  const { metrics } = ops;
  const bodies = bodyReading(config);
  metrics.watchBodies(bodies.budget);
  const http = new InFlight();
  const track = (res: ConstructorParameters<typeof Exchange>[0], route: string): Exchange => {
    http.enter();
    const arrived = performance.now();
    const onFinish = (exchange: Exchange): void => {
      metrics.request(route, exchange.status, (performance.now() - arrived) / 1000);
      if (exchange.errorCode) metrics.rejected(exchange.errorCode);
      http.leave();
    };
    return new Exchange(res, onFinish, bodies);
  };

  // uWS.js has no hook for accepted sockets: what is counted is what holds state here, open
  // WebSockets and HTTP requests in progress (idle keep-alive sockets are closed by uWS after 10 s).
  const overLimit = (open: number, path?: string): TopTallyError | null =>
    open > config.maxConnections + opsReserve(path)
      ? new TopTallyError('TOPTALLY_ERR_TOO_MANY_CONNECTIONS', `Over ${config.maxConnections} connections (--max-connections)`, {
          limit: config.maxConnections,
          retryAfter: 1,
        })
      : null;
  const access = new AccessControl({ ingest: config.ingestTokens, read: config.readTokens });
  const app = uWS.App();
  const screen = requestScreen(config);
  const ws = new WsEndpoint(
    app,
    { ingestor: ingest.ingestor, publisher: push.publisher, metrics, log, access, admit: (sockets) => overLimit(http.count + sockets + 1), screen },
    config,
  );
  let stopping = false;
  const router = new Router(track, (method, path, req) => {
    if (stopping) return new TopTallyError('TOPTALLY_ERR_SHUTTING_DOWN');
    const full = overLimit(http.count + ws.connections, path); // this request is in flight already
    const scope = routeScope(method, path);
    if (full || !scope) return full;
    try {
      AccessControl.require(access.grant(bearerToken(req.getHeader('authorization'))), scope);
      return null;
    } catch (err) {
      return err as TopTallyError;
    }
  }, { log, screen });
  addRoutes(router, { ingestor: ingest.ingestor, stats: core.stats, maxBody: config.maxBody, nowSeconds });
  addOpsRoutes(router, ops);
  addDashboardRoutes(router);
  router.mount(app);
  return {
    app,
    router,
    ws,
    access,
    http,
    refuseNew: () => {
      stopping = true;
      ws.stopAccepting();
    },
  };
}

function listen(app: TemplatedApp, config: Config): Promise<us_listen_socket> {
  return listenExclusive(app, config.host, config.port);
}

/** One line, a warning when anyone may ingest or read: who may do what is part of how it started. */
function logStarted({ config, log }: Context, { backend, cluster }: Core, durability: Durability, access: AccessControl, port: number, started: number): void {
  const openTo = openAccess(access, config.host, port);
  const { recovery } = durability;
  const shards = backend.partitions;
  log[openTo || uwsWarning ? 'warn' : 'info'](
    { uws: uwsImplementation, address: `${config.host}:${port}`, shards, durability: config.durability, recovery, open: [...access.open], startupMs: Math.round(performance.now() - started) },
    `toptally listening on http://${config.host}:${port} (uWebSockets.js ${uwsImplementation}, ${shards} shards)` +
      (uwsWarning ? `; ${uwsWarning}` : '') +
      (recovery
        ? `; recovered ${recovery.windows} windows (${recovery.entries} entries) and ${recovery.records} journal records ` +
          `(${recovery.snapshotBytes} checkpoint bytes, ${recovery.journalBytes} journal bytes) from ${config.dataDir} in ${recovery.ms} ms`
        : '; durability off') +
      `; ${openTo ?? 'ingest and read need a token'}` +
      (cluster ? `; ${cluster.summary}` : ''),
  );
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
