import assert from 'node:assert/strict';
import { test } from 'node:test';
import http from 'node:http';
import { request, startServer, T0 } from '../helpers/server.ts';

const minuteStart = Math.floor(T0 / 60) * 60;
const lastMinute = minuteStart - 60;

test('a posted counter shows up in the last round minute and hour, in the seed format', async (t) => {
  const s = await startServer(t);
  const posted = await s.post({ timestamp: String(lastMinute + 5), A: 3, B: 4, C: 8 });
  assert.equal(posted.status, 200);
  assert.deepEqual(posted.body, { accepted: 1, counters: 3 });

  const expected = [
    { Domain: 'C', NumberOfRequests: 8 },
    { Domain: 'B', NumberOfRequests: 4 },
    { Domain: 'A', NumberOfRequests: 3 },
  ];
  for (const path of ['/api/stats/minutes', '/stats/minutes', '/stats/api/minutes']) {
    const reply = await s.get(path);
    assert.equal(reply.status, 200, path);
    assert.deepEqual(reply.body, expected, path);
  }
  // The hour holding T0 is still open, so the last round hour is the one before: empty.
  for (const path of ['/api/stats/hours', '/stats/hours', '/stats/api/hours']) {
    assert.deepEqual((await s.get(path)).body, [], path);
  }
  const nextHour = (Math.floor(T0 / 3600) + 1) * 3600;
  const future = await s.get(`/api/stats/hours?at=${nextHour}`);
  assert.equal(future.status, 400);
  assert.equal(future.body.error.code, 'TOPTALLY_ERR_INVALID_PARAMETER');
  assert.equal(future.body.error.parameter, 'at');
  s.clock.set(nextHour * 1000 + 1);
  assert.deepEqual((await s.get('/api/stats/hours')).body, expected);
});

test('the parameterised endpoint reports the window, totals, distinct domains and honours limit and at', async (t) => {
  const s = await startServer(t);
  const older = lastMinute - 120;
  assert.equal((await s.post([{ timestamp: older + 1, X: 5, Y: 5, Z: 1 }, { timestamp: older + 59, X: 1 }])).status, 200);
  assert.equal((await s.post({ timestamp: lastMinute, W: 2 })).status, 200);

  const reply = await s.get(`/api/stats?window=minute&limit=2&at=${older + 60 + 30}`);
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.body, {
    window: 'minute',
    from: older,
    to: older + 60,
    total: 12,
    domains: 3,
    top: [
      { domain: 'X', count: 6 },
      { domain: 'Y', count: 5 },
    ],
  });
  const seed = await s.get(`/api/stats/minutes?limit=1&at=${older + 60}`);
  assert.deepEqual(seed.body, [{ Domain: 'X', NumberOfRequests: 6 }]);
  const now = await s.get('/api/stats?window=minute');
  assert.deepEqual(now.body.top, [{ domain: 'W', count: 2 }]);
  const hour = await s.get(`/api/stats?window=hour&at=${(Math.floor(T0 / 3600) + 1) * 3600 - 1}`);
  assert.equal(hour.status, 400, 'the open hour is not a last round window before now');
});

test('ties rank by domain ascending in code-unit order, and __proto__ and constructor are ordinary domains', async (t) => {
  const s = await startServer(t, { shards: 3 });
  const body = { timestamp: lastMinute, b: 4, a: 4, B: 4, __proto__x: 1, constructor: 9, toString: 4 };
  const raw = JSON.stringify(body).replace('"__proto__x"', '"__proto__"');
  assert.equal((await s.post(raw)).status, 200);
  const reply = await s.get('/api/stats/minutes');
  assert.deepEqual(reply.body, [
    { Domain: 'constructor', NumberOfRequests: 9 },
    { Domain: 'B', NumberOfRequests: 4 },
    { Domain: 'a', NumberOfRequests: 4 },
    { Domain: 'b', NumberOfRequests: 4 },
    { Domain: 'toString', NumberOfRequests: 4 },
    { Domain: '__proto__', NumberOfRequests: 1 },
  ]);
});

test('NDJSON bodies are counted line by line and errors name the line', async (t) => {
  const s = await startServer(t);
  const ndjson = `{"timestamp": ${lastMinute}, "A": 1}\n\n{"timestamp": "${lastMinute + 1}", "A": 2, "B": 1}\n`;
  const ok = await s.post(ndjson, { 'content-type': 'application/x-ndjson' });
  assert.deepEqual([ok.status, ok.body], [200, { accepted: 2, counters: 3 }]);
  const bad = await s.post(`{"timestamp": ${lastMinute}, "A": 1}\n{"timestamp": ${lastMinute}, "A": -1}`, {
    'content-type': 'application/x-ndjson',
  });
  assert.equal(bad.status, 400);
  assert.deepEqual(
    [bad.body.error.code, bad.body.error.line, bad.body.error.key],
    ['TOPTALLY_ERR_INVALID_COUNTER', 2, 'A'],
  );
  const broken = await s.post('{"timestamp": 1, "A": 1}\n{oops', { 'content-type': 'application/x-ndjson' });
  assert.deepEqual([broken.status, broken.body.error.code, broken.body.error.line], [400, 'TOPTALLY_ERR_MALFORMED_JSON', 2]);
  assert.deepEqual((await s.get('/api/stats/minutes')).body, [
    { Domain: 'A', NumberOfRequests: 3 },
    { Domain: 'B', NumberOfRequests: 1 },
  ]);
});

test('the content types the seed and curl send are read as JSON; others get 415', async (t) => {
  const s = await startServer(t);
  const body = JSON.stringify({ timestamp: lastMinute, A: 1 });
  for (const type of ['application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded']) {
    const reply = await s.post(body, { 'content-type': type });
    assert.equal(reply.status, 200, type);
  }
  const none = await request(`${s.url}/api/events`, { method: 'POST', body });
  assert.equal(none.status, 200, 'no content type');
  const xml = await s.post(body, { 'content-type': 'application/xml' });
  assert.deepEqual([xml.status, xml.body.error.code], [415, 'TOPTALLY_ERR_UNSUPPORTED_MEDIA_TYPE']);
  assert.deepEqual((await s.get('/api/stats/minutes')).body, [{ Domain: 'A', NumberOfRequests: 4 }]);
});

for (const offload of ['never', 'always'] as const) test(`a request with one bad counter changes nothing (all or nothing), decoded on the pool: ${offload}`, async (t) => {
  const s = await startServer(t, { shards: 4, offload });
  const domains = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`d${i}`, i + 1]));
  const batch = [
    { timestamp: lastMinute, ...domains },
    { timestamp: lastMinute + 1, ...domains },
    { timestamp: lastMinute + 2, ok: 1, bad: 1.5 },
  ];
  const reply = await s.post(batch);
  assert.equal(reply.status, 400);
  assert.deepEqual([reply.body.error.code, reply.body.error.index, reply.body.error.key], ['TOPTALLY_ERR_INVALID_COUNTER', 2, 'bad']);
  const stats = await s.get('/api/stats?window=minute');
  assert.deepEqual([stats.body.total, stats.body.domains, stats.body.top], [0, 0, []]);
});

test('errors: malformed JSON, invalid counters, old and future timestamps, each with its code and place', async (t) => {
  const s = await startServer(t, { retainHours: 2 });
  const oldestHourStart = (Math.floor(T0 / 3600) - 2) * 3600;
  const cases: [string, string, Record<string, unknown>][] = [
    ['{"timestamp": 1608102600, "A": 1', 'TOPTALLY_ERR_MALFORMED_JSON', {}],
    ['', 'TOPTALLY_ERR_MALFORMED_JSON', {}],
    ['42', 'TOPTALLY_ERR_INVALID_COUNTER', {}],
    ['[{"timestamp": 1608102600, "A": 1}, [1]]', 'TOPTALLY_ERR_INVALID_COUNTER', { index: 1 }],
    ['{"A": 1}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'timestamp' }],
    ['{"timestamp": "16081026.5", "A": 1}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'timestamp' }],
    ['{"timestamp": -1, "A": 1}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'timestamp' }],
    ['{"timestamp": 1608102600, "A": "3"}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'A' }],
    ['{"timestamp": 1608102600, "A": {"n": 1}}', 'TOPTALLY_ERR_NESTED_VALUE', { key: 'A' }],
    ['{"timestamp": 1608102600, "A": 9007199254740992}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'A' }],
    ['{"timestamp": 1608102600, "": 1}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: '' }],
    [`{"timestamp": 1608102600, "${'é'.repeat(128)}": 1}`, 'TOPTALLY_ERR_DOMAIN_TOO_LONG', { limit: 255 }],
    ['{"timestamp": 1608102600, "\\ud800x": 1}', 'TOPTALLY_ERR_INVALID_COUNTER', { key: '\ud800x' }],
    [`{"timestamp": ${oldestHourStart - 1}, "A": 1}`, 'TOPTALLY_ERR_TIMESTAMP_TOO_OLD', { key: 'timestamp' }],
    [`{"timestamp": ${T0 + 301}, "A": 1}`, 'TOPTALLY_ERR_TIMESTAMP_IN_FUTURE', { key: 'timestamp' }],
  ];
  for (const [body, code, where] of cases) {
    const reply = await s.post(body);
    assert.equal(reply.status, 400, body);
    assert.equal(reply.body.error.code, code, body);
    assert.equal(typeof reply.body.error.message, 'string');
    for (const [k, v] of Object.entries(where)) assert.equal(reply.body.error[k], v, `${body}: ${k}`);
  }
  // The edges themselves are accepted: the oldest retained second, 255 bytes, 300 s ahead.
  const edges = { timestamp: oldestHourStart, ['é'.repeat(127) + 'x']: 1 };
  assert.equal((await s.post(edges)).status, 200);
  assert.equal((await s.post({ timestamp: T0 + 300, A: 1 })).status, 200);
  // Most rejected counters were for 07:10, the minute open at T0: once it closes, it must be empty.
  s.clock.set((1608102600 + 60) * 1000);
  const minute = await s.get('/api/stats?window=minute');
  assert.deepEqual([minute.body.from, minute.body.total], [1608102600, 0], 'nothing rejected was counted');
});

test('unknown paths get 404, wrong methods 405 with Allow, bad parameters 400', async (t) => {
  const s = await startServer(t);
  const missing = await s.get('/api/nothing');
  assert.deepEqual([missing.status, missing.body.error.code], [404, 'TOPTALLY_ERR_NOT_FOUND']);
  const wrong = await request(`${s.url}/api/stats/minutes`, { method: 'POST', body: '{}' });
  assert.deepEqual([wrong.status, wrong.headers.allow, wrong.body.error.code], [405, 'GET', 'TOPTALLY_ERR_METHOD_NOT_ALLOWED']);
  const get = await s.get('/api/events');
  assert.deepEqual([get.status, get.headers.allow], [405, 'POST']);
  for (const [query, parameter] of [
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=ten', 'limit'],
    ['at=-5', 'at'],
    ['window=day', 'window'],
    ['lmit=5', 'lmit'],
  ]) {
    const reply = await s.get(`/api/stats?${query}`);
    assert.deepEqual([reply.status, reply.body.error.code, reply.body.error.parameter], [400, 'TOPTALLY_ERR_INVALID_PARAMETER', parameter], query);
  }
  const old = await s.get(`/api/stats/minutes?at=${T0 - 3 * 3600}`);
  assert.deepEqual([old.status, old.body.error.code], [400, 'TOPTALLY_ERR_OUT_OF_RETENTION']);
  const limit = await s.get('/api/stats/hours?limit=1000');
  assert.equal(limit.status, 200);
});

test('a body over --max-body gets 413 whether or not it declares its length', async (t) => {
  const s = await startServer(t, { maxBody: 1024 });
  const big = JSON.stringify({ timestamp: lastMinute, [`x${'y'.repeat(200)}`]: 1, pad: 'z'.repeat(2000) });
  const declared = await s.post(big);
  assert.deepEqual([declared.status, declared.body.error.code, declared.body.error.limit], [413, 'TOPTALLY_ERR_BODY_TOO_LARGE', 1024]);
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${s.url}/api/events`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    for (let i = 0; i < 8; i++) req.write(big.slice(i * 300, i * 300 + 300));
    req.end();
  });
  assert.equal(chunked, 413);
  assert.equal((await s.post({ timestamp: lastMinute, ok: 1 })).status, 200, 'the server still serves');
});
