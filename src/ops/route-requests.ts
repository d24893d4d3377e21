// HTTP requests answered, by route: the count by status and the duration histogram, kept in plain
// numbers per route and shaped for the registry only when it is scraped. prom-client's own metrics
// hash their label values on every call, and this runs for every request; a route's tally is found
// by its name, a string the router made once.

import type { MetricValueWithName, Registry } from 'prom-client';

interface RouteTally {
  /** Answers by status code. */
  statuses: Map<number, number>;
  /** counts[i]: durations at most buckets[i] and above buckets[i - 1]; the last one is above them all. */
  counts: Float64Array;
  sum: number;
  count: number;
}

export interface RouteRequestsOptions {
  counter: { name: string; help: string };
  histogram: { name: string; help: string; buckets: readonly number[] };
  registry: Registry;
}

export class RouteRequests {
  readonly #buckets: readonly number[];
  readonly #routes = new Map<string, RouteTally>();

  constructor({ counter, histogram, registry }: RouteRequestsOptions) {
    this.#buckets = histogram.buckets;
    // The registry takes any object with a name and a get() giving prom-client's metric shape.
    registry.registerMetric(metric(counter.name, counter.help, 'counter', () => this.#counts(counter.name)) as never);
    registry.registerMetric(metric(histogram.name, histogram.help, 'histogram', () => this.#histogram(histogram.name)) as never);
  }

  /** A request to `route` was answered with `status` after `seconds`; status 0: only its duration (the client left). */
  observe(route: string, status: number, seconds: number): void {
    let tally = this.#routes.get(route);
    if (tally === undefined) {
      tally = { statuses: new Map(), counts: new Float64Array(this.#buckets.length + 1), sum: 0, count: 0 };
      this.#routes.set(route, tally);
    }
    if (status !== 0) tally.statuses.set(status, (tally.statuses.get(status) ?? 0) + 1);
    const buckets = this.#buckets;
    let i = 0;
    while (i < buckets.length && seconds > buckets[i]) i++;
    tally.counts[i]++;
    tally.sum += seconds;
    tally.count++;
  }

  #counts(name: string): MetricValueWithName<string>[] {
    const values: MetricValueWithName<string>[] = [];
    for (const [route, tally] of this.#routes) {
      for (const [status, value] of tally.statuses) values.push({ metricName: name, labels: { route, status }, value });
    }
    return values;
  }

  #histogram(name: string): MetricValueWithName<string>[] {
    const values: MetricValueWithName<string>[] = [];
    const buckets = this.#buckets;
    for (const [route, tally] of this.#routes) {
      let below = 0;
      for (let i = 0; i < buckets.length; i++) {
        below += tally.counts[i];
        values.push({ metricName: `${name}_bucket`, labels: { le: buckets[i], route }, value: below });
      }
      values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', route }, value: tally.count });
      values.push({ metricName: `${name}_sum`, labels: { route }, value: tally.sum });
      values.push({ metricName: `${name}_count`, labels: { route }, value: tally.count });
    }
    return values;
  }
}

function metric(name: string, help: string, type: 'counter' | 'histogram', values: () => MetricValueWithName<string>[]) {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: values() }),
    reset: () => {},
  };
}
