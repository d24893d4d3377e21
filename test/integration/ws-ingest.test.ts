import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import { startServer, T0 } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const lastMinute = Math.floor(T0 / 60) * 60 - 60;

test('events are acked once applied, in JSON and in MessagePack, each answered in its own frame type', async (t) => {
  const s = await startServer(t);
  const ws = await TestSocket.open(t, s.url);

  ws.send({ type: 'events', id: 1, events: [{ timestamp: lastMinute + 1, A: 3, B: 4 }, { timestamp: String(lastMinute + 2), C: 8 }] });
  assert.deepEqual(await ws.next(), { binary: false, body: { type: 'ack', id: 1, accepted: 2, counters: 3 } });

  ws.send({ type: 'events', id: 'batch-2', events: [{ timestamp: lastMinute + 3, A: 10 }] }, true);
  assert.deepEqual(await ws.next(), { binary: true, body: { type: 'ack', id: 'batch-2', accepted: 1, counters: 1 } });

  ws.send({ type: 'events', id: 3, events: [] });
  assert.deepEqual(await ws.body(), { type: 'ack', id: 3, accepted: 0, counters: 0 });

  assert.deepEqual((await s.get('/api/stats/minutes')).body, [
    { Domain: 'A', NumberOfRequests: 13 },
    { Domain: 'C', NumberOfRequests: 8 },
    { Domain: 'B', NumberOfRequests: 4 },
  ]);
});

test('a "__proto__" domain sent as MessagePack is counted under that name and changes no prototype', async (t) => {
  const s = await startServer(t);
  const ws = await TestSocket.open(t, s.url);
  // JSON.parse makes "__proto__" an own key, and msgpackr packs it as a map key like any other.
  const counter = JSON.parse(`{"timestamp": ${lastMinute + 1}, "__proto__": 7, "constructor": 2, "__proto_": 1}`);
  ws.send({ type: 'events', id: 1, events: [counter] }, true);
  assert.deepEqual(await ws.body(), { type: 'ack', id: 1, accepted: 1, counters: 3 });
  assert.deepEqual((await s.get('/api/stats?window=minute')).body.top, [
    { domain: '__proto__', count: 7 },
    { domain: 'constructor', count: 2 },
    { domain: '__proto_', count: 1 },
  ]);
  assert.equal(({} as Record<string, unknown>).constructor, Object);
});

test('a bad message gets an error frame naming the problem, changes nothing, and the connection stays open', async (t) => {
  const s = await startServer(t);
  const ws = await TestSocket.open(t, s.url);

  ws.sendRaw('{"type": "events", ', false);
  let reply = await ws.next();
  assert.equal(reply.binary, false);
  assert.equal(reply.body.type, 'error');
  assert.equal(reply.body.error.code, 'TOPTALLY_ERR_MALFORMED_JSON');

  ws.sendRaw(Buffer.from([0x92, 0x01]), true); // an array of two holding one item
  reply = await ws.next();
  assert.equal(reply.binary, true);
  assert.equal(reply.body.error.code, 'TOPTALLY_ERR_MALFORMED_MSGPACK');

  ws.send({ type: 'event', id: 1, events: [] });
  assert.deepEqual(await ws.body(), {
    type: 'error',
    id: 1,
    error: {
      code: 'TOPTALLY_ERR_INVALID_MESSAGE',
      message: 'Unknown message type "event"; known: events, subscribe, unsubscribe',
      field: 'type',
    },
  });

  ws.send({ type: 'events', id: 2, events: [], extra: true });
  reply = await ws.next();
  assert.equal(reply.body.id, 2);
  assert.equal(reply.body.error.code, 'TOPTALLY_ERR_INVALID_MESSAGE');
  assert.equal(reply.body.error.field, 'extra');

  ws.send({ type: 'events', id: -1, events: [] });
  reply = await ws.next();
  assert.equal(reply.body.id, undefined);
  assert.equal(reply.body.error.field, 'id');

  // All or nothing: the first counter is fine, the second is not, so neither is counted.
  ws.send({ type: 'events', id: 4, events: [{ timestamp: lastMinute, A: 1 }, { timestamp: lastMinute, B: -2 }] }, true);
  assert.deepEqual(await ws.body(), {
    type: 'error',
    id: 4,
    error: {
      code: 'TOPTALLY_ERR_INVALID_COUNTER',
      message: 'The count of "B" must be a non-negative integer, not number -2',
      index: 1,
      key: 'B',
    },
  });
  ws.send({ type: 'events', id: 5, events: [{ timestamp: T0 + 3600, A: 1 }] });
  reply = await ws.next();
  assert.equal(reply.body.error.code, 'TOPTALLY_ERR_TIMESTAMP_IN_FUTURE');
  assert.equal(reply.body.error.index, 0);
  assert.deepEqual((await s.get('/api/stats/minutes')).body, []);

  ws.send({ type: 'events', id: 6, events: [{ timestamp: lastMinute, A: 1 }] });
  assert.deepEqual(await ws.body(), { type: 'ack', id: 6, accepted: 1, counters: 1 });
});

test('MessagePack counters must be maps: msgpackr records are refused', async (t) => {
  const s = await startServer(t);
  const ws = await TestSocket.open(t, s.url);
  const withRecords = new Packr({ useRecords: true });
  ws.sendRaw(withRecords.pack({ type: 'events', id: 1, events: [{ timestamp: lastMinute, A: 1 }, { timestamp: lastMinute, A: 2 }] }), true);
  const reply = await ws.body();
  assert.equal(reply.error.code, 'TOPTALLY_ERR_MALFORMED_MSGPACK');
  assert.match(reply.error.message, /extension types/);
});

test('past --max-inflight unacknowledged messages, the next ones get an error naming the limit', async (t) => {
  const s = await startServer(t, { maxInflight: 2 });
  const ws = await TestSocket.open(t, s.url);
  // One TCP write, so the server reads all five messages before any can be acked.
  const socket = (ws.socket as unknown as { _socket: import('node:net').Socket })._socket;
  socket.cork();
  for (let id = 1; id <= 5; id++) ws.send({ type: 'events', id, events: [{ timestamp: lastMinute, A: id }] });
  socket.uncork();

  const replies = new Map<number, any>();
  for (let i = 0; i < 5; i++) {
    const body = await ws.body();
    replies.set(body.id, body);
  }
  assert.deepEqual(replies.get(1), { type: 'ack', id: 1, accepted: 1, counters: 1 });
  assert.deepEqual(replies.get(2), { type: 'ack', id: 2, accepted: 1, counters: 1 });
  for (const id of [3, 4, 5]) {
    assert.equal(replies.get(id).type, 'error');
    assert.equal(replies.get(id).error.code, 'TOPTALLY_ERR_TOO_MANY_IN_FLIGHT');
    assert.equal(replies.get(id).error.limit, 2);
  }
  // Refused messages were not counted; once acked, the window is free again.
  ws.send({ type: 'events', id: 6, events: [{ timestamp: lastMinute, A: 100 }] });
  assert.deepEqual(await ws.body(), { type: 'ack', id: 6, accepted: 1, counters: 1 });
  assert.deepEqual((await s.get('/api/stats/minutes')).body, [{ Domain: 'A', NumberOfRequests: 103 }]);
});

test('a message over --max-frame gets an error frame and the connection closes with 1009', async (t) => {
  const s = await startServer(t, { maxFrame: 1024 });
  const ws = await TestSocket.open(t, s.url);
  const counter = (domains: number) =>
    Object.fromEntries([['timestamp', lastMinute], ...Array.from({ length: domains }, (_, i) => [`${i}`.padEnd(100, 'x'), 1])]);
  ws.send({ type: 'events', id: 1, events: [counter(9)] });
  assert.equal((await ws.body()).type, 'ack');

  ws.send({ type: 'events', id: 2, events: [counter(15)] });
  const reply = await ws.body();
  assert.equal(reply.error.code, 'TOPTALLY_ERR_FRAME_TOO_LARGE');
  assert.equal(reply.error.limit, 1024);
  const closed = await ws.closed;
  assert.equal(closed.code, 1009);
  assert.match(closed.reason, /TOPTALLY_ERR_FRAME_TOO_LARGE/);
});

test('stopping the server answers the events in flight, then closes connections with 1001', async (t) => {
  const s = await startServer(t);
  const ws = await TestSocket.open(t, s.url);
  // Big enough that the shards are still applying it when the pong (sent as soon as the server has
  // read the message) comes back.
  const events = Array.from({ length: 20_000 }, (_, i) => ({ timestamp: lastMinute, [`d${i}`]: 1 }));
  ws.send({ type: 'events', id: 1, events }, true);
  const ack = ws.body();
  await new Promise((resolve) => ws.socket.once('pong', resolve).ping());
  const stopped = s.app.stop();
  assert.deepEqual(await ack, { type: 'ack', id: 1, accepted: 20_000, counters: 20_000 });
  assert.equal((await ws.closed).code, 1001);
  await stopped;
});
