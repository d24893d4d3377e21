// What operators and their tools read: /metrics (Prometheus), /healthz, /readyz, /openapi.json
// and /asyncapi.json.

import { asyncApiDocument } from '../ops/asyncapi.ts';
import type { Metrics } from '../ops/metrics.ts';
import { openApiDocument } from '../ops/openapi.ts';
import type { Readiness } from '../ops/readiness.ts';
import type { Router } from './router.ts';

export interface OpsDeps {
  metrics: Metrics;
  readiness: Readiness;
}

const NO_STORE = { 'Cache-Control': 'no-store' };

/**
 * Requests to the probes and /metrics that may be in progress beyond --max-connections: a server
 * full of clients is still alive, and a liveness probe that heard 503 would restart it.
 */
export const OPS_RESERVE = 16;
const OPS_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** The connections `path` may use beyond the limit. */
export function opsReserve(path: string | undefined): number {
  return path !== undefined && OPS_PATHS.has(path) ? OPS_RESERVE : 0;
}

export function addOpsRoutes(router: Router, { metrics, readiness }: OpsDeps): void {
  router.add('GET', ['/metrics'], (exchange) =>
    metrics.text().then(
      (text) => exchange.send(200, metrics.contentType, text, NO_STORE),
      (err) => exchange.error(err),
    ),
  );

  router.add('GET', ['/healthz'], (exchange) => exchange.json(200, { ok: true }, NO_STORE));

  router.add('GET', ['/readyz'], (exchange) => {
    const report = readiness.report();
    exchange.json(report.ready ? 200 : 503, report, NO_STORE);
  });

  const openApi = JSON.stringify(openApiDocument());
  router.add('GET', ['/openapi.json'], (exchange) => exchange.send(200, 'application/json', openApi));
  const asyncApi = JSON.stringify(asyncApiDocument());
  router.add('GET', ['/asyncapi.json'], (exchange) => exchange.send(200, 'application/json', asyncApi));
}
