// Idempotency keys are checked against the counters a request counts, not its bytes: a retry that
// re-serialises is the same request, over either transport; other counters are a reused key.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawExchange } from '../helpers/raw-http.ts';
import { request, startServer, T0, type TestServer } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const ts = T0 - 60;
const counters = [
  { timestamp: ts, 'a.example': 2, 'b.example': 3 },
  { timestamp: ts - 60, 'a.example': 1 },
];

const postText = (s: TestServer, body: string, key: string, type = 'application/json') =>
  request(`${s.url}/api/events`, { method: 'POST', headers: { 'content-type': type, 'idempotency-key': key }, body });

for (const offload of ['never', 'always'] as const) {
  test(`a retry that re-serialises the same counters is recognised; other counters get 422, decoded on the pool: ${offload}`, async (t) => {
    const s = await startServer(t, { offload, shards: 3 });
    const first = await postText(s, JSON.stringify(counters), 'k1');
    assert.deepEqual([first.status, first.body], [200, { accepted: 2, counters: 3 }]);
    const retries: [string, string, string?][] = [
      ['more white space', JSON.stringify(counters, null, 2)],
      ['keys in another order', `[{"b.example":3,"timestamp":${ts},"a.example":2},{"a.example":1,"timestamp":"${ts - 60}"}]`],
      ['NDJSON', counters.map((c) => JSON.stringify(c)).join('\n'), 'application/x-ndjson'],
      ['counters in another order', JSON.stringify([counters[1], counters[0]])],
      ['escaped', `[{"timestamp":${ts},"\\u0061.example":2,"b.example":3},{"timestamp":${ts - 60},"a.example":1}]`],
    ];
    for (const [name, body, type] of retries) {
      const reply = await postText(s, body, 'k1', type);
      assert.deepEqual([reply.status, reply.body], [200, { accepted: 2, counters: 3 }], name);
    }
    const ws = await TestSocket.open(t, s.url);
    ws.send({ type: 'events', id: 1, key: 'k1', events: counters }, true);
    assert.deepEqual(await ws.body(), { type: 'ack', id: 1, accepted: 2, counters: 3 }, 'the same key and counters over WebSocket');

    for (const [name, other] of [
      ['another count', [{ ...counters[0], 'b.example': 4 }, counters[1]]],
      ['another domain', [{ timestamp: ts, 'a.example': 2, 'c.example': 3 }, counters[1]]],
      ['another minute', [counters[0], { ...counters[1], timestamp: ts - 120 }]],
      ['one counter less', [counters[0]]],
    ] as const) {
      const reply = await postText(s, JSON.stringify(other), 'k1');
      assert.deepEqual([reply.status, reply.body.error?.code], [422, 'TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED'], name);
    }
    const top = (await s.get(`/api/stats?window=hour&at=${T0}&open=true`)).body.top;
    assert.deepEqual(top, [{ domain: 'a.example', count: 3 }, { domain: 'b.example', count: 3 }], 'counted once');
  });
}

/** A POST with an Idempotency-Key header of raw bytes, on a socket of its own; the reply's status and JSON body. */
async function postWithKeyBytes(s: TestServer, key: Buffer): Promise<{ status: number; body: any }> {
  const body = JSON.stringify(counters[0]);
  const reply = await rawExchange(s.app.port, Buffer.concat([
    Buffer.from('POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nIdempotency-Key: '),
    key,
    Buffer.from(`\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
  ]));
  const [head, json] = reply.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), body: JSON.parse(json) };
}

test('an Idempotency-Key that is empty, too long or not ASCII gets a JSON 400 (or error frame) and counts nothing', async (t) => {
  const s = await startServer(t);
  for (const [name, key] of [
    ['empty', Buffer.alloc(0)],
    ['60,000 bytes', Buffer.alloc(60_000, 'k')],
    // uWS drops the bytes >= 0x80 of a header value before anyone sees it ("é-1" arrives as "-1",
    // which nothing can tell from a key "-1"); a key of nothing else arrives empty, and is refused.
    ['only non-ASCII bytes', Buffer.from('éè')],
  ] as const) {
    const reply = await postWithKeyBytes(s, key);
    assert.deepEqual([reply.status, reply.body.error.code], [400, 'TOPTALLY_ERR_INVALID_IDEMPOTENCY_KEY'], name);
  }
  const ws = await TestSocket.open(t, s.url);
  ws.send({ type: 'events', id: 1, key: 'é-retry-1', events: counters });
  assert.equal((await ws.body()).error.code, 'TOPTALLY_ERR_INVALID_IDEMPOTENCY_KEY', 'over WebSocket the key is seen whole');
  assert.deepEqual((await s.get('/api/stats?window=minute')).body.top, []);
});
