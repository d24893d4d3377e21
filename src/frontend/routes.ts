// The HTTP API: ingest at POST /api/events, stats in the seed's format and in the parameterised one.

import { TopTallyError } from '../errors.ts';
import { formatOf } from '../ingest/decode.ts';
import type { Ingestor } from '../ingest/ingest.ts';
import type { StatsService, WindowStats } from '../query/stats.ts';
import { windowIndex, type WindowKind } from '../window.ts';
import { parseStatsParams } from '../api/params.ts';
import { SEED_STATS_PATHS } from '../api/routes.ts';
import type { Router } from './router.ts';
import type { HttpRequest } from './uws.ts';

export interface RouteDeps {
  ingestor: Ingestor;
  stats: StatsService;
  maxBody: number;
  nowSeconds: () => number;
}

export function addRoutes(router: Router, deps: RouteDeps): void {
  router.add('POST', ['/api/events'], (exchange, req) => {
    let format;
    try {
      format = formatOf(req.getHeader('content-type'));
    } catch (err) {
      return exchange.error(err, {}, true);
    }
    // getHeader gives '' for a missing header and for an empty one; uWS also ends a value at its
    // first byte >= 0x80, so a key starting with one arrives empty. Either is refused, not ignored.
    const key = req.getHeader('idempotency-key') || (hasHeader(req, 'idempotency-key') ? '' : undefined);
    // The body's memory is held until the answer: decoding it is part of what the budget bounds.
    return exchange.readBody(deps.maxBody, req.getHeader('content-length')).then(
      (body) =>
        deps.ingestor.ingest(body, format, { key, lent: exchange.bodyLent }).then(
          (result) => {
            exchange.json(200, result);
            exchange.releaseBody();
          },
          (err) => {
            exchange.error(err);
            exchange.releaseBody();
          },
        ),
      (err) => exchange.error(err, {}, true),
    );
  });

  const query = async (kind: WindowKind, rawQuery: string, fixed: boolean): Promise<WindowStats> => {
    const params = parseStatsParams(rawQuery, fixed ? kind : undefined);
    const now = deps.nowSeconds();
    if (params.at !== undefined && params.at > now) {
      throw new TopTallyError('TOPTALLY_ERR_INVALID_PARAMETER', `"at" (${params.at}) is in the future; now is ${now}`, {
        parameter: 'at',
      });
    }
    const at = params.at ?? now;
    const index = windowIndex(params.window, at) - (params.open ? 0 : 1);
    return deps.stats.top(params.window, index, params.limit);
  };

  for (const kind of ['minute', 'hour'] as const) {
    router.add('GET', SEED_STATS_PATHS[kind], (exchange, req) => {
      return query(kind, req.getQuery() ?? '', true).then(
        (stats) => exchange.json(200, stats.top.map((e) => ({ Domain: e.domain, NumberOfRequests: e.count }))),
        (err) => exchange.error(err),
      );
    });
  }

  router.add('GET', ['/api/stats'], (exchange, req) => {
    return query('minute', req.getQuery() ?? '', false).then(
      ({ window, total, domains, top }) =>
        exchange.json(200, { window: window.kind, from: window.from, to: window.to, total, domains, top }),
      (err) => exchange.error(err),
    );
  });
}

function hasHeader(req: HttpRequest, name: string): boolean {
  let found = false;
  req.forEach((header) => (found ||= header === name));
  return found;
}
