// Prometheus metrics for one toptally instance. Each instance has its own registry, so several
// servers in one process (the tests) never mix their counts.
//
// Hooks for the other layers are the methods under "hooks" below: the WebSocket front end and
// durability are handed this object and call them; nothing else is needed.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from '../errors.ts';
import { uwsImplementation } from '../frontend/uws.ts';
import { RouteRequests } from './route-requests.ts';
import { version } from '../version.ts';
import type { Census } from '../protocol/messages.ts';
import type { StateBackend } from '../backend/state-backend.ts';
import type { WindowKind } from '../window.ts';

export class Metrics {
  readonly registry = new Registry();
  /** Acknowledged since the last scrape. */
  readonly #ingested = { objects: 0, counters: 0 };
  readonly #requests: RouteRequests;
  readonly #aborted: Counter<'route'>;
  readonly #shardRestarts: Counter<'shard'>;
  readonly #rejected: Counter<'code'>;
  readonly #flushSeconds: Histogram;
  readonly #wsConnections: Gauge;
  readonly #wsSubscribers: Gauge<'window'>;

  constructor() {
    const registers = [this.registry];
    // Process metrics and nodejs_eventloop_lag_* (event-loop lag), under the names dashboards know,
    // less three gauges named like counters (promtool refuses them); nodejs_active_handles{type}
    // and its kin, which they sum, stay.
    collectDefaultMetrics({ register: this.registry });
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
    new Gauge({
      name: 'toptally_build_info',
      help: 'Always 1; the labels say which toptally, Node.js and uWebSockets.js build is running',
      labelNames: ['version', 'nodejs', 'uws'],
      registers,
    }).set({ version, nodejs: process.versions.node, uws: uwsImplementation }, 1);
    // Counted in plain numbers, handed to prom-client when scraped: this runs for every ingest.
    const ingested = this.#ingested;
    new Counter({
      name: 'toptally_ingested_objects_total',
      help: 'Counter objects acknowledged (journaled, or handed to every owning shard with --durability off)',
      registers,
      collect() {
        this.inc(ingested.objects);
        ingested.objects = 0;
      },
    });
    new Counter({
      name: 'toptally_ingested_counters_total',
      help: 'Domain counters (one domain of one counter object) acknowledged',
      registers,
      collect() {
        this.inc(ingested.counters);
        ingested.counters = 0;
      },
    });
    this.#aborted = new Counter({
      name: 'toptally_http_requests_aborted_total',
      help: 'HTTP requests whose client went away before the answer, by route',
      labelNames: ['route'],
      registers,
    });
    this.#requests = new RouteRequests({
      counter: { name: 'toptally_http_requests_total', help: 'HTTP requests answered, by route and status code' },
      histogram: {
        name: 'toptally_http_request_duration_seconds',
        help: 'Time from a request\'s arrival to the end of its answer (or to its abort), by route',
        buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      },
      registry: this.registry,
    });
    this.#rejected = new Counter({
      name: 'toptally_rejected_total',
      help: 'Requests and messages refused, by error code (see docs/errors.md)',
      labelNames: ['code'],
      registers,
    });
    this.#shardRestarts = new Counter({
      name: 'toptally_shard_restarts_total',
      help: 'Shard workers replaced after they died, by shard',
      labelNames: ['shard'],
      registers,
    });
    this.#flushSeconds = new Histogram({
      name: 'toptally_durability_flush_seconds',
      help: 'Time to make a batch of accepted counters durable: the fsync (mode fsync) or the write (mode interval)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.#wsConnections = new Gauge({ name: 'toptally_ws_connections', help: 'Open WebSocket connections', registers });
    this.#wsSubscribers = new Gauge({
      name: 'toptally_ws_subscribers',
      help: 'WebSocket subscriptions, by window',
      labelNames: ['window'],
      registers,
    });
    for (const window of ['minute', 'hour'] as const) this.#wsSubscribers.set({ window }, 0);
  }

  /**
   * Per-shard series, read from the backend's partitions at each scrape. Every shard has every
   * series all the time: while a shard is down its up gauge is 0 and what it holds is NaN
   * (unknown), so no series vanishes and comes back.
   */
  watchShards(backend: StateBackend): void {
    new Gauge({
      name: 'toptally_shard_up',
      help: 'Whether a shard worker is up and taking requests (0 while it is down or being rebuilt)',
      labelNames: ['shard'],
      registers: [this.registry],
      collect() {
        const down = new Set(backend.unavailable());
        for (let shard = 0; shard < backend.partitions; shard++) this.set({ shard }, down.has(shard) ? 0 : 1);
      },
    });
    for (let shard = 0; shard < backend.partitions; shard++) this.#shardRestarts.inc({ shard }, 0);
    new Gauge({
      name: 'toptally_shard_queue_depth',
      help: 'Requests sent to a shard worker and not yet answered',
      labelNames: ['shard'],
      registers: [this.registry],
      collect() {
        for (const { partition, pending } of backend.owed()) this.set({ shard: partition }, pending);
      },
    });
    new Gauge({
      name: 'toptally_shard_backlog_bytes',
      help: 'Bytes of counters a shard owes (queued, not yet applied); past --max-shard-backlog its ingest gets 503',
      labelNames: ['shard'],
      registers: [this.registry],
      collect() {
        for (const { partition, backlogBytes } of backend.owed()) this.set({ shard: partition }, backlogBytes);
      },
    });
    // One census per scrape feeds the three gauges: the first collect asks, the others share it.
    let census: Promise<(Census | null)[]> | null = null;
    const sharedCensus = (): Promise<(Census | null)[]> => {
      census ??= backend.census().finally(() => setImmediate(() => (census = null)));
      return census;
    };
    const shardGauge = (name: string, help: string, field: keyof Census): void => {
      new Gauge({
        name,
        help: `${help} (NaN while the shard is down)`,
        labelNames: ['shard'],
        registers: [this.registry],
        async collect() {
          const held = await sharedCensus();
          this.reset();
          held.forEach((result, partition) => {
            this.set({ shard: partition }, result ? result[field] : Number.NaN);
          });
        },
      });
    };
    shardGauge('toptally_shard_domains', 'Distinct domains a shard holds in any retained window', 'domains');
    shardGauge('toptally_shard_entries', '(domain, window) entries a shard holds, minute and hour windows together', 'entries');
    shardGauge('toptally_shard_table_bytes', "Bytes of a shard's name and count tables", 'bytes');
  }

  /** The bytes request bodies hold, read from the budget at each scrape. */
  watchBodies(budget: { used: number; limit: number }): void {
    new Gauge({
      name: 'toptally_body_bytes',
      help: 'Bytes held by request bodies being received or decoded; past --max-inflight-bytes a body gets 503',
      registers: [this.registry],
      collect() {
        this.set(budget.used);
      },
    });
  }

  /** Stats answers served from the stats cache, read at each scrape. */
  watchStatsCache(hits: { open: number; closed: number }): void {
    new Counter({
      name: 'toptally_stats_cache_hits_total',
      help: 'Stats answers served from the cache, by whether the window was still open',
      labelNames: ['window_state'],
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc({ window_state: 'open' }, hits.open);
        this.inc({ window_state: 'closed' }, hits.closed);
      },
    });
  }

  /** An ingest (over any transport) was acknowledged. */
  ingested(objects: number, counters: number): void {
    this.#ingested.objects += objects;
    this.#ingested.counters += counters;
  }

  /** An HTTP exchange finished after `seconds`; status 0 means the client went away before the reply. */
  request(route: string, status: number, seconds: number): void {
    if (status === 0) this.#aborted.inc({ route });
    this.#requests.observe(route, status, seconds);
  }

  // --- hooks -------------------------------------------------------------------------------------

  /** Input refused with this code: HTTP error replies here, WebSocket error frames. */
  rejected(code: ErrorCode): void {
    this.#rejected.inc({ code });
  }

  /** A shard worker that died was replaced. */
  shardRestarted(shard: number): void {
    this.#shardRestarts.inc({ shard });
  }

  /** Durability: one flush of accepted counters to disk took this long. */
  durabilityFlushed(seconds: number): void {
    this.#flushSeconds.observe(seconds);
  }

  /** WebSocket: a connection opened. */
  wsConnectionOpened(): void {
    this.#wsConnections.inc();
  }

  /** WebSocket: a connection closed; call wsUnsubscribed for its subscriptions too. */
  wsConnectionClosed(): void {
    this.#wsConnections.dec();
  }

  /** WebSocket: a connection subscribed to a window's top-N. */
  wsSubscribed(window: WindowKind): void {
    this.#wsSubscribers.inc({ window });
  }

  /** WebSocket: a subscription ended (unsubscribe or connection closed). */
  wsUnsubscribed(window: WindowKind): void {
    this.#wsSubscribers.dec({ window });
  }

  // -----------------------------------------------------------------------------------------------

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
