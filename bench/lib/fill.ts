/**
 * Fills one closed minute with N distinct domains (d0.example … d<N-1>.example, seeded counts), sent
 * from the harness itself over a few keep-alive connections. Q and C query that minute (and its hour)
 * afterwards by naming it with `at=`, so the answer they time does not move when the clock does.
 */
import type { Measurement } from './generator.js';
import { domainName, mulberry32 } from './prng.js';
import { RawHttp } from './raw-http.js';
import { machineBusyMs, type ServerProcess } from './server-process.js';
import { LatencyHistogram } from './stats.js';

/** A fill body is a JSON array of 100 counters of 10 distinct domains: 1,000 new names per POST. */
const COUNTERS_PER_BODY = 100;
const DOMAINS_PER_COUNTER = 10;
const CONNECTIONS = 4;

export interface FillPlan {
  /** Pre-formatted POST /api/events requests. */
  requests: Buffer[];
  /** Counter objects across all requests. */
  counters: number;
  domains: number;
}

/** Requests that put `domains` distinct names, each counted once (1..1000 requests), into `minute`. */
export function planFill(minute: number, domains: number, seed: number): FillPlan {
  const random = mulberry32(seed);
  const requests: Buffer[] = [];
  let counters = 0;
  let counter: Record<string, number> = {};
  let body: Array<Record<string, number>> = [];
  const flushBody = () => {
    requests.push(RawHttp.format('POST', '/api/events', JSON.stringify(body)));
    counters += body.length;
    body = [];
  };
  for (let i = 0; i < domains; i++) {
    if (i % DOMAINS_PER_COUNTER === 0) {
      // Spread over the minute's seconds, as real per-second counters would be.
      counter = { timestamp: minute * 60 + ((i / DOMAINS_PER_COUNTER) % 60) };
      body.push(counter);
    }
    counter[domainName(i)] = 1 + Math.floor(random() * 1000);
    if (body.length === COUNTERS_PER_BODY && (i + 1) % DOMAINS_PER_COUNTER === 0) flushBody();
  }
  if (body.length > 0) flushBody();
  return { requests, counters, domains };
}

/** Sends the plan and measures it like a load phase: the server's CPU, the harness's CPU, latencies. */
export async function sendFill(server: ServerProcess, plan: FillPlan): Promise<Measurement> {
  const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => RawHttp.connect(server.port)));
  const latency = new LatencyHistogram();
  let next = 0;
  const serverBefore = server.cpuMs();
  const machineBefore = machineBusyMs();
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  try {
    await Promise.all(
      clients.map(async (client) => {
        while (next < plan.requests.length) {
          const response = await client.send(plan.requests[next++]!);
          if (response.status !== 200) {
            throw new Error(`fill refused with HTTP ${response.status}: ${response.body.toString('utf8').slice(0, 300)}`);
          }
          latency.recordMs(response.ms);
        }
      }),
    );
  } finally {
    for (const client of clients) client.close();
  }
  const cpu = process.cpuUsage(cpuBefore);
  return {
    report: {
      durationS: (performance.now() - startedAt) / 1000,
      requests: plan.requests.length,
      counters: plan.counters,
      errors: 0,
      latencyP50Ms: latency.quantileMs(0.5),
      latencyP99Ms: latency.quantileMs(0.99),
      generatorCpuMs: (cpu.user + cpu.system) / 1000,
    },
    serverCpuMs: server.cpuMs() - serverBefore,
    machineBusyMs: machineBusyMs() - machineBefore,
    probed: Number.NaN,
  };
}
