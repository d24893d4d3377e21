// Overload and crashes: when shards fall behind, new ingest is refused with 503 and Retry-After while
// queries are answered, their backlog stays bounded, and every acknowledged counter is counted; a
// shard worker that dies is replaced by itself and rebuilt from the data directory, and its domains
// get 503 meanwhile, never a drop.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/log.ts';
import type { ShardHandle } from '../../src/shards/shard-handle.ts';
import { hashDomain, shardOf } from '../../src/routing/hash.ts';
import { mulberry32 } from '../helpers/random.ts';
import { startServer, T0, type TestServer } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const ts = T0 - 60;
const DOMAINS = Array.from({ length: 200 }, (_, i) => `d${i}.example`);

type Counter = Record<string, number>;

/** Requests of 40 random domains, and the most bytes one of them can add to a shard's backlog. */
function requests(n: number, seed: number): { bodies: Counter[]; largestPart: number } {
  const rand = mulberry32(seed);
  const bodies = Array.from({ length: n }, () => {
    const counter: Counter = { timestamp: ts };
    for (let i = 0; i < 40; i++) counter[DOMAINS[Math.floor(rand() * DOMAINS.length)]] = 1 + Math.floor(rand() * 9);
    return counter;
  });
  // A part holds 20 bytes per entry plus the names (see src/protocol/shard-part.ts).
  const largestPart = Math.max(...bodies.map((c) => Object.keys(c).reduce((sum, key) => sum + 20 + key.length, 0)));
  return { bodies, largestPart };
}

/** Adds acknowledged counters to the model of what the server must hold. */
function count(model: Map<string, number>, counters: Counter[]): void {
  for (const counter of counters) {
    for (const [domain, n] of Object.entries(counter)) if (domain !== 'timestamp') model.set(domain, (model.get(domain) ?? 0) + n);
  }
}

function ranked(model: Map<string, number>): { domain: string; count: number }[] {
  return [...model]
    .map(([domain, count]) => ({ domain, count }))
    .sort((a, b) => b.count - a.count || (a.domain < b.domain ? -1 : 1));
}

async function minute(s: TestServer): Promise<{ status: number; top: unknown }> {
  const reply = await s.get('/api/stats?window=minute&limit=1000');
  return { status: reply.status, top: reply.body.top };
}

/** Raw HTTP/1.1 on a connection of its own, so a burst can be written in one go. */
class RawClient {
  readonly socket: net.Socket;
  #data = Buffer.alloc(0);

  private constructor(socket: net.Socket) {
    this.socket = socket;
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  write(method: string, path: string, body = ''): void {
    this.socket.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }

  /** The response to what was written: status, Retry-After and the JSON body. */
  async read(): Promise<{ status: number; retryAfter: string | undefined; body: any }> {
    for (;;) {
      const end = this.#data.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = this.#data.subarray(0, end).toString();
        const length = Number(/content-length: *([0-9]+)/i.exec(head)?.[1]);
        if (this.#data.length >= end + 4 + length) {
          const body = JSON.parse(this.#data.subarray(end + 4, end + 4 + length).toString());
          this.#data = this.#data.subarray(end + 4 + length);
          return { status: Number(head.split(' ')[1]), retryAfter: /retry-after: *([0-9]+)/i.exec(head)?.[1], body };
        }
      }
      const [chunk] = (await once(this.socket, 'data')) as [Buffer];
      this.#data = Buffer.concat([this.#data, chunk]);
    }
  }
}

const BOUND = 4096;

test('HTTP: past --max-shard-backlog, ingest gets 503 with Retry-After, queries 200, and every acked counter is counted', async (t) => {
  // Decoded in place, so the whole burst is queued before any shard has answered.
  const s = await startServer(t, { maxShardBacklog: BOUND, offload: 'never' });
  const { bodies, largestPart } = requests(60, 1);
  const clients = await Promise.all(bodies.map(() => RawClient.connect(s.app.port)));
  const readers = await Promise.all([0, 1, 2].map(() => RawClient.connect(s.app.port)));
  t.after(() => [...clients, ...readers].forEach((c) => c.socket.destroy()));

  // One burst: every request is written before the server reads any.
  bodies.forEach((body, i) => clients[i].write('POST', '/api/events', JSON.stringify(body)));
  for (const reader of readers) reader.write('GET', '/api/stats?window=minute&limit=1000');
  const replies = await Promise.all(clients.map((c) => c.read()));
  for (const reader of readers) assert.equal((await reader.read()).status, 200, 'queries are answered during the overload');

  const model = new Map<string, number>();
  let refused = 0;
  replies.forEach((reply, i) => {
    if (reply.status === 200) return count(model, [bodies[i]]);
    refused++;
    assert.deepEqual([reply.status, reply.retryAfter, reply.body.error.code, reply.body.error.limit], [503, '1', 'TOPTALLY_ERR_OVERLOADED', BOUND]);
  });
  assert.ok(refused > 0 && refused < bodies.length, `${refused} of ${bodies.length} refused`);
  // The backlog, the memory a shard's queue holds, passed the bound by less than one request.
  assert.ok(s.app.pool.peakBacklogBytes <= BOUND + largestPart, `peak backlog ${s.app.pool.peakBacklogBytes}`);
  assert.deepEqual(await minute(s), { status: 200, top: ranked(model) });

  // Load gone: ingest resumes by itself.
  for (const body of bodies.slice(0, 5)) {
    assert.equal((await s.post(body)).status, 200);
    count(model, [body]);
  }
  assert.deepEqual(await minute(s), { status: 200, top: ranked(model) });
  const metrics = (await s.get('/metrics')).body as string;
  assert.match(metrics, new RegExp(`toptally_rejected_total\\{code="TOPTALLY_ERR_OVERLOADED"\\} ${refused}\\n`));
  assert.match(metrics, /toptally_shard_backlog_bytes\{shard="0"\} 0\n/);
});

test('WebSocket: past --max-shard-backlog, events get an error frame with retryAfter; acked ones are all counted', async (t) => {
  const s = await startServer(t, { maxShardBacklog: BOUND, maxInflight: 1000 });
  const { bodies, largestPart } = requests(80, 2);
  const ws = await TestSocket.open(t, s.url);
  bodies.forEach((body, id) => ws.send({ type: 'events', id, events: [body] }, true));
  const model = new Map<string, number>();
  let refused = 0;
  for (let i = 0; i < bodies.length; i++) {
    const frame = await ws.body();
    if (frame.type === 'ack') {
      count(model, [bodies[frame.id]]);
      continue;
    }
    refused++;
    assert.deepEqual([frame.type, frame.error.code, frame.error.retryAfter], ['error', 'TOPTALLY_ERR_OVERLOADED', 1]);
  }
  assert.ok(refused > 0 && refused < bodies.length, `${refused} of ${bodies.length} refused`);
  assert.ok(s.app.pool.peakBacklogBytes <= BOUND + largestPart, `peak backlog ${s.app.pool.peakBacklogBytes}`);
  assert.deepEqual(await minute(s), { status: 200, top: ranked(model) });
});

/** A counter whose domains all belong to `shard` (of 2). */
function onShard(shard: number, n = 1): Counter {
  const counter: Counter = { timestamp: ts };
  for (const domain of DOMAINS.filter((d) => shardOf(hashDomain(d), 2) === shard).slice(0, 5)) counter[domain] = n;
  return counter;
}

test('a killed shard worker comes back by itself with its state; meanwhile its ingest and queries get 503', async (t) => {
  // The replacement is held before its rebuild until the test has seen the 503s.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const s: TestServer = await startServer(t, {}, T0, {
    recoverShard: async (shard, handle) => {
      await held;
      return s.app.durability.rebuildShard(shard, handle);
    },
  });
  const model = new Map<string, number>();
  const post = async (counter: Counter): Promise<number> => {
    const reply = await s.post(counter);
    if (reply.status === 200) count(model, [counter]);
    return reply.status;
  };
  const { bodies } = requests(20, 3);
  // Half before a checkpoint, half after: the rebuild reads both the checkpoint and the journal.
  for (const body of bodies.slice(0, 10)) assert.equal(await post(body), 200);
  await s.app.durability.checkpoint();
  for (const body of bodies.slice(10)) assert.equal(await post(body), 200);

  const dying = s.app.pool.shards[1];
  const exited = once(dying, 'exit');
  await dying.terminate();
  await exited;

  const down = await s.post(onShard(1));
  assert.deepEqual([down.status, down.headers['retry-after'], down.body.error.code, down.body.error.shard], [503, '1', 'TOPTALLY_ERR_SHARD_UNAVAILABLE', 1]);
  const ws = await TestSocket.open(t, s.url);
  ws.send({ type: 'events', id: 'down', events: [onShard(1)] });
  const frame = await ws.body();
  assert.deepEqual([frame.id, frame.error.code, frame.error.retryAfter], ['down', 'TOPTALLY_ERR_SHARD_UNAVAILABLE', 1]);
  assert.equal((await minute(s)).status, 503, 'a query needs every shard');
  assert.equal(await post(onShard(0, 7)), 200, 'domains of the live shard are still taken');
  assert.equal((await s.get('/readyz')).status, 503);

  const restarted = once(s.app.pool, 'restarted');
  release();
  assert.deepEqual(await restarted, [1, true]);
  assert.notEqual(s.app.pool.shards[1], dying);
  assert.deepEqual(await minute(s), { status: 200, top: ranked(model) }, 'the rebuilt shard holds what was acknowledged');
  assert.equal(await post(onShard(1, 2)), 200);
  assert.deepEqual(await minute(s), { status: 200, top: ranked(model) });
  assert.equal((await s.get('/readyz')).status, 200);
});

/** Kills the shard's worker the moment it is handed a part, so that part is never applied. */
function dieOnNextPart(shard: ShardHandle): void {
  const ingest = shard.ingest.bind(shard);
  shard.ingest = (part, waited) => {
    const applied = ingest(part, waited);
    void shard.terminate();
    return applied;
  };
}

test('a batch journaled, acknowledged and then lost with a dying worker is counted once the rebuild has replayed it', async (t) => {
  const s = await startServer(t);
  const model = new Map<string, number>();
  const before = { ...onShard(0, 1), ...onShard(1, 1) };
  assert.equal((await s.post(before)).status, 200);
  count(model, [before]);

  const restarted = once(s.app.pool, 'restarted');
  dieOnNextPart(s.app.pool.shards[1]);
  const lost = { ...onShard(0, 3), ...onShard(1, 3) };
  const reply = await s.post(lost);
  // Acknowledged once on disk: the shard had not applied it, and never will.
  assert.deepEqual([reply.status, reply.body], [200, { accepted: 1, counters: 10 }]);
  count(model, [lost]);
  assert.deepEqual(await restarted, [1, true]);
  assert.deepEqual(await minute(s), { status: 200, top: ranked(model) });
});

test('with --durability off a restarted shard starts empty, and says so loudly', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const logs = new PassThrough().on('data', (chunk: Buffer) => lines.push(...chunk.toString().trim().split('\n').map((l) => JSON.parse(l))));
  const s = await startServer(t, { durability: 'off' }, T0, { log: createLogger('info', logs) });
  assert.equal((await s.post(onShard(0, 1))).status, 200);
  assert.equal((await s.post(onShard(1, 1))).status, 200);
  // Nothing to rebuild from: a batch whose part dies with the worker is refused, though the live
  // shard kept its own part (see docs/security.md).
  const restarted = once(s.app.pool, 'restarted');
  dieOnNextPart(s.app.pool.shards[1]);
  const lost = await s.post({ ...onShard(0, 5), ...onShard(1, 5) });
  assert.deepEqual([lost.status, lost.body.error.code], [503, 'TOPTALLY_ERR_SHARD_UNAVAILABLE']);
  assert.deepEqual(await restarted, [1, false]);
  const loud = lines.find((line) => line.level === 50 && String(line.msg).includes('restarted EMPTY'));
  assert.deepEqual([loud?.shard, loud?.recovered], [1, false]);
  const model = new Map<string, number>();
  count(model, [onShard(0, 1), onShard(0, 5)]);
  assert.deepEqual(await minute(s), { status: 200, top: ranked(model) }, 'shard 1 lost what it held');
  assert.equal((await s.post(onShard(1, 1))).status, 200, 'and serves again');
});
