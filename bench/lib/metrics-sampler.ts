/**
 * Scrapes a server's Prometheus /metrics through a run, on its own connection, for what only the
 * server can see: the main thread's event-loop delay and (toptally) what its shard tables hold.
 * prom-client resets its event-loop histogram at every scrape, so the largest
 * `nodejs_eventloop_lag_max_seconds` over back-to-back scrapes is the largest of the whole run.
 *
 * That histogram (perf_hooks.monitorEventLoopDelay) records the time between two ticks of a timer
 * that should tick every 10 ms (prom-client's default precision): an idle loop reads 10 ms. A stall
 * of D ms makes one interval between D and D + 10 ms long, so interval - 10 ms is the delay reported
 * here, a lower bound that is exact to within the 10 ms.
 */
import { RawHttp } from './raw-http.js';

export interface MetricsSummary {
  /** Largest event-loop delay seen between the first scrape and the last, beyond the 10 ms timer interval. */
  eventLoopMaxMs: number;
  /** The same as prom-client exports it: the longest interval between two 10 ms timer ticks. */
  eventLoopMaxIntervalMs: number;
  /** Sums over shards; NaN when the server does not export them. */
  shardEntries: number;
  shardTableBytes: number;
  scrapes: number;
}

const INTERVAL_MS = 250;
/** prom-client's default eventLoopMonitoringPrecision, which toptally keeps. */
const LAG_TIMER_MS = 10;

export class MetricsSampler {
  private maxLagS = 0;
  private scrapes = 0;
  private running = true;
  private failure: Error | undefined;
  private readonly loop: Promise<void>;

  private constructor(private readonly client: RawHttp) {
    // Kept, not thrown: stop() reports it, and an unawaited rejection would end the harness.
    this.loop = this.sample().catch((error: Error) => {
      this.failure = error;
    });
  }

  /** Undefined when the server has no /metrics with an event-loop delay (the naive baselines). */
  static async start(port: number): Promise<MetricsSampler | undefined> {
    const client = await RawHttp.connect(port);
    // This first scrape also resets the histogram, so start-up is not counted.
    const first = await client.get('/metrics');
    if (first.status !== 200 || value(first.body.toString('utf8'), 'nodejs_eventloop_lag_max_seconds') === undefined) {
      client.close();
      return undefined;
    }
    return new MetricsSampler(client);
  }

  /** Stops sampling and scrapes once more, so the summary covers everything up to now. */
  async stop(): Promise<MetricsSummary> {
    this.running = false;
    await this.loop;
    try {
      if (this.failure !== undefined) throw this.failure;
      const text = await this.scrape();
      return {
        eventLoopMaxMs: Math.max(0, this.maxLagS * 1000 - LAG_TIMER_MS),
        eventLoopMaxIntervalMs: this.maxLagS * 1000,
        shardEntries: sum(text, 'toptally_shard_entries'),
        shardTableBytes: sum(text, 'toptally_shard_table_bytes'),
        scrapes: this.scrapes,
      };
    } finally {
      this.client.close();
    }
  }

  /** Stops sampling without a summary, when the run failed. */
  cancel(): void {
    this.running = false;
    this.client.close();
  }

  private async sample(): Promise<void> {
    while (this.running) {
      await this.scrape();
      await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
    }
  }

  private async scrape(): Promise<string> {
    const response = await this.client.get('/metrics');
    if (response.status !== 200) throw new Error(`GET /metrics: HTTP ${response.status}`);
    const text = response.body.toString('utf8');
    this.maxLagS = Math.max(this.maxLagS, value(text, 'nodejs_eventloop_lag_max_seconds') ?? 0);
    this.scrapes++;
    return text;
  }
}

/** The value of an unlabelled metric line `name value`. */
function value(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match === null ? undefined : Number(match[1]);
}

/** The sum of a labelled metric over its series (`name{shard="0"} value`); NaN when absent. */
function sum(text: string, name: string): number {
  const values = [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'gm'))].map((m) => Number(m[1]));
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0);
}
