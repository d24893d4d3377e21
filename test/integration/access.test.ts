// Tokens, on a real server: every route the router has and every kind of caller, over HTTP and over
// WebSocket (header on the upgrade, or ?token= as browsers send it).

import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/log.ts';
import { request, startServer, T0, type TestServer } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const INGEST = 'ingest-token-0123456789';
const READ = 'read-token-0123456789ab';
const BOTH = 'both-token-0123456789ab';
const WRONG = 'wrong-token-0123456789a';

type Caller = 'none' | 'wrong' | 'basic' | 'read' | 'ingest' | 'both';
const HEADERS: Record<Caller, Record<string, string>> = {
  none: {},
  wrong: { authorization: `Bearer ${WRONG}` },
  basic: { authorization: 'Basic dXNlcjpwYXNz' },
  read: { authorization: `Bearer ${READ}` },
  ingest: { authorization: `bearer ${INGEST}` }, // the scheme is case-insensitive
  both: { authorization: `Bearer ${BOTH}` },
};

/** The scope each route needs; a route missing here fails the test until someone decides. */
function scopeOf(method: string, path: string): 'ingest' | 'read' | null {
  if (method === 'POST' && path === '/api/events') return 'ingest';
  if (['/healthz', '/readyz', '/openapi.json', '/asyncapi.json', '/'].includes(path) || path.startsWith('/dashboard/')) return null;
  if (path === '/metrics' || path.includes('stats')) return 'read';
  assert.fail(`${method} ${path}: which scope does it need?`);
}

/** What a caller gets from a route needing `scope`: a status and, for errors, the code. */
function expected(scope: 'ingest' | 'read' | null, caller: Caller): [number, string?] {
  if (scope === null) return [200];
  if (caller === 'none' || caller === 'wrong' || caller === 'basic') return [401, 'TOPTALLY_ERR_UNAUTHORIZED'];
  if (caller === 'both' || caller === scope) return [200];
  return [403, 'TOPTALLY_ERR_FORBIDDEN'];
}

const counter = () => JSON.stringify({ timestamp: T0 - 60, 'a.example': 1 });

async function protectedServer(t: Parameters<typeof startServer>[0], log = createLogger('silent')): Promise<TestServer> {
  return startServer(t, { ingestTokens: [INGEST, BOTH], readTokens: [READ, BOTH] }, T0, { log });
}

test('every HTTP route answers every kind of caller as its scope says', async (t) => {
  const s = await protectedServer(t);
  let posted = 0;
  const routes = s.app.router.paths().flatMap((path) => s.app.router.methods(path).map((method) => [method, path] as const));
  assert.ok(routes.length >= 14, `${routes.length} routes`);
  for (const [method, path] of routes) {
    const scope = scopeOf(method, path);
    for (const caller of Object.keys(HEADERS) as Caller[]) {
      const body = method === 'POST' ? counter() : undefined;
      const reply = await request(s.url + path, { method, headers: HEADERS[caller], body });
      const [status, code] = expected(scope, caller);
      const what = `${caller} -> ${method} ${path}`;
      assert.equal(reply.status, status, `${what}: ${JSON.stringify(reply.body)}`);
      if (code) {
        assert.equal(reply.body.error.code, code, what);
        const challenge = String(reply.headers['www-authenticate']);
        assert.match(challenge, /^Bearer realm="toptally"/, what);
        if (caller === 'wrong') assert.match(challenge, /error="invalid_token"/, what);
        if (code === 'TOPTALLY_ERR_FORBIDDEN') assert.match(challenge, new RegExp(`error="insufficient_scope", scope="${scope}"`), what);
      } else if (method === 'POST') {
        posted++;
      }
    }
  }
  // Only the callers allowed to ingest were counted.
  const stats = await request(`${s.url}/api/stats?window=minute`, { headers: HEADERS.read });
  assert.deepEqual(stats.body.top, [{ domain: 'a.example', count: posted }]);
  assert.equal(posted, 2);
});

test('tokens are not taken from the query string over HTTP, and a refused body is never read', async (t) => {
  const s = await protectedServer(t);
  const reply = await request(`${s.url}/api/stats?token=${READ}`);
  assert.deepEqual([reply.status, reply.body.error.code], [401, 'TOPTALLY_ERR_UNAUTHORIZED']);
  // A refused POST closes the connection: its body is never read, so never taken for a request,
  // and a request pipelined after it is not answered.
  const body = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
  const socket = net.connect(s.app.port, '127.0.0.1');
  socket.end(`POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${READ}\r\nContent-Length: ${body.length}\r\n\r\n${body}${body}`);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const replies = Buffer.concat(chunks).toString().match(/^HTTP\/1\.1 [0-9]+/gm);
  assert.deepEqual(replies, ['HTTP/1.1 403']);
});

test('a scope without tokens is open; a wrong token is still refused there', async (t) => {
  const s = await startServer(t, { readTokens: [READ] });
  assert.equal((await s.post(counter())).status, 200, 'ingest is open');
  assert.equal((await s.post(counter(), HEADERS.read)).status, 200, 'a read token may use an open ingest');
  assert.equal((await s.post(counter(), HEADERS.wrong)).status, 401, 'but a wrong token is wrong');
  assert.equal((await s.get('/api/stats/minutes')).status, 401, 'reading needs the token');
  const read = await request(`${s.url}/api/stats/minutes`, { headers: HEADERS.read });
  assert.deepEqual(read.body, [{ Domain: 'a.example', NumberOfRequests: 2 }]);
});

test('start-up says who may do what, and names no token', async (t) => {
  const lines: string[] = [];
  const logs = new PassThrough().on('data', (chunk: Buffer) => lines.push(chunk.toString()));
  await protectedServer(t, createLogger('info', logs));
  await startServer(t, { readTokens: [READ], host: '0.0.0.0' }, T0, { log: createLogger('info', logs) });
  const [closed, half] = lines.map((line) => JSON.parse(line));
  assert.equal(closed.level, 30);
  assert.match(closed.msg, /; ingest and read need a token$/);
  assert.equal(half.level, 40);
  assert.match(half.msg, /; no --ingest-token: anyone who can connect to 0\.0\.0\.0:[0-9]+, which is not a loopback address, may post counters$/);
  for (const token of [INGEST, READ, BOTH]) assert.ok(!lines.join('').includes(token), 'a token was logged');
});

/** A WebSocket caller: how it presents its token. */
const UPGRADES: Record<string, { caller: Caller; headers?: Record<string, string>; query?: string }> = {
  'no token': { caller: 'none' },
  'a wrong token': { caller: 'wrong', headers: HEADERS.wrong },
  'a wrong ?token=': { caller: 'wrong', query: `?token=${WRONG}` },
  'Basic credentials': { caller: 'basic', headers: HEADERS.basic },
  'a read token': { caller: 'read', headers: HEADERS.read },
  'a read ?token=': { caller: 'read', query: `?token=${encodeURIComponent(READ)}` },
  'an ingest token': { caller: 'ingest', headers: HEADERS.ingest },
  'an ingest ?token=': { caller: 'ingest', query: `?token=${INGEST}` },
  'a token of both scopes': { caller: 'both', headers: HEADERS.both },
};

test('WebSocket: the upgrade needs a valid token; events need ingest, subscriptions read', async (t) => {
  const s = await protectedServer(t);
  let acked = 0;
  for (const [name, { caller, headers, query }] of Object.entries(UPGRADES)) {
    if (caller === 'none' || caller === 'wrong' || caller === 'basic') {
      const refused = await TestSocket.refused(s.url, { headers, query });
      assert.deepEqual([refused.status, refused.body.error.code], [401, 'TOPTALLY_ERR_UNAUTHORIZED'], name);
      assert.match(String(refused.headers['www-authenticate']), /^Bearer realm="toptally"/, name);
      continue;
    }
    const ws = await TestSocket.open(t, s.url, { headers, query });
    ws.send({ type: 'events', id: name, events: [{ timestamp: T0 - 60, 'w.example': 1 }] });
    const events = await ws.body();
    if (caller === 'read') {
      assert.deepEqual(events, {
        type: 'error',
        id: name,
        error: { code: 'TOPTALLY_ERR_FORBIDDEN', message: 'The token does not have the ingest scope', scope: 'ingest' },
      });
    } else {
      assert.deepEqual(events, { type: 'ack', id: name, accepted: 1, counters: 1 }, name);
      acked++;
    }
    ws.send({ type: 'subscribe', window: 'minute', limit: 3 }, true);
    const subscribed = await ws.body();
    if (caller === 'ingest') {
      assert.deepEqual([subscribed.type, subscribed.error.code, subscribed.error.scope], ['error', 'TOPTALLY_ERR_FORBIDDEN', 'read'], name);
    } else {
      assert.deepEqual([subscribed.type, subscribed.top], ['top', acked > 0 ? [{ domain: 'w.example', count: acked }] : []], name);
    }
    ws.socket.close();
  }
  assert.equal(acked, 3);
});

test('WebSocket: with reading open, anyone may subscribe and only an ingest token may send', async (t) => {
  const s = await startServer(t, { ingestTokens: [INGEST] });
  const anonymous = await TestSocket.open(t, s.url);
  anonymous.send({ type: 'events', id: 1, events: [] });
  assert.deepEqual((await anonymous.body()).error, {
    code: 'TOPTALLY_ERR_UNAUTHORIZED',
    message: 'A token with the ingest scope is required (Authorization: Bearer <token>)',
    scope: 'ingest',
  });
  anonymous.send({ type: 'subscribe', window: 'hour' });
  assert.equal((await anonymous.body()).type, 'top');
  const refused = await TestSocket.refused(s.url, { query: `?token=${READ}` });
  assert.equal(refused.status, 401, 'a token that is not configured is refused even where a scope is open');
});
