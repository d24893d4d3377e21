// The OpenAPI 3 description of the HTTP API, served at /openapi.json (the WebSocket protocol is
// described beside it, in ./asyncapi.ts). A test compares its paths and methods with the routes the
// server really has, lints it with Redocly's linter and checks real answers against its schemas.

import { ERRORS } from '../errors.ts';
import { version } from '../version.ts';
import { routeScope } from '../access/access.ts';
import { MAX_LIMIT } from '../api/params.ts';
import { DASHBOARD_ASSET_NAMES, SEED_STATS_PATHS } from '../api/routes.ts';

type Json = { [key: string]: unknown };

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json): Json => ({ 'application/json': { schema } });
const errorReply = (description: string, headers?: Json): Json => ({ description, content: json(ref('Error')), ...(headers && { headers }) });
const header = (description: string, schema: Json): Json => ({ description, schema });
const RETRY_AFTER = { 'Retry-After': header('Seconds to wait before trying again', { type: 'integer', minimum: 0 }) };
const WWW_AUTHENTICATE = {
  'WWW-Authenticate': header('The Bearer challenge (RFC 6750): realm, and the error and scope when a token was refused', { type: 'string' }),
};
const methodNotAllowed: Json = { $ref: '#/components/responses/MethodNotAllowed' };

const limit: Json = {
  name: 'limit',
  in: 'query',
  description: 'How many domains to return',
  schema: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 10 },
};
const at: Json = {
  name: 'at',
  in: 'query',
  description: 'Unix seconds, not in the future (default now): the instant whose last round window is wanted',
  schema: { type: 'integer', minimum: 0 },
};

/** The schemas of the HTTP bodies; the WebSocket description (./asyncapi.ts) shares them. */
export const SCHEMAS: Json = {
  Counter: {
    type: 'object',
    description: 'Requests per domain in one second; every key but `timestamp` is a domain (1-255 UTF-8 bytes)',
    required: ['timestamp'],
    properties: {
      timestamp: { oneOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^[0-9]{1,16}$' }], description: 'Unix seconds' },
    },
    additionalProperties: { type: 'integer', minimum: 0 },
    example: { timestamp: 1608102631, 'example.com': 3, 'api.example.org': 4 },
  },
  RankedDomain: {
    type: 'object',
    required: ['domain', 'count'],
    properties: { domain: { type: 'string' }, count: { type: 'integer' } },
  },
  WindowStats: {
    type: 'object',
    required: ['window', 'from', 'to', 'total', 'domains', 'top'],
    properties: {
      window: { type: 'string', enum: ['minute', 'hour'] },
      from: { type: 'integer', description: 'Unix seconds, inclusive' },
      to: { type: 'integer', description: 'Unix seconds, exclusive' },
      total: { type: 'integer', description: 'Sum of all counts in the window' },
      domains: { type: 'integer', description: 'Distinct domains in the window' },
      top: { type: 'array', items: ref('RankedDomain') },
    },
  },
  SeedEntry: {
    type: 'object',
    required: ['Domain', 'NumberOfRequests'],
    properties: { Domain: { type: 'string' }, NumberOfRequests: { type: 'integer' } },
  },
  Readiness: {
    type: 'object',
    required: ['ready', 'checks'],
    properties: {
      ready: { type: 'boolean' },
      checks: { type: 'object', additionalProperties: { type: 'string', description: '"ok", or why not' } },
    },
  },
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        description: 'The fields after message are there where they apply (docs/errors.md)',
        properties: {
          code: { type: 'string', enum: Object.keys(ERRORS) },
          message: { type: 'string' },
          index: { type: 'integer', minimum: 0, description: 'Which counter of a JSON array or events message (from 0)' },
          line: { type: 'integer', minimum: 1, description: 'Which line of an NDJSON body (from 1)' },
          key: { type: 'string', description: 'The key of the counter at fault: a domain, or "timestamp"' },
          parameter: { type: 'string', description: 'The query parameter at fault' },
          limit: { type: 'integer', description: 'The limit that was passed' },
          shard: { type: 'integer', minimum: 0, description: 'The shard that is behind or down' },
          retryAfter: { type: 'integer', minimum: 0, description: 'Seconds to wait before trying again, as Retry-After' },
          scope: { type: 'string', enum: ['ingest', 'read'], description: 'The scope the request needed' },
          reason: { type: 'string', description: 'Why a token was refused (as the WWW-Authenticate error)' },
          field: { type: 'string', description: 'The field of a WebSocket message at fault' },
        },
      },
    },
  },
};

const statsUnavailable = errorReply('A shard worker is down or restarting; try again (see Retry-After)', RETRY_AFTER);

/** operationId from a path: /stats/api/minutes -> getStatsApiMinutes, / -> getIndex. */
const operationId = (method: string, path: string): string =>
  method + (path.split(/[^A-Za-z0-9]+/).filter(Boolean).map((word) => word[0].toUpperCase() + word.slice(1)).join('') || 'Index');

function seedStats(kind: 'minute' | 'hour'): Json {
  return {
    get: {
      summary: `Top domains of the last round ${kind}, in the original format`,
      tags: ['stats'],
      parameters: [limit, at],
      responses: {
        200: { description: 'By count descending, ties by domain ascending', content: json({ type: 'array', items: ref('SeedEntry') }) },
        400: errorReply('A parameter is invalid, or the window is outside the retention'),
        503: statsUnavailable,
      },
    },
  };
}

export function openApiDocument(): Json {
  const paths: Json = {
    '/api/events': {
      post: {
        summary: 'Add counters; all or nothing',
        tags: ['ingest'],
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            required: false,
            description: 'A retry with the same key within 10 minutes gets the first answer and is counted once, also across a restart',
            schema: { type: 'string', minLength: 1, maxLength: 128 },
          },
        ],
        requestBody: {
          required: true,
          description: 'One counter, a JSON array of them, or NDJSON (one counter a line)',
          content: {
            'application/json': { schema: { oneOf: [ref('Counter'), { type: 'array', items: ref('Counter') }] } },
            'application/x-ndjson': { schema: { type: 'string' } },
          },
        },
        responses: {
          200: {
            description: 'The counters are journaled (with --durability off, handed to every shard); a query sent after this answer sees them',
            content: json({
              type: 'object',
              required: ['accepted', 'counters'],
              properties: {
                accepted: { type: 'integer', description: 'Counter objects taken' },
                counters: { type: 'integer', description: 'Domain entries taken' },
              },
            }),
          },
          400: errorReply('Malformed JSON, an invalid counter or an invalid Idempotency-Key; nothing was counted'),
          408: errorReply('The body did not arrive within --body-timeout'),
          413: errorReply('The body is over --max-body, or holds more counters or domains than the limits'),
          415: errorReply('Unsupported content type'),
          422: errorReply('The Idempotency-Key was used for a different request in the last 10 minutes, or the counters would take a window past 2^53 - 1 (TOPTALLY_ERR_COUNT_OVERFLOW); nothing was counted'),
          503: errorReply('A shard is behind or restarting, the journal cannot write (until it can again), or the server is stopping; nothing was counted', RETRY_AFTER),
        },
      },
    },
    '/api/stats': {
      get: {
        summary: 'Top domains of a window, with totals',
        tags: ['stats'],
        parameters: [
          { name: 'window', in: 'query', schema: { type: 'string', enum: ['minute', 'hour'], default: 'minute' } },
          limit,
          at,
          {
            name: 'open',
            in: 'query',
            description: 'true: the window still open at `at` (running counts) instead of the last round one',
            schema: { type: 'string', enum: ['true', 'false'], default: 'false' },
          },
        ],
        responses: {
          200: { description: 'The window and its top domains', content: json(ref('WindowStats')) },
          400: errorReply('A parameter is invalid, or the window is outside the retention'),
          503: statsUnavailable,
        },
      },
    },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics',
        tags: ['operations'],
        responses: { 200: { description: 'Text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    '/healthz': {
      get: {
        summary: 'The process is up',
        tags: ['operations'],
        responses: { 200: { description: 'Up', content: json({ type: 'object', properties: { ok: { type: 'boolean' } } }) } },
      },
    },
    '/readyz': {
      get: {
        summary: 'Shards started and recovery finished: ready for traffic',
        tags: ['operations'],
        responses: {
          200: { description: 'Ready', content: json(ref('Readiness')) },
          503: { description: 'Not ready; `checks` says what is missing', content: json(ref('Readiness')) },
        },
      },
    },
    '/openapi.json': {
      get: {
        summary: 'This document',
        tags: ['operations'],
        responses: { 200: { description: 'OpenAPI 3 document', content: json({ type: 'object' }) } },
      },
    },
    '/asyncapi.json': {
      get: {
        summary: 'The AsyncAPI 3 description of the WebSocket protocol at /ws',
        tags: ['operations'],
        responses: { 200: { description: 'AsyncAPI 3 document', content: json({ type: 'object' }) } },
      },
    },
    '/': {
      get: {
        summary: 'The live dashboard',
        tags: ['dashboard'],
        responses: { 200: { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
      },
    },
    '/dashboard/{asset}': {
      get: {
        summary: "The dashboard's scripts and styles",
        tags: ['dashboard'],
        parameters: [{ name: 'asset', in: 'path', required: true, schema: { type: 'string', enum: [...DASHBOARD_ASSET_NAMES] } }],
        responses: {
          200: {
            description: 'JavaScript, CSS or the SVG icon',
            content: {
              'text/javascript': { schema: { type: 'string' } },
              'text/css': { schema: { type: 'string' } },
              'image/svg+xml': { schema: { type: 'string' } },
            },
          },
        },
      },
    },
  };
  for (const kind of ['minute', 'hour'] as const) {
    for (const path of SEED_STATS_PATHS[kind]) paths[path] = seedStats(kind);
  }
  // The same table the server enforces (src/access/access.ts) says which operations need a token.
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(operations as Record<string, Json>)) {
      operation.operationId = operationId(method, path);
      const responses = operation.responses as Json;
      responses[405] = methodNotAllowed;
      const scope = routeScope(method.toUpperCase(), path);
      if (!scope) {
        operation.security = [];
        continue;
      }
      operation.security = [{ bearer: [] }];
      operation.description = `Needs a token of the ${scope} scope when ${scope} tokens are configured.`;
      Object.assign(responses, {
        401: errorReply('No token, or one that is not configured', WWW_AUTHENTICATE),
        403: errorReply(`The token lacks the ${scope} scope`, WWW_AUTHENTICATE),
      });
    }
  }

  return {
    openapi: '3.0.3',
    info: {
      title: 'toptally',
      version,
      description:
        'Exact top-10 domains of the last round minute and hour. Windows are UTC, [from, to) in Unix seconds. ' +
        'The WebSocket protocol at /ws is described by /asyncapi.json.',
      license: { name: 'UNLICENSED: private, all rights reserved', url: 'https://docs.npmjs.com/cli/configuring-npm/package-json#license' },
    },
    servers: [{ url: 'http://127.0.0.1:5000', description: 'The defaults of --host and --port' }],
    tags: [
      { name: 'ingest', description: 'Adding counters' },
      { name: 'stats', description: 'Top domains of a window' },
      { name: 'operations', description: 'Probes, metrics and the API descriptions' },
      { name: 'dashboard', description: 'The browser dashboard' },
    ],
    paths,
    components: {
      responses: {
        MethodNotAllowed: errorReply('Another method on this path: Allow lists the ones it takes', {
          Allow: header('The methods this path takes', { type: 'string' }),
        }),
      },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A token given to --ingest-token or --read-token (see docs/security.md)' },
      },
      schemas: SCHEMAS,
    },
  };
}
