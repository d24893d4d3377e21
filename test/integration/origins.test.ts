// Web pages against an open service: a Host nobody configured (DNS rebinding), an Origin that is not
// the service's own, bodies any page may post without a preflight; and the CORS an operator allows.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request, startServer, T0, type TestServer } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const counter = JSON.stringify({ timestamp: T0 - 60, 'page.example': 1 });
const EVIL = 'https://evil.example';

async function top(s: TestServer): Promise<unknown> {
  return (await s.get('/api/stats?window=minute')).body.top;
}

const post = (s: TestServer, headers: Record<string, string>) =>
  request(`${s.url}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: counter });

test('a Host the service is not reached by gets 421 over HTTP and /ws; addresses, localhost and --allowed-hosts are answered', async (t) => {
  const s = await startServer(t, { allowedHosts: ['toptally.example.com', '.corp.example'] });
  const port = s.app.port;
  for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1.evil.example:${port}`, 'toptally.example.com.evil.example']) {
    const reply = await request(`${s.url}/api/stats`, { headers: { host } });
    assert.equal(reply.status, 421, host);
    assert.equal(reply.body.error.code, 'TOPTALLY_ERR_HOST_NOT_ALLOWED', host);
    const refusedPost = await post(s, { host });
    assert.equal(refusedPost.status, 421, `POST with ${host}`);
    const upgrade = await TestSocket.refused(s.url, { headers: { host } });
    assert.deepEqual([upgrade.status, upgrade.body.error.code], [421, 'TOPTALLY_ERR_HOST_NOT_ALLOWED'], `/ws with ${host}`);
  }
  assert.deepEqual(await top(s), [], 'nothing was counted');
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'toptally.example.com', 'TopTally.Example.com:443', 'a.corp.example']) {
    assert.equal((await request(`${s.url}/api/stats`, { headers: { host } })).status, 200, host);
  }
});

test('a page of another origin can neither write nor read, over HTTP or /ws; the service’s own page can', async (t) => {
  const s = await startServer(t);
  const own = `http://127.0.0.1:${s.app.port}`;
  const write = await post(s, { origin: EVIL });
  assert.deepEqual([write.status, write.body.error.code], [403, 'TOPTALLY_ERR_ORIGIN_NOT_ALLOWED']);
  assert.equal(write.headers['access-control-allow-origin'], undefined);
  const read = await request(`${s.url}/api/stats`, { headers: { origin: EVIL } });
  assert.deepEqual([read.status, read.body.error.code], [403, 'TOPTALLY_ERR_ORIGIN_NOT_ALLOWED']);
  const nullOrigin = await post(s, { origin: 'null' });
  assert.equal(nullOrigin.status, 403, 'a sandboxed page or a file');
  const upgrade = await TestSocket.refused(s.url, { headers: { origin: EVIL } });
  assert.deepEqual([upgrade.status, upgrade.body.error.code], [403, 'TOPTALLY_ERR_ORIGIN_NOT_ALLOWED']);
  assert.deepEqual(await top(s), []);

  assert.deepEqual((await post(s, { origin: own })).body, { accepted: 1, counters: 1 });
  const ws = await TestSocket.open(t, s.url, { headers: { origin: own } });
  ws.send({ type: 'subscribe', window: 'minute' });
  assert.equal((await ws.body()).type, 'top');
});

test('bodies a page may post without a preflight are refused from browsers, still read as JSON from other clients', async (t) => {
  const s = await startServer(t);
  const own = `http://127.0.0.1:${s.app.port}`;
  for (const [type, headers] of [
    ['text/plain', { origin: own }],
    ['application/x-www-form-urlencoded', { origin: own }],
    ['text/plain;charset=UTF-8', { 'sec-fetch-mode': 'no-cors' }],
    ['multipart/form-data; boundary=x', { origin: own }],
  ] as const) {
    const reply = await post(s, { ...headers, 'content-type': type });
    assert.deepEqual([reply.status, reply.body.error.code], [415, 'TOPTALLY_ERR_UNSUPPORTED_MEDIA_TYPE'], type);
  }
  assert.deepEqual(await top(s), []);
  // curl -d sends form-urlencoded; the seed's clients send text/plain.
  assert.equal((await post(s, { 'content-type': 'application/x-www-form-urlencoded' })).status, 200);
  assert.equal((await post(s, { 'content-type': 'text/plain' })).status, 200);
});

test('an origin in --allowed-origins gets preflights answered and CORS headers; others get 403 preflights', async (t) => {
  const dash = 'https://dash.example';
  const s = await startServer(t, { allowedOrigins: [dash] });
  const preflight = await request(`${s.url}/api/events`, {
    method: 'OPTIONS',
    headers: { origin: dash, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, idempotency-key' },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers['access-control-allow-origin'], dash);
  assert.equal(preflight.headers['access-control-allow-methods'], 'POST');
  assert.equal(preflight.headers['access-control-allow-headers'], 'authorization, content-type, idempotency-key');
  assert.equal(preflight.headers.vary, 'Origin');

  const written = await post(s, { origin: dash });
  assert.deepEqual([written.status, written.headers['access-control-allow-origin'], written.headers.vary], [200, dash, 'Origin']);
  const read = await request(`${s.url}/api/stats`, { headers: { origin: dash } });
  assert.deepEqual([read.status, read.headers['access-control-allow-origin']], [200, dash]);
  const ws = await TestSocket.open(t, s.url, { headers: { origin: dash } });
  ws.send({ type: 'subscribe', window: 'minute' });
  assert.equal((await ws.body()).type, 'top');

  const refused = await request(`${s.url}/api/events`, { method: 'OPTIONS', headers: { origin: EVIL, 'access-control-request-method': 'POST' } });
  assert.deepEqual([refused.status, refused.body.error.code], [403, 'TOPTALLY_ERR_ORIGIN_NOT_ALLOWED']);
  assert.equal(refused.headers['access-control-allow-origin'], undefined);
  assert.deepEqual(await top(s), [{ domain: 'page.example', count: 1 }]);
});
