// The limits that keep one client from taking the server: what a request may hold, how many
// connections, how long a body or a silent WebSocket may take. Each is refused with its own code;
// --max-body, --max-frame and --max-inflight are tested with the HTTP and WebSocket endpoints.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { startServer, T0, type TestServer } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const LIMITS = { maxCounters: 3, maxDomains: 2, maxDomainBytes: 8 };
const ts = T0 - 60;

/** Bodies each over one limit by one, with the code and details the refusal must carry. */
const OVER: [string, unknown[], string, Record<string, unknown>][] = [
  ['counters per request', [{ timestamp: ts }, { timestamp: ts }, { timestamp: ts }, { timestamp: ts }], 'TOPTALLY_ERR_TOO_MANY_COUNTERS', { limit: 3 }],
  ['domains per counter', [{ timestamp: ts }, { timestamp: ts, a: 1, b: 1, c: 1 }], 'TOPTALLY_ERR_TOO_MANY_DOMAINS', { limit: 2, index: 1 }],
  ['domain length', [{ timestamp: ts, '123456789': 1 }], 'TOPTALLY_ERR_DOMAIN_TOO_LONG', { limit: 8, index: 0, key: '123456789' }],
  ['nested values', [{ timestamp: ts, a: { b: 1 } }], 'TOPTALLY_ERR_NESTED_VALUE', { index: 0, key: 'a' }],
  ['nested arrays', [{ timestamp: ts, a: [1] }], 'TOPTALLY_ERR_NESTED_VALUE', { index: 0, key: 'a' }],
];
/** At each limit exactly: accepted. */
const AT_LIMIT = [{ timestamp: ts, '12345678': 1, b: 2 }, { timestamp: ts, 'é.é.é': 3 }, { timestamp: ts }];

async function minuteTop(s: TestServer): Promise<unknown> {
  return (await s.get('/api/stats?window=minute&limit=100')).body.top;
}

for (const offload of ['never', 'always'] as const) {
  test(`HTTP: each request limit has its own code and changes nothing, decoded on the pool: ${offload}`, async (t) => {
    const s = await startServer(t, { ...LIMITS, offload });
    assert.deepEqual([(await s.post(AT_LIMIT)).status, (await s.post(AT_LIMIT)).body], [200, { accepted: 3, counters: 3 }]);
    const before = await minuteTop(s);
    for (const [limit, body, code, details] of OVER) {
      const reply = await s.post(body);
      assert.equal(reply.status, code === 'TOPTALLY_ERR_TOO_MANY_COUNTERS' || code === 'TOPTALLY_ERR_TOO_MANY_DOMAINS' ? 413 : 400, limit);
      assert.equal(reply.body.error.code, code, limit);
      for (const [key, value] of Object.entries(details)) assert.deepEqual(reply.body.error[key], value, `${limit}: ${key}`);
    }
    assert.deepEqual(await minuteTop(s), before);
  });
}

test('WebSocket: the same limits, the same codes, in error frames that name the message', async (t) => {
  const s = await startServer(t, LIMITS);
  const ws = await TestSocket.open(t, s.url);
  for (const [limit, events, code, details] of OVER) {
    ws.send({ type: 'events', id: limit, events }, true);
    const frame = await ws.body();
    assert.deepEqual([frame.type, frame.id, frame.error.code], ['error', limit, code], limit);
    for (const [key, value] of Object.entries(details)) assert.deepEqual(frame.error[key], value, `${limit}: ${key}`);
  }
  ws.send({ type: 'events', id: 'ok', events: AT_LIMIT });
  assert.deepEqual(await ws.body(), { type: 'ack', id: 'ok', accepted: 3, counters: 3 });
});

test('past --max-connections, WebSocket upgrades and HTTP requests get 503 until one closes', async (t) => {
  const s = await startServer(t, { maxConnections: 2 });
  const first = await TestSocket.open(t, s.url);
  await TestSocket.open(t, s.url);
  const upgrade = await TestSocket.refused(s.url);
  assert.deepEqual([upgrade.status, upgrade.body.error.code, upgrade.body.error.limit], [503, 'TOPTALLY_ERR_TOO_MANY_CONNECTIONS', 2]);
  assert.equal(upgrade.headers['retry-after'], '1');
  const http503 = await s.get('/api/stats');
  assert.deepEqual([http503.status, http503.body.error.code, http503.headers['retry-after']], [503, 'TOPTALLY_ERR_TOO_MANY_CONNECTIONS', '1']);

  first.socket.close();
  await first.closed;
  assert.equal((await s.get('/api/stats')).status, 200);
  await TestSocket.open(t, s.url);
  const rejected = await s.get('/api/stats?window=hour');
  assert.equal(rejected.status, 503, 'full again');
});

test('with --max-connections full, /healthz, /readyz and /metrics still answer from their reserve', async (t) => {
  const s = await startServer(t, { maxConnections: 2 });
  await TestSocket.open(t, s.url);
  await TestSocket.open(t, s.url);
  assert.equal((await s.get('/api/stats')).status, 503, 'full');
  for (const path of ['/healthz', '/readyz', '/metrics']) assert.equal((await s.get(path)).status, 200, path);
});

test('one address may hold --max-connections-per-address WebSockets; past that its upgrades get 503', { timeout: 20_000 }, async (t) => {
  const s = await startServer(t, { maxConnections: 100, maxConnectionsPerAddress: 2 });
  const first = await TestSocket.open(t, s.url);
  await TestSocket.open(t, s.url);
  const refused = await TestSocket.refused(s.url);
  assert.deepEqual(
    [refused.status, refused.body.error.code, refused.body.error.limit, refused.body.error.perAddress, refused.headers['retry-after']],
    [503, 'TOPTALLY_ERR_TOO_MANY_CONNECTIONS', 2, true, '1'],
  );
  assert.equal((await s.get('/api/stats')).status, 200, 'HTTP requests are not counted per address');
  first.socket.close();
  await first.closed;
  const again = await TestSocket.open(t, s.url);
  again.send({ type: 'subscribe', window: 'minute' });
  assert.equal((await again.body()).type, 'top');
});

/** A POST whose headers promise `length` bytes; the caller sends the body, or part of it. */
function startPost(s: TestServer, length: number): { req: http.ClientRequest; response: Promise<http.IncomingMessage> } {
  const req = http.request(`${s.url}/api/events`, { method: 'POST', agent: false, headers: { 'content-length': length } });
  req.on('error', () => {}); // the server may close while the client still writes
  req.flushHeaders();
  return { req, response: once(req, 'response').then(([res]) => res as http.IncomingMessage) };
}

async function json(res: http.IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString());
}

test('a body not complete within --body-timeout gets 408 and the connection is closed', async (t) => {
  const s = await startServer(t, { bodyTimeout: 200 });
  const body = JSON.stringify({ timestamp: ts, 'slow.example': 1 });
  const { req, response } = startPost(s, body.length);
  req.write(body.slice(0, 10));
  const res = await response;
  assert.equal(res.statusCode, 408);
  const reply = await json(res);
  assert.deepEqual(reply.error, {
    code: 'TOPTALLY_ERR_BODY_TIMEOUT',
    message: 'The body was not complete after 200 ms (--body-timeout); 10 bytes had arrived',
    limit: 200,
  });
  await once(res.socket, 'close');
  assert.deepEqual(await minuteTop(s), []);
});

test('a slow-loris client trickling its body is dropped at the deadline, and others are served meanwhile', async (t) => {
  const s = await startServer(t, { bodyTimeout: 200 });
  const body = JSON.stringify({ timestamp: ts, 'loris.example': 1 }).padEnd(4096, ' ');
  const socket = net.connect(s.app.port, '127.0.0.1');
  socket.write(`POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n`);
  let sent = 0;
  // The client's pace, not a wait: a byte every 10 ms until the server hangs up.
  const trickle = setInterval(() => socket.write(body[sent++]), 10);
  const replies: Buffer[] = [];
  socket.on('data', (chunk) => replies.push(chunk));
  const valid = await s.post({ timestamp: ts, 'fast.example': 1 });
  assert.equal(valid.status, 200, 'served while the loris trickles');
  await once(socket, 'close');
  clearInterval(trickle);
  assert.ok(sent < body.length, `the whole body went through (${sent} bytes)`);
  assert.match(Buffer.concat(replies).toString(), /^HTTP\/1\.1 408 Request Timeout\r\n[^]*"code":"TOPTALLY_ERR_BODY_TIMEOUT"/);
  assert.deepEqual(await minuteTop(s), [{ domain: 'fast.example', count: 1 }]);
});

test('a client that drops mid-body changes nothing and frees its connection slot', async (t) => {
  const s = await startServer(t, { maxConnections: 1 });
  const body = JSON.stringify({ timestamp: ts, 'dropped.example': 5 });
  const socket = net.connect(s.app.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 20)}`);
  // The server has the request once it refuses another: the one slot is taken.
  assert.equal((await s.get('/api/stats')).status, 503);
  socket.destroy();
  assert.equal((await s.get('/api/stats')).status, 200, 'the slot is free again');
  assert.deepEqual(await minuteTop(s), []);
  const metrics = (await s.get('/metrics')).body as string;
  assert.match(metrics, /toptally_http_requests_aborted_total\{route="\/api\/events"\} 1/);
  assert.doesNotMatch(metrics, /status="[^0-9"]/, 'status labels are numbers');
});

test('a WebSocket silent past --ws-idle-timeout is pinged, then closed with 1001 and the code', async (t) => {
  const s = await startServer(t, { wsIdleTimeout: 200 });
  const gone = await TestSocket.open(t, s.url, { autoPong: false });
  // Noted, not awaited: the ping may come before a later listener would be registered.
  let pinged = false;
  gone.socket.once('ping', () => (pinged = true));
  const alive = await TestSocket.open(t, s.url);
  const closed = await gone.closed;
  assert.ok(pinged, 'pinged before it was closed');
  assert.deepEqual(closed, { code: 1001, reason: 'TOPTALLY_ERR_IDLE_TIMEOUT: nothing received for 200 ms' });
  // One that answers pings outlives several timeouts.
  // A close instead of the next ping fails here at once rather than leaving the wait open.
  const closedEarly = alive.closed.then((c) => assert.fail(`the answering socket was closed (${c.code} ${c.reason})`));
  for (let i = 0; i < 3; i++) await Promise.race([once(alive.socket, 'ping'), closedEarly]);
  alive.send({ type: 'events', id: 1, events: [] });
  assert.deepEqual(await alive.body(), { type: 'ack', id: 1, accepted: 0, counters: 0 });
});

test('a WebSocket trickling one message is closed like a silent one: a message counts once whole', async (t) => {
  const s = await startServer(t, { wsIdleTimeout: 200 });
  const ws = await TestSocket.open(t, s.url, { autoPong: false });
  const payload = Buffer.from(JSON.stringify({ type: 'events', id: 1, events: [{ timestamp: ts, 'trickle.example': 1 }] }));
  // A masked text frame, written byte by byte on the raw socket.
  const mask = Buffer.from([1, 2, 3, 4]);
  const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4])]);
  const raw = (ws.socket as unknown as { _socket: net.Socket })._socket;
  let sent = 0;
  const trickle = setInterval(() => raw.write(frame.subarray(sent, ++sent)), 10);
  const closed = await ws.closed;
  clearInterval(trickle);
  assert.ok(sent < frame.length, `the whole frame went through (${sent} bytes)`);
  assert.equal(closed.code, 1001);
  assert.deepEqual(await minuteTop(s), []);
});
