// What operators read: /metrics, /healthz, /readyz and /openapi.json, on a real server.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { hashDomain, shardOf } from '../../src/routing/hash.ts';
import { lintExposition } from '../helpers/prometheus-lint.ts';
import { request, startServer, startServerHoldingRestarts, T0 } from '../helpers/server.ts';

/** Prometheus text format to `name{label="value",...}` (labels sorted) -> value. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${line}`);
    samples.set(key(match[1], Object.fromEntries((match[2] ?? '').split(',').filter(Boolean).map(labelPair))), Number(match[3]));
  }
  return samples;
}

function labelPair(pair: string): [string, string] {
  const match = /^(\w+)="(.*)"$/.exec(pair);
  assert.ok(match, `not a label: ${pair}`);
  return [match[1], match[2]];
}

function key(name: string, labels: Record<string, string | number> = {}): string {
  const inner = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`)
    .join(',');
  return inner ? `${name}{${inner}}` : name;
}

test('/metrics counts ingest, requests by route and status, refusals by code, and what each shard holds', async (t) => {
  // No journal, so the flush histogram holds only what the hook below reports.
  const s = await startServer(t, { durability: 'off' });
  const first = await s.get('/metrics');
  assert.equal(first.status, 200);
  assert.match(String(first.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const before = parseMetrics(first.body);
  assert.equal(before.get(key('toptally_ingested_objects_total')), 0);
  assert.equal(before.get(key('toptally_ingested_counters_total')), 0);
  for (const shard of [0, 1]) {
    assert.equal(before.get(key('toptally_shard_queue_depth', { shard })), 0);
    assert.equal(before.get(key('toptally_shard_domains', { shard })), 0);
  }
  assert.equal(before.get(key('toptally_ws_connections')), 0);
  assert.equal(before.get(key('toptally_ws_subscribers', { window: 'minute' })), 0);
  assert.equal(before.get(key('toptally_durability_flush_seconds_count')), 0);
  assert.ok(before.get(key('nodejs_eventloop_lag_p99_seconds'))! >= 0, 'event-loop lag is exported');

  const domains = ['a.example', 'b.example', 'c.example', '__proto__', 'constructor'];
  const ok = await s.post(
    `[{"timestamp": ${T0 - 70}, "a.example": 1, "b.example": 2, "c.example": 3},` +
      ` {"timestamp": ${T0 - 10}, "a.example": 4, "__proto__": 5, "constructor": 6}]`,
  );
  assert.equal(ok.status, 200);
  assert.equal((await s.post({ timestamp: T0, 'a.example': -1 })).body.error.code, 'TOPTALLY_ERR_INVALID_COUNTER');
  assert.equal((await s.post('{}', { 'content-type': 'text/csv' })).status, 415);
  assert.equal((await s.get('/no/such/path')).status, 404);

  // The hooks the WebSocket front end and durability call.
  s.app.metrics.wsConnectionOpened();
  s.app.metrics.wsConnectionOpened();
  s.app.metrics.wsConnectionClosed();
  s.app.metrics.wsSubscribed('minute');
  s.app.metrics.wsSubscribed('hour');
  s.app.metrics.wsUnsubscribed('hour');
  s.app.metrics.durabilityFlushed(0.003);
  s.app.metrics.rejected('TOPTALLY_ERR_INVALID_PARAMETER');
  // With durability off an answer precedes the shards' applying its parts; a census queues behind
  // them, so once it returns nothing acknowledged is still owed and the depth below must be 0.
  await s.app.backend.census();

  const after = parseMetrics((await s.get('/metrics')).body);
  const expected = new Map<string, number>([
    [key('toptally_ingested_objects_total'), 2],
    [key('toptally_ingested_counters_total'), 6],
    [key('toptally_http_requests_total', { route: '/api/events', status: 200 }), 1],
    [key('toptally_http_requests_total', { route: '/api/events', status: 400 }), 1],
    [key('toptally_http_requests_total', { route: '/api/events', status: 415 }), 1],
    [key('toptally_http_requests_total', { route: '/*', status: 404 }), 1],
    [key('toptally_http_requests_total', { route: '/metrics', status: 200 }), 1],
    [key('toptally_rejected_total', { code: 'TOPTALLY_ERR_INVALID_COUNTER' }), 1],
    [key('toptally_rejected_total', { code: 'TOPTALLY_ERR_UNSUPPORTED_MEDIA_TYPE' }), 1],
    [key('toptally_rejected_total', { code: 'TOPTALLY_ERR_NOT_FOUND' }), 1],
    [key('toptally_rejected_total', { code: 'TOPTALLY_ERR_INVALID_PARAMETER' }), 1],
    [key('toptally_ws_connections'), 1],
    [key('toptally_ws_subscribers', { window: 'minute' }), 1],
    [key('toptally_ws_subscribers', { window: 'hour' }), 0],
    [key('toptally_durability_flush_seconds_count'), 1],
    [key('toptally_durability_flush_seconds_sum'), 0.003],
    [key('toptally_durability_flush_seconds_bucket', { le: 0.0025 }), 0],
    [key('toptally_durability_flush_seconds_bucket', { le: 0.005 }), 1],
    [key('toptally_http_request_duration_seconds_count', { route: '/api/events' }), 3],
    [key('toptally_http_request_duration_seconds_count', { route: '/*' }), 1],
    [key('toptally_http_request_duration_seconds_bucket', { route: '/api/events', le: '+Inf' }), 3],
    [key('toptally_build_info', { version: '0.1.0', nodejs: process.versions.node, uws: 'native' }), 1],
  ]);
  assert.ok(after.get(key('toptally_http_request_duration_seconds_sum', { route: '/api/events' }))! > 0);
  for (const shard of [0, 1]) {
    const held = domains.filter((d) => shardOf(hashDomain(d), 2) === shard).length;
    expected.set(key('toptally_shard_domains', { shard }), held);
    expected.set(key('toptally_shard_queue_depth', { shard }), 0);
    expected.set(key('toptally_shard_up', { shard }), 1);
    expected.set(key('toptally_shard_restarts_total', { shard }), 0);
  }
  for (const [name, value] of expected) assert.equal(after.get(name), value, name);
});

test('/metrics passes the rules of promtool check metrics, also while a shard is down', async (t) => {
  // The linter finds what promtool finds in prom-client's defaults and in a non-numeric status.
  assert.deepEqual(lintExposition('# HELP nodejs_active_handles_total Handles.\n# TYPE nodejs_active_handles_total gauge\nnodejs_active_handles_total 3\n'), [
    'nodejs_active_handles_total: non-counter metrics should not have "_total" suffix',
  ]);
  assert.deepEqual(lintExposition('# TYPE t_seconds counter\nt_seconds{status="x"} 1\n'), [
    't_seconds: no help text',
    't_seconds: counter metrics should have "_total" suffix',
  ]);

  const { s, release } = await startServerHoldingRestarts(t);
  assert.equal((await s.post({ timestamp: T0, 'a.example': 1 })).status, 200);
  assert.equal((await s.get('/nowhere')).status, 404);
  const check = async (when: string): Promise<void> => {
    const text = (await s.get('/metrics')).body as string;
    assert.deepEqual(lintExposition(text), [], when);
    assert.doesNotMatch(text, /status="[^0-9"]/, `${when}: status labels are numbers`);
    // Debian's prometheus package brings promtool itself; where it is installed it has the last word.
    if (existsSync('/usr/bin/promtool')) {
      const promtool = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(promtool.status, 0, `${when}: promtool says ${promtool.stdout}${promtool.stderr}`);
    }
  };
  await check('all shards up');
  const restarted = once(s.app.pool, 'restarted');
  try {
    await s.app.pool.shards[0].terminate();
    await check('shard 0 down');
  } finally {
    release(); // a failed check must not hold the stop behind the held restart
  }
  await restarted;
  await check('shard 0 restarted');
});

test('/readyz answers 503 until start-up has finished and while a shard is down; /healthz 200 all along', async (t) => {
  let finish!: () => void;
  const startup = new Promise<void>((resolve) => (finish = resolve));
  // A shard that dies stays down until the test lets its replacement finish recovering.
  const { s, release: recovered } = await startServerHoldingRestarts(t, { readyAfter: startup });

  const early = await s.get('/readyz');
  assert.equal(early.status, 503);
  assert.deepEqual(early.body, { ready: false, checks: { recovery: 'ok', startup: 'pending', shards: 'ok', journal: 'ok' } });
  assert.deepEqual((await s.get('/healthz')).body, { ok: true });

  finish();
  const ready = await s.get('/readyz');
  assert.equal(ready.status, 200);
  assert.deepEqual(ready.body, { ready: true, checks: { recovery: 'ok', startup: 'ok', shards: 'ok', journal: 'ok' } });

  await s.app.pool.shards[1].terminate();
  const down = await s.get('/readyz');
  assert.equal(down.status, 503);
  assert.equal(down.body.checks.shards, 'unavailable: shard 1');
  assert.equal((await s.get('/healthz')).status, 200);
  // A down shard keeps every series: up 0, what it holds unknown (NaN), no restart yet.
  const metrics = parseMetrics((await s.get('/metrics')).body);
  for (const name of ['toptally_shard_domains', 'toptally_shard_entries', 'toptally_shard_table_bytes']) {
    assert.ok(Number.isNaN(metrics.get(key(name, { shard: 1 }))), `${name} of the down shard is NaN`);
  }
  assert.equal(metrics.get(key('toptally_shard_domains', { shard: 0 })), 0);
  assert.equal(metrics.get(key('toptally_shard_up', { shard: 1 })), 0);
  assert.equal(metrics.get(key('toptally_shard_up', { shard: 0 })), 1);
  assert.equal(metrics.get(key('toptally_shard_restarts_total', { shard: 1 })), 0);

  const restarted = once(s.app.pool, 'restarted');
  recovered();
  await restarted;
  assert.equal((await s.get('/readyz')).status, 200);
  const back = parseMetrics((await s.get('/metrics')).body);
  assert.equal(back.get(key('toptally_shard_up', { shard: 1 })), 1);
  assert.equal(back.get(key('toptally_shard_restarts_total', { shard: 1 })), 1);
  assert.equal(back.get(key('toptally_shard_restarts_total', { shard: 0 })), 0);
  assert.equal(back.get(key('toptally_shard_domains', { shard: 1 })), 0);
});

test('/readyz names a start-up step that failed', async (t) => {
  let fail!: (err: Error) => void;
  const startup = new Promise<void>((_, reject) => (fail = reject));
  const s = await startServer(t, {}, T0, { readyAfter: startup });
  fail(new Error('data directory is corrupt'));
  const reply = await s.get('/readyz');
  assert.equal(reply.status, 503);
  assert.equal(reply.body.checks.startup, 'failed: data directory is corrupt');
});

test('/openapi.json describes exactly the routes the server has, and what they answer', async (t) => {
  const s = await startServer(t);
  const doc = (await s.get('/openapi.json')).body;
  assert.equal(doc.openapi, '3.0.3');
  assert.equal(doc.info.title, 'toptally');

  // Paths with a {parameter} stand for one path per value of its enum.
  const documented = new Map<string, string[]>();
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    const methods = Object.keys(item).map((m) => m.toUpperCase()).sort();
    const template = /\{(\w+)\}/.exec(path);
    if (!template) {
      documented.set(path, methods);
      continue;
    }
    const parameter = item.get.parameters.find((p: { name: string }) => p.name === template[1]);
    for (const value of parameter.schema.enum) documented.set(path.replace(template[0], value), methods);
  }
  const router = s.app.router;
  const served = new Map(router.paths().map((path) => [path, router.methods(path).sort()]));
  assert.deepEqual(new Map([...documented].sort()), new Map([...served].sort()));

  // Every $ref points at a component that exists.
  const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
  assert.ok(refs.length > 0);
  for (const ref of refs) {
    const [, kind, name] = /#\/components\/(schemas|responses)\/(\w+)/.exec(ref) ?? [];
    assert.ok(kind && doc.components[kind][name], ref);
  }

  // Each operation, called plainly, answers a documented status with a documented media type.
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    if (path.includes('{')) continue;
    for (const [method, operation] of Object.entries<any>(item)) {
      const body = method === 'post' ? JSON.stringify(doc.components.schemas.Counter.example) : undefined;
      const reply = await request(s.url + path, { method: method.toUpperCase(), body, headers: { 'content-type': 'application/json' } });
      const documentedReply = operation.responses[reply.status];
      assert.ok(documentedReply, `${method} ${path} answered ${reply.status}, not documented`);
      const mediaType = String(reply.headers['content-type']).split(';')[0];
      assert.ok(mediaType in documentedReply.content, `${method} ${path} answered ${mediaType}`);
    }
  }
  for (const asset of doc.paths['/dashboard/{asset}'].get.parameters[0].schema.enum) {
    const reply = await s.get(`/dashboard/${asset}`);
    assert.equal(reply.status, 200, asset);
    assert.ok(String(reply.headers['content-type']).split(';')[0] in doc.paths['/dashboard/{asset}'].get.responses[200].content);
  }
});

test('each journal group that becomes durable is timed in toptally_durability_flush_seconds', async (t) => {
  const s = await startServer(t, { durability: 'fsync' });
  const count = async () => parseMetrics((await s.get('/metrics')).body).get(key('toptally_durability_flush_seconds_count'));
  assert.equal(await count(), 0);
  for (let i = 0; i < 3; i++) assert.equal((await s.post({ timestamp: T0 - 60, A: i + 1 })).status, 200);
  // One request at a time: each waits for its own group, so three groups were flushed.
  assert.equal(await count(), 3);
});
