// A handler that throws, now or after an await, is answered 500 and logged: no request can end the
// process. Run against a real uWS app with the server's Router, Exchange and WebSocket endpoint.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { Exchange } from '../../src/frontend/http.ts';
import { Router } from '../../src/frontend/router.ts';
import { WsEndpoint, type WsDeps } from '../../src/frontend/ws.ts';
import { AccessControl } from '../../src/access/access.ts';
import { uWS } from '../../src/frontend/uws.ts';
import { createLogger } from '../../src/log.ts';
import { request } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

test('a handler that throws or rejects is answered 500 with a logged error, and the server goes on', async (t) => {
  const logged: { msg: string; route: string }[] = [];
  const sink = new Writable({ write: (chunk, _, done) => (logged.push(JSON.parse(String(chunk))), done()) });
  const router = new Router((res) => new Exchange(res, () => {}), undefined, { log: createLogger('error', sink) });
  router.add('GET', ['/throws'], () => {
    throw new Error('thrown at once');
  });
  router.add('GET', ['/rejects'], async () => {
    await Promise.resolve();
    throw new Error('thrown later');
  });
  router.add('GET', ['/answers-then-throws'], async (exchange) => {
    exchange.json(200, { ok: true });
    throw new Error('after the answer');
  });
  router.add('GET', ['/ok'], (exchange) => exchange.json(200, { ok: true }));
  const app = uWS.App();
  router.mount(app);
  const socket = await new Promise<uWS.us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('listen')))));
  t.after(() => uWS.us_listen_socket_close(socket));
  const url = `http://127.0.0.1:${uWS.us_socket_local_port(socket)}`;

  for (const [path, message] of [['/throws', 'thrown at once'], ['/rejects', 'thrown later']]) {
    const reply = await request(url + path);
    assert.equal(reply.status, 500, path);
    assert.equal(reply.body.error.code, 'TOPTALLY_ERR_INTERNAL', path);
    assert.match(reply.body.error.message, new RegExp(message), path);
  }
  assert.deepEqual((await request(url + '/answers-then-throws')).body, { ok: true });
  assert.deepEqual((await request(url + '/ok')).body, { ok: true });
  assert.deepEqual(
    logged.map((line) => line.route),
    ['/throws', '/rejects', '/answers-then-throws'],
  );
});

test('a WebSocket message whose answer fails unexpectedly gets an INTERNAL error frame, and the connection goes on', async (t) => {
  const logged: { msg: string }[] = [];
  const sink = new Writable({ write: (chunk, _, done) => (logged.push(JSON.parse(String(chunk))), done()) });
  let calls = 0;
  // An answer that cannot be written (JSON has no BigInt): the ack fails after the ingest resolved.
  const ingestor = { ingestDecoded: async () => (++calls === 1 ? { accepted: 1n, counters: 1 } : { accepted: 1, counters: 1 }) };
  const publisher = { on: () => {}, add: () => {}, remove: () => {}, snapshot: async () => undefined, currentLive: () => undefined };
  const metrics = { wsConnectionOpened() {}, wsConnectionClosed() {}, wsSubscribed() {}, wsUnsubscribed() {}, rejected() {} };
  const app = uWS.App();
  const deps = { ingestor, publisher, metrics, log: createLogger('error', sink), access: new AccessControl({ ingest: [], read: [] }), admit: () => null };
  const options = { maxFrame: 1 << 20, maxInflight: 8, maxBackpressure: 1 << 20, wsIdleTimeout: 0, maxConnectionsPerAddress: 10 };
  const endpoint = new WsEndpoint(app, deps as unknown as WsDeps, options);
  const socket = await new Promise<uWS.us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('listen')))));
  t.after(async () => {
    endpoint.stopAccepting();
    await endpoint.closeAll();
    uWS.us_listen_socket_close(socket);
  });
  const ws = await TestSocket.open(t, `http://127.0.0.1:${uWS.us_socket_local_port(socket)}`);
  ws.send({ type: 'events', id: 1, events: [{ timestamp: 60, a: 1 }] });
  const failed = await ws.body();
  assert.deepEqual([failed.type, failed.id, failed.error.code], ['error', 1, 'TOPTALLY_ERR_INTERNAL']);
  ws.send({ type: 'events', id: 2, events: [{ timestamp: 60, a: 1 }] });
  assert.deepEqual(await ws.body(), { type: 'ack', id: 2, accepted: 1, counters: 1 });
  assert.deepEqual(logged.map((line) => line.msg), ['a WebSocket message failed unexpectedly']);
});
