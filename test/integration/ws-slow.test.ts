import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { startServer, T0, type TestServer } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const minuteStart = Math.floor(T0 / 60) * 60;
const lastMinute = minuteStart - 60;
const MAX_BACKPRESSURE = 64 * 1024;

/** 1,000 domains of 250 bytes: a top-1000 frame is about 280 KB. */
function bigCounter(timestamp: number, round: number, count: number): Record<string, number> {
  const counter: Record<string, number> = { timestamp };
  for (let i = 0; i < 1000; i++) counter[`r${round}-${i}-`.padEnd(250, 'x')] = count;
  return counter;
}

async function post(s: TestServer, counter: object): Promise<void> {
  assert.equal((await s.post(counter)).status, 200);
}

/** Stops reading the socket, so what the server sends piles up in the kernel, then in uWS. */
function tcp(ws: TestSocket): Socket {
  return (ws.socket as unknown as { _socket: Socket })._socket;
}

test('a connection that stops reading is closed with 1013 once its backlog passes --max-backpressure', async (t) => {
  const s = await startServer(t, { maxBackpressure: MAX_BACKPRESSURE });
  await post(s, bigCounter(lastMinute, 0, 1));
  const slow = await TestSocket.open(t, s.url);
  slow.send({ type: 'subscribe', window: 'minute', limit: 1000 });
  const frameBytes = JSON.stringify(await slow.body()).length;

  const slowEvent = once(s.app.ws, 'slow');
  tcp(slow).pause();
  // Each asks for a fresh snapshot: about 34 MB in all, far more than the kernel buffers.
  const asked = 120;
  for (let i = 0; i < asked; i++) slow.send({ type: 'subscribe', window: 'minute', limit: 1000 });
  const [action, backlog] = await slowEvent;
  assert.equal(action, 'closed');
  // Nothing was queued on a backlog already over the limit: at most one frame beyond it.
  assert.ok(backlog > MAX_BACKPRESSURE && backlog <= MAX_BACKPRESSURE + frameBytes, `backlog ${backlog}`);

  tcp(slow).resume();
  let received = 0;
  await assert.rejects(async () => {
    for (;;) {
      assert.equal((await slow.body()).top.length, 1000);
      received++;
    }
  }, /closed \(1013 TOPTALLY_ERR_SLOW_CONSUMER: backlog over 65536 bytes\)/);
  assert.ok(received < asked, `received all ${received} snapshots`);

  // The server itself is fine.
  const other = await TestSocket.open(t, s.url);
  other.send({ type: 'subscribe', window: 'minute', limit: 1 });
  assert.equal((await other.body()).top.length, 1);
});

test('live updates a slow subscriber cannot take are replaced by the newest one once it catches up', async (t) => {
  const s = await startServer(t, { maxBackpressure: MAX_BACKPRESSURE, liveInterval: 100 });
  const subscribe = async (): Promise<TestSocket> => {
    const ws = await TestSocket.open(t, s.url);
    ws.send({ type: 'subscribe', window: 'minute', limit: 1000, live: true });
    assert.equal((await ws.body()).final, true);
    return ws;
  };
  const slow = await subscribe();
  const fast = await subscribe();
  const actions: string[] = [];
  s.app.ws.on('slow', (action) => actions.push(action));

  tcp(slow).pause();
  // A round is a new top 1000 (higher counts) and one live push; the fast subscriber shows it went out.
  let rounds = 0;
  const round = async (): Promise<void> => {
    rounds++;
    await post(s, bigCounter(T0, rounds, rounds));
    s.clock.advance(100);
    const frame = await fast.body();
    assert.deepEqual([frame.final, frame.top[0].count], [false, rounds]);
  };
  while (!actions.includes('held')) {
    assert.ok(rounds < 200, 'the slow subscriber was never held back');
    await round();
  }
  await round();
  await round();

  tcp(slow).resume();
  let received = 0;
  for (;;) {
    const frame = await slow.body();
    assert.equal(frame.final, false);
    received++;
    if (frame.top[0].count === rounds) break;
  }
  assert.ok(received < rounds, `received ${received} of ${rounds} live updates`);
  assert.deepEqual(new Set(actions), new Set(['held']));
  // Still subscribed, and back on the topic.
  await round();
  assert.equal((await slow.body()).top[0].count, rounds);
});
