// A stop under one deadline: whatever hangs (a WebSocket ingest waiting on a shard that cannot
// restart, a request whose body never comes) cannot hold it past the stop grace, and a request on a
// kept-alive connection during the stop is refused, not served.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { hashDomain, shardOf } from '../../src/routing/hash.ts';
import type { ShardHandle } from '../../src/shards/shard-handle.ts';
import { request, startServer, T0 } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

/** Far beyond the grace these tests give: only a stop that hangs gets here. */
const HANG_MS = 5000;

function resolvesWithin<T>(promise: Promise<T>, ms: number): Promise<'resolved' | 'hung'> {
  const timer = sleep(ms, 'hung' as const, { ref: false });
  return Promise.race([promise.then(() => 'resolved' as const), timer]);
}

/** A counter whose domains all belong to `shard` (of 2). */
function onShard(shard: number): Record<string, number> {
  const counter: Record<string, number> = { timestamp: T0 - 60 };
  for (let i = 0; Object.keys(counter).length < 4; i++) if (shardOf(hashDomain(`d${i}.example`), 2) === shard) counter[`d${i}.example`] = 1;
  return counter;
}

/** Kills the shard's worker the moment it is handed a part; resolves `handed` then. */
function dieOnNextPart(shard: ShardHandle): Promise<void> {
  return new Promise((handed) => {
    const ingest = shard.ingest.bind(shard);
    shard.ingest = (part, waited) => {
      const applied = ingest(part, waited);
      void shard.terminate();
      handed();
      return applied;
    };
  });
}

test('a stop while a WebSocket ingest waits on a shard that cannot restart resolves within the stop grace', async (t) => {
  // The replacement worker is held before its rebuild for as long as the test runs.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  t.after(() => release());
  let restarting!: () => void;
  const restartHeld = new Promise<void>((resolve) => (restarting = resolve));
  // Without a journal the ingest waits for the shard to apply its part, and so for the restart.
  const s = await startServer(t, { durability: 'off' }, T0, {
    stopGraceMs: 200,
    recoverShard: async () => {
      restarting();
      await held;
      return false;
    },
  });
  const ws = await TestSocket.open(t, s.url);
  const handed = dieOnNextPart(s.app.pool.shards[1]);
  ws.send({ type: 'events', id: 'stuck', events: [onShard(1)] });
  await handed;
  await restartHeld;
  assert.equal(ws.queued, 0, 'the events message is still unanswered');

  assert.equal(await resolvesWithin(s.app.stop(), HANG_MS), 'resolved');
  assert.equal((await ws.closed).code, 1001, 'the WebSocket was closed as going away');
  release();
});

test('a request on a kept-alive connection during a stop gets 503 TOPTALLY_ERR_SHUTTING_DOWN and Connection: close', async (t) => {
  // One connection at most: a request refused for the limit shows the one in flight has arrived
  // (/api/stats: the probes have a reserve past the limit).
  const s = await startServer(t, { maxConnections: 1 });
  const keptAlive = await connect(t, s.app.port);
  assert.equal((await keptAlive.ask('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')).status, 200);

  // A request whose body is half sent holds the stop in "answer HTTP requests in flight".
  const body = JSON.stringify({ timestamp: T0 - 60, A: 1 });
  const posting = await connect(t, s.app.port);
  const posted = posting.ask(`POST /api/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
  let arrived = false;
  for (let i = 0; i < 200 && !arrived; i++) {
    arrived = (await request(`${s.url}/api/stats`)).body?.error?.code === 'TOPTALLY_ERR_TOO_MANY_CONNECTIONS';
  }
  assert.ok(arrived, 'the half-sent request is in flight');

  const stopped = s.app.stop();
  const refused = await keptAlive.ask('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  assert.deepEqual(
    [refused.status, refused.headers.connection, JSON.parse(refused.body).error.code],
    [503, 'close', 'TOPTALLY_ERR_SHUTTING_DOWN'],
  );
  posting.socket.write(body.slice(5));
  const reply = await posted;
  assert.equal(reply.status, 200, `the request in flight is still answered: ${reply.body}`);
  await stopped;
});

interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

interface RawConnection {
  socket: net.Socket;
  /** Writes a request and resolves with the next response on this connection. */
  ask(request: string): Promise<RawReply>;
}

/** One kept-alive HTTP/1.1 connection, written to by hand; its responses (with Content-Length) are read in order. */
async function connect(t: { after(fn: () => void): void }, port: number): Promise<RawConnection> {
  const socket = net.connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  let buffered = '';
  const waiting: ((reply: RawReply) => void)[] = [];
  const ready: RawReply[] = [];
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (;;) {
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = buffered.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      const length = Number(headers['content-length'] ?? 0);
      if (buffered.length < end + 4 + length) return;
      const reply = { status: Number(statusLine.split(' ')[1]), headers, body: buffered.slice(end + 4, end + 4 + length) };
      buffered = buffered.slice(end + 4 + length);
      const waiter = waiting.shift();
      if (waiter) waiter(reply);
      else ready.push(reply);
    }
  });
  const next = (): Promise<RawReply> => {
    const reply = ready.shift();
    return reply ? Promise.resolve(reply) : new Promise((resolve) => waiting.push(resolve));
  };
  return {
    socket,
    ask: (request) => {
      socket.write(request);
      return next();
    },
  };
}
