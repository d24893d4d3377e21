// Request bodies from clients that do not play fair: sizes that meet the buffer pool's edges, bodies
// decoded on the pool, and a request path that fails where nobody expected it to.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { startServer, T0, type TestServer } from '../helpers/server.ts';

const ts = T0 - 60;

/** A JSON body of exactly `bytes` bytes: one counter, padded with spaces. */
function bodyOf(bytes: number, domain = 'a.example'): string {
  const json = JSON.stringify([{ timestamp: ts, [domain]: 1 }]);
  return json.slice(0, -1) + ' '.repeat(bytes - json.length) + ']';
}

for (const offload of ['always', 'never', 'auto'] as const) {
  test(`bodies at the edges of the reused buffers are counted, decoded on the pool: ${offload}`, { timeout: 30_000 }, async (t) => {
    const s = await startServer(t, { offload, offloadBytes: 64 * 1024 });
    const sizes = [4095, 4096, 65_535, 65_536, 65_537, 200_000];
    // Twice each, so a buffer given back after its first use is taken again.
    for (const bytes of [...sizes, ...sizes]) {
      const body = bodyOf(bytes);
      assert.equal(Buffer.byteLength(body), bytes);
      const reply = await s.post(body);
      assert.deepEqual([reply.status, reply.body], [200, { accepted: 1, counters: 1 }], `${bytes} bytes`);
    }
    const top = (await s.get('/api/stats?window=minute')).body.top;
    assert.deepEqual(top, [{ domain: 'a.example', count: 2 * sizes.length }]);
  });
}

/** A POST on its own socket that declares `declared` bytes and sends the first `sent` of them. */
async function partialPost(s: TestServer, declared: number, sent: number): Promise<net.Socket> {
  const socket = net.connect(s.app.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`);
  socket.write(Buffer.alloc(sent, 0x20));
  return socket;
}

async function bodyBytes(s: TestServer): Promise<number> {
  const text = (await s.get('/metrics')).body as string;
  const match = /^toptally_body_bytes (\d+)$/m.exec(text);
  assert.ok(match, 'toptally_body_bytes is exported');
  return Number(match[1]);
}

/** Polls the server until `check` holds; the wait is bounded. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await delay(10);
  }
  assert.fail(`never: ${what}`);
}

test('a declared Content-Length costs nothing until its bytes arrive, and the memory is given back', async (t) => {
  const s = await startServer(t);
  const before = process.memoryUsage().arrayBuffers;
  const sockets = await Promise.all(Array.from({ length: 20 }, () => partialPost(s, 8 * 2 ** 20, 100)));
  t.after(() => sockets.forEach((socket) => socket.destroy()));
  await until('every body has its first bytes', async () => (await bodyBytes(s)) >= 20 * 100);
  const held = await bodyBytes(s);
  assert.ok(held <= 20 * 16 * 1024, `20 bodies of 100 bytes hold ${held} bytes`);
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 40 * 2 ** 20, `20 bodies declaring 8 MiB took ${grown} bytes of ArrayBuffers`);
  sockets.forEach((socket) => socket.destroy());
  await until('the bodies are given back', async () => (await bodyBytes(s)) === 0);
});

test('past --max-inflight-bytes a body gets 503 with Retry-After, and is taken once the others are done', async (t) => {
  const s = await startServer(t, { maxInflightBytes: 2 ** 20 });
  const holder = await partialPost(s, 900 * 1024, 700 * 1024);
  t.after(() => holder.destroy());
  await until('the first body has arrived', async () => (await bodyBytes(s)) >= 700 * 1024);
  const body = bodyOf(600 * 1024);
  const refused = await s.post(body);
  assert.equal(refused.status, 503);
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal(refused.body.error.code, 'TOPTALLY_ERR_BODIES_OVER_BUDGET');
  assert.equal(refused.body.error.limit, 2 ** 20);
  holder.destroy();
  await until('the first body is given back', async () => (await bodyBytes(s)) === 0);
  assert.deepEqual((await s.post(body)).body, { accepted: 1, counters: 1 });
  assert.deepEqual((await s.get('/api/stats?window=minute')).body.top, [{ domain: 'a.example', count: 1 }]);
});

test('a body arriving slower than uWS allows gets 408 TOPTALLY_ERR_BODY_TIMEOUT, not a silent close', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const socket = await partialPost(s, 100, 10);
  t.after(() => socket.destroy());
  const replies: Buffer[] = [];
  socket.on('data', (chunk) => replies.push(chunk));
  await once(socket, 'close');
  const reply = Buffer.concat(replies).toString();
  assert.match(reply, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.match(reply, /"code":"TOPTALLY_ERR_BODY_TIMEOUT"/);
  assert.match(reply, /under 16384 bytes in 7000 ms; 10 bytes had arrived/);
});
