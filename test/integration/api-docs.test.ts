// The API descriptions a client generator or an operator reads: /openapi.json linted by Redocly's
// linter (@redocly/cli, as a child process), /asyncapi.json by the AsyncAPI parser, and real
// answers of a real server, over HTTP and WebSocket, checked against their schemas with Ajv.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Parser } from '@asyncapi/parser';
import { Ajv } from 'ajv';
import { request, startServer, startServerHoldingRestarts, T0, tempDir, type Reply } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const REDOCLY = fileURLToPath(new URL('../../node_modules/@redocly/cli/bin/cli.js', import.meta.url));

/** Ajv over a whole description: `check(reply.body, 'WindowStats')` validates against its schema. */
function schemaChecker(doc: object, id: string): (value: unknown, schema: string) => void {
  // strict: false, as OpenAPI's schemas carry keywords of their own (example).
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema(doc, id);
  return (value, schema) => {
    const valid = ajv.validate({ $ref: `${id}#/components/schemas/${schema}` }, value);
    assert.ok(valid, `${schema}: ${ajv.errorsText(ajv.errors)} in ${JSON.stringify(value)}`);
  };
}

test('/openapi.json passes Redocly\'s recommended rules with no error and no warning', async (t) => {
  const s = await startServer(t);
  const doc = (await s.get('/openapi.json')).body;
  const file = path.join(await tempDir(t), 'openapi.json');
  await writeFile(file, JSON.stringify(doc));
  const lint = spawn(process.execPath, [REDOCLY, 'lint', file, '--format', 'json'], {
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  lint.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  lint.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(lint, 'exit')) as [number];
  const report = JSON.parse(stdout) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; message: string }[] };
  assert.deepEqual(report.problems.map((p) => `${p.ruleId}: ${p.message}`), []);
  assert.deepEqual(report.totals, { errors: 0, warnings: 0, ignored: 0 });
  assert.equal(code, 0, stderr);
  // What the linter cannot know: every operation is named, and says whether it needs a token.
  for (const item of Object.values<Record<string, { operationId?: string; security?: unknown[] }>>(doc.paths)) {
    for (const operation of Object.values(item)) {
      assert.match(String(operation.operationId), /^(get|post)[A-Z]/);
      assert.ok(Array.isArray(operation.security));
    }
  }
});

test('/asyncapi.json describes /ws and parses with no error or warning', async (t) => {
  const s = await startServer(t);
  const reply = await s.get('/asyncapi.json');
  assert.equal(reply.status, 200);
  const { document, diagnostics } = await new Parser().parse(JSON.stringify(reply.body));
  // Severity 0 is an error, 1 a warning (2 and 3 are hints).
  assert.deepEqual(diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`), []);
  assert.ok(document);
  assert.equal(document.channels().get('ws')?.address(), '/ws');
  const names = document.allMessages().all().map((m) => m.name()).sort();
  assert.deepEqual(names, ['ack', 'error', 'events', 'subscribe', 'top', 'unsubscribe', 'unsubscribed']);
});

test('HTTP answers match the OpenAPI schemas and headers, errors carrying index, line and key as documented', async (t) => {
  const { s, release } = await startServerHoldingRestarts(t);
  const doc = (await s.get('/openapi.json')).body;
  const check = schemaChecker(doc, 'openapi');
  const documented = (reply: Reply, method: string, route: string): Record<string, { schema: object }> => {
    const response = doc.paths[route][method].responses[reply.status];
    assert.ok(response, `${method} ${route} answered ${reply.status}, not documented`);
    const resolved = response.$ref ? doc.components.responses[response.$ref.split('/').pop()] : response;
    for (const name of Object.keys(resolved.headers ?? {})) assert.ok(reply.headers[name.toLowerCase()], `${route} ${reply.status}: ${name}`);
    return resolved.content;
  };
  const expectError = (reply: Reply, method: string, route: string, code: string, where: Record<string, unknown> = {}): void => {
    documented(reply, method, route);
    check(reply.body, 'Error');
    assert.equal(reply.body.error.code, code);
    for (const [field, value] of Object.entries(where)) assert.equal(reply.body.error[field], value, field);
  };

  const posted = await s.post([{ timestamp: T0 - 60, 'a.example': 3 }, { timestamp: T0 - 60, 'b.example': 1 }]);
  documented(posted, 'post', '/api/events');
  assert.deepEqual(posted.body, { accepted: 2, counters: 2 });
  expectError(await s.post([{ timestamp: T0 }, { timestamp: T0, x: -1 }]), 'post', '/api/events', 'TOPTALLY_ERR_INVALID_COUNTER', { index: 1, key: 'x' });
  const ndjson = await s.post(`{"timestamp": ${T0}, "a": 1}\n{"timestamp": 1, "a": 1}`, { 'content-type': 'application/x-ndjson' });
  expectError(ndjson, 'post', '/api/events', 'TOPTALLY_ERR_TIMESTAMP_TOO_OLD', { line: 2, key: 'timestamp' });
  const first = await s.post({ timestamp: T0, 'a.example': 1 }, { 'idempotency-key': 'k-1' });
  assert.equal(first.status, 200);
  expectError(await s.post({ timestamp: T0, 'a.example': 2 }, { 'idempotency-key': 'k-1' }), 'post', '/api/events', 'TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED');
  expectError(await request(`${s.url}/api/events`, { method: 'PUT' }), 'post', '/api/events', 'TOPTALLY_ERR_METHOD_NOT_ALLOWED');

  const stats = await s.get('/api/stats?window=minute&limit=1');
  documented(stats, 'get', '/api/stats');
  check(stats.body, 'WindowStats');
  assert.deepEqual(stats.body.top, [{ domain: 'a.example', count: 3 }]);
  const seed = await s.get('/api/stats/minutes');
  documented(seed, 'get', '/api/stats/minutes');
  for (const entry of seed.body) check(entry, 'SeedEntry');
  expectError(await s.get('/api/stats?window=week'), 'get', '/api/stats', 'TOPTALLY_ERR_INVALID_PARAMETER', { parameter: 'window' });
  const ready = await s.get('/readyz');
  documented(ready, 'get', '/readyz');
  check(ready.body, 'Readiness');

  // A shard down: stats that need it (not a cached closed window) answer 503 with Retry-After.
  try {
    await s.app.pool.shards[1].terminate();
    for (const [url, route] of [['/api/stats?open=true', '/api/stats'], ['/api/stats/hours', '/api/stats/hours']]) {
      const down = await s.get(url);
      expectError(down, 'get', route, 'TOPTALLY_ERR_SHARD_UNAVAILABLE');
      assert.match(String(down.headers['retry-after']), /^[0-9]+$/);
    }
  } finally {
    release();
  }
});

test('401 and 403 carry WWW-Authenticate as documented', async (t) => {
  const s = await startServer(t, { readTokens: ['r'.repeat(16)], ingestTokens: ['i'.repeat(16)] });
  const doc = (await s.get('/openapi.json')).body;
  const check = schemaChecker(doc, 'openapi');
  const none = await s.get('/api/stats');
  const wrongScope = await request(`${s.url}/api/stats`, { headers: { authorization: `Bearer ${'i'.repeat(16)}` } });
  for (const [reply, status] of [[none, 401], [wrongScope, 403]] as const) {
    assert.equal(reply.status, status);
    check(reply.body, 'Error');
    const response = doc.paths['/api/stats'].get.responses[status];
    for (const name of Object.keys(response.headers)) assert.match(String(reply.headers[name.toLowerCase()]), /^Bearer realm="toptally"/);
  }
  assert.equal(wrongScope.body.error.scope, 'read');
});

test('WebSocket answers and pushes match the AsyncAPI message schemas', async (t) => {
  const s = await startServer(t, { liveInterval: 0 });
  const doc = (await s.get('/asyncapi.json')).body;
  const check = schemaChecker(doc, 'asyncapi');
  const ws = await TestSocket.open(t, s.url);
  const sent: [unknown, string][] = [
    [{ type: 'events', id: 1, events: [{ timestamp: T0 - 60, 'a.example': 2 }] }, 'EventsMessage'],
    [{ type: 'subscribe', window: 'minute', limit: 3, live: true }, 'SubscribeMessage'],
    [{ type: 'unsubscribe' }, 'UnsubscribeMessage'],
  ];
  for (const [message, schema] of sent) check(message, schema);

  ws.send(sent[0][0]);
  const ack = await ws.body();
  check(ack, 'AckMessage');
  assert.deepEqual(ack, { type: 'ack', id: 1, accepted: 1, counters: 1 });
  ws.send({ type: 'events', id: 'two', events: [{ timestamp: T0, 'a.example': 1 }, { timestamp: 'soon' }] });
  const error = await ws.body();
  check(error, 'ErrorMessage');
  assert.deepEqual([error.id, error.error.code, error.error.index, error.error.key], ['two', 'TOPTALLY_ERR_INVALID_COUNTER', 1, 'timestamp']);
  ws.send(sent[1][0]);
  const top = await ws.body();
  check(top, 'TopMessage');
  assert.deepEqual(top.top, [{ domain: 'a.example', count: 2 }]);
  ws.send(sent[2][0], true);
  const unsubscribed = await ws.body();
  check(unsubscribed, 'UnsubscribedMessage');
  assert.deepEqual(unsubscribed, { type: 'unsubscribed', windows: ['minute'] });
  // The schemas are strict enough to refuse what the server would refuse.
  assert.throws(() => check({ type: 'subscribe', window: 'week' }, 'SubscribeMessage'));
  assert.throws(() => check({ type: 'events', id: 1, events: [], extra: 1 }, 'EventsMessage'));
});
