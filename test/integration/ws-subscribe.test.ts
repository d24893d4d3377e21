import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startServer, T0, type TestServer } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const minuteStart = Math.floor(T0 / 60) * 60;
const lastMinute = minuteStart - 60;
const hourStart = Math.floor(T0 / 3600) * 3600;

async function post(s: TestServer, counters: object[]): Promise<void> {
  const reply = await s.post(counters);
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
}

test('subscribe answers at once with the last round window top-N, in the frame type it came in', async (t) => {
  const s = await startServer(t);
  await post(s, [{ timestamp: lastMinute + 5, A: 3, B: 4, C: 8 }]);
  const ws = await TestSocket.open(t, s.url);

  ws.send({ type: 'subscribe', window: 'minute', limit: 2 });
  assert.deepEqual(await ws.next(), {
    binary: false,
    body: {
      type: 'top',
      window: 'minute',
      from: lastMinute,
      to: minuteStart,
      top: [
        { domain: 'C', count: 8 },
        { domain: 'B', count: 4 },
      ],
      final: true,
    },
  });

  ws.send({ type: 'subscribe', window: 'hour' }, true);
  assert.deepEqual(await ws.next(), {
    binary: true,
    body: { type: 'top', window: 'hour', from: hourStart - 3600, to: hourStart, top: [], final: true },
  });

  ws.send({ type: 'subscribe', window: 'day' });
  const error = await ws.body();
  assert.equal(error.error.code, 'TOPTALLY_ERR_INVALID_MESSAGE');
  assert.equal(error.error.field, 'window');
  ws.send({ type: 'subscribe', window: 'minute', limit: 1001 });
  assert.equal((await ws.body()).error.field, 'limit');
});

test('the next top is pushed as each window closes on the server clock, minute and hour', async (t) => {
  const s = await startServer(t);
  const ws = await TestSocket.open(t, s.url);
  ws.send({ type: 'subscribe', window: 'minute', limit: 3 });
  assert.deepEqual((await ws.body()).top, []);
  ws.send({ type: 'subscribe', window: 'hour', limit: 3 });
  assert.deepEqual((await ws.body()).top, []);

  await post(s, [{ timestamp: T0, D: 5, E: 1 }, { timestamp: hourStart + 60, C: 8 }]); // 07:01 is neither open nor last round
  s.clock.set((minuteStart + 60) * 1000);
  assert.deepEqual(await ws.body(), {
    type: 'top',
    window: 'minute',
    from: minuteStart,
    to: minuteStart + 60,
    top: [
      { domain: 'D', count: 5 },
      { domain: 'E', count: 1 },
    ],
    final: true,
  });

  // Jumping to the next hour closes the minute before it and the hour.
  s.clock.set((hourStart + 3600) * 1000 + 10);
  const pushed = new Map<string, any>();
  for (let i = 0; i < 2; i++) {
    const body = await ws.body();
    pushed.set(body.window, body);
  }
  assert.deepEqual(pushed.get('minute'), {
    type: 'top',
    window: 'minute',
    from: hourStart + 3540,
    to: hourStart + 3600,
    top: [],
    final: true,
  });
  assert.deepEqual(pushed.get('hour'), {
    type: 'top',
    window: 'hour',
    from: hourStart,
    to: hourStart + 3600,
    top: [
      { domain: 'C', count: 8 },
      { domain: 'D', count: 5 },
      { domain: 'E', count: 1 },
    ],
    final: true,
  });
});

test('a late counter that changes the last round window is pushed again; one that changes nothing visible is not', async (t) => {
  const s = await startServer(t);
  await post(s, [{ timestamp: lastMinute, A: 3 }]);
  const ws = await TestSocket.open(t, s.url);
  ws.send({ type: 'subscribe', window: 'minute', limit: 1 });
  assert.deepEqual((await ws.body()).top, [{ domain: 'A', count: 3 }]);

  await post(s, [{ timestamp: lastMinute + 1, Z: 1 }]); // below the top 1
  await post(s, [{ timestamp: lastMinute - 60, Y: 50 }]); // an older minute
  await post(s, [{ timestamp: lastMinute + 2, B: 10 }]);
  assert.deepEqual(await ws.body(), {
    type: 'top',
    window: 'minute',
    from: lastMinute,
    to: minuteStart,
    top: [{ domain: 'B', count: 10 }],
    final: true,
  });
  ws.send({ type: 'events', id: 1, events: [] });
  assert.deepEqual(await ws.body(), { type: 'ack', id: 1, accepted: 0, counters: 0 });
});

test('live: the running top is pushed at most once per --live-interval, and only when it changed', async (t) => {
  const s = await startServer(t);
  const ws = await TestSocket.open(t, s.url);
  ws.send({ type: 'subscribe', window: 'minute', limit: 3, live: true });
  assert.deepEqual(await ws.body(), { type: 'top', window: 'minute', from: lastMinute, to: minuteStart, top: [], final: true });

  const live = (top: object[]) => ({ type: 'top', window: 'minute', from: minuteStart, to: minuteStart + 60, top, final: false });
  await post(s, [{ timestamp: T0, A: 1 }]);
  s.clock.advance(1000);
  assert.deepEqual(await ws.body(), live([{ domain: 'A', count: 1 }]));

  // Two changes within one interval make one push.
  await post(s, [{ timestamp: T0, A: 1 }]);
  await post(s, [{ timestamp: T0 + 1, B: 5 }]);
  s.clock.advance(1000);
  assert.deepEqual(await ws.body(), live([{ domain: 'B', count: 5 }, { domain: 'A', count: 2 }]));

  // A touch that changes nothing is not pushed: the next frame is the next change.
  await post(s, [{ timestamp: T0, A: 0 }]);
  s.clock.advance(1000);
  await post(s, [{ timestamp: T0, C: 9 }]);
  s.clock.advance(1000);
  const expected = [{ domain: 'C', count: 9 }, { domain: 'B', count: 5 }, { domain: 'A', count: 2 }];
  assert.deepEqual(await ws.body(), live(expected));

  s.clock.set((minuteStart + 60) * 1000);
  assert.deepEqual(await ws.body(), { ...live(expected), final: true });

  // A second live subscriber gets the current running top at once, after the snapshot.
  await post(s, [{ timestamp: minuteStart + 60, D: 4 }]);
  s.clock.advance(1000);
  assert.deepEqual((await ws.body()).top, [{ domain: 'D', count: 4 }]);
  const late = await TestSocket.open(t, s.url);
  late.send({ type: 'subscribe', window: 'minute', limit: 3, live: true });
  assert.equal((await late.body()).final, true);
  assert.deepEqual(await late.body(), {
    type: 'top',
    window: 'minute',
    from: minuteStart + 60,
    to: minuteStart + 120,
    top: [{ domain: 'D', count: 4 }],
    final: false,
  });
});

test('unsubscribe stops the pushes', async (t) => {
  const s = await startServer(t);
  const leaving = await TestSocket.open(t, s.url);
  const staying = await TestSocket.open(t, s.url);
  for (const ws of [leaving, staying]) {
    ws.send({ type: 'subscribe', window: 'minute', live: true });
    await ws.body();
  }
  leaving.send({ type: 'unsubscribe' });
  assert.deepEqual(await leaving.body(), { type: 'unsubscribed', windows: ['minute'] });
  leaving.send({ type: 'unsubscribe', window: 'hour' });
  assert.deepEqual(await leaving.body(), { type: 'unsubscribed', windows: [] });

  await post(s, [{ timestamp: T0, A: 1 }]);
  s.clock.set((minuteStart + 60) * 1000);
  assert.deepEqual((await staying.body()).top, [{ domain: 'A', count: 1 }]);
  // uWS delivers a topic's frames before a later direct reply, so had a push been due it would come first.
  leaving.send({ type: 'events', id: 7, events: [] });
  assert.deepEqual(await leaving.body(), { type: 'ack', id: 7, accepted: 0, counters: 0 });
});

test('each update is computed once per window kind and published once per (window, limit), whatever the subscribers', async (t) => {
  const s = await startServer(t);
  await post(s, [{ timestamp: T0, A: 1, B: 2, C: 3, D: 4 }]);
  const sockets: { ws: TestSocket; limit: number; binary: boolean }[] = [];
  for (const [limit, binary] of [[10, false], [10, false], [10, true], [2, false], [2, true]] as const) {
    const ws = await TestSocket.open(t, s.url);
    ws.send({ type: 'subscribe', window: 'minute', limit }, binary);
    await ws.body();
    sockets.push({ ws, limit, binary });
  }

  let shardQueries = 0;
  const top = s.app.pool.top.bind(s.app.pool);
  s.app.pool.top = (...args) => {
    shardQueries++;
    return top(...args);
  };
  const pushes: [string, number][] = [];
  s.app.publisher.on('push', (kind, limit) => pushes.push([kind, limit]));

  s.clock.set((minuteStart + 60) * 1000);
  for (const { ws, limit, binary } of sockets) {
    const frame = await ws.next();
    assert.equal(frame.binary, binary);
    assert.deepEqual(
      frame.body.top,
      [{ domain: 'D', count: 4 }, { domain: 'C', count: 3 }, { domain: 'B', count: 2 }, { domain: 'A', count: 1 }].slice(0, limit),
    );
  }
  assert.equal(shardQueries, 1);
  assert.deepEqual(pushes.sort(), [['minute', 10], ['minute', 2]].sort());
});

test('/metrics counts WebSocket connections, subscriptions by window and refused messages', async (t) => {
  const s = await startServer(t);
  const sample = async (line: string): Promise<number> => {
    const text: string = (await s.get('/metrics')).body;
    const match = new RegExp(`^${line.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
    return match ? Number(match[1]) : NaN;
  };
  const a = await TestSocket.open(t, s.url);
  const b = await TestSocket.open(t, s.url);
  a.send({ type: 'subscribe', window: 'minute' });
  await a.body();
  a.send({ type: 'subscribe', window: 'minute', limit: 5 }); // replaces the first
  await a.body();
  b.send({ type: 'subscribe', window: 'hour' });
  await b.body();
  b.send({ type: 'subscribe', window: 'week' });
  await b.body();
  assert.deepEqual(
    [
      await sample('toptally_ws_connections'),
      await sample('toptally_ws_subscribers{window="minute"}'),
      await sample('toptally_ws_subscribers{window="hour"}'),
      await sample('toptally_rejected_total{code="TOPTALLY_ERR_INVALID_MESSAGE"}'),
    ],
    [2, 1, 1, 1],
  );
  b.socket.close();
  await b.closed; // uWS runs its close handler before it answers the close frame
  assert.deepEqual([await sample('toptally_ws_connections'), await sample('toptally_ws_subscribers{window="hour"}')], [1, 0]);
});
