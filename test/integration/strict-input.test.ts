// Input that JSON.parse or msgpackr would silently change, refused instead with a clear code: bytes
// that are not UTF-8, numbers not written as digits, a key twice, control characters in a domain,
// MessagePack extension types. Over HTTP (in place and on the decode pool) and over WebSocket.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import { request, startServer, T0, type TestServer } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const ts = T0 - 60;

const postBytes = (s: TestServer, body: Buffer | string, type = 'application/json') =>
  request(`${s.url}/api/events`, { method: 'POST', headers: { 'content-type': type }, body });

/** Bodies refused over HTTP, with the code and the details the refusal must carry. */
const REFUSED: [string, Buffer | string, string, Record<string, unknown>][] = [
  ['invalid UTF-8 in a domain', Buffer.concat([Buffer.from(`{"timestamp":${ts},"caf`), Buffer.from([0xe9]), Buffer.from('.example":1}')]), 'TOPTALLY_ERR_INVALID_UTF8', {}],
  ['a lone continuation byte', Buffer.concat([Buffer.from(`[{"timestamp":${ts},"a`), Buffer.from([0x80]), Buffer.from('":1}]')]), 'TOPTALLY_ERR_INVALID_UTF8', {}],
  ['a count 1.0', `[{"timestamp":${ts},"a":1.0}]`, 'TOPTALLY_ERR_INVALID_COUNTER', { index: 0, key: 'a' }],
  ['a count 1e2', `[{"timestamp":${ts},"b":1},{"timestamp":${ts},"a":1e2}]`, 'TOPTALLY_ERR_INVALID_COUNTER', { index: 1, key: 'a' }],
  ['a count -0', `{"timestamp":${ts},"a":-0}`, 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'a' }],
  ['a timestamp with a fraction', `{"timestamp":${ts}.0,"a":1}`, 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'timestamp' }],
  ['a timestamp string with a leading zero', `{"timestamp":"0${ts}","a":1}`, 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'timestamp' }],
  ['a domain twice', `[{"timestamp":${ts},"a":1,"a":2}]`, 'TOPTALLY_ERR_INVALID_COUNTER', { index: 0, key: 'a' }],
  ['a domain twice, once escaped', `[{"timestamp":${ts},"a":1,"\\u0061":2}]`, 'TOPTALLY_ERR_INVALID_COUNTER', { index: 0, key: 'a' }],
  ['the timestamp twice', `{"timestamp":${ts},"a":1,"timestamp":${ts + 1}}`, 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'timestamp' }],
  ['a NUL in a domain', `{"timestamp":${ts},"a\\u0000b":1}`, 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'a\u0000b' }],
  ['a DEL in a domain', `{"timestamp":${ts},"a\u007fb":1}`, 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'a\u007fb' }],
  ['a C1 control in a domain', `{"timestamp":${ts},"a\u0085b":1}`, 'TOPTALLY_ERR_INVALID_COUNTER', { key: 'a\u0085b' }],
];

for (const offload of ['never', 'always'] as const) {
  test(`HTTP: input JSON.parse would change is refused with its code and counts nothing, decoded on the pool: ${offload}`, async (t) => {
    const s = await startServer(t, { offload });
    for (const [name, body, code, details] of REFUSED) {
      const reply = await postBytes(s, body);
      assert.equal(reply.status, 400, name);
      assert.equal(reply.body.error.code, code, name);
      for (const [key, value] of Object.entries(details)) assert.deepEqual(reply.body.error[key], value, `${name}: ${key}`);
    }
    const ndjson = await postBytes(s, `{"timestamp":${ts},"x":1}\n{"timestamp":${ts},"a":2.0}\n`, 'application/x-ndjson');
    assert.deepEqual([ndjson.status, ndjson.body.error.line, ndjson.body.error.key], [400, 2, 'a']);
    assert.deepEqual((await s.get('/api/stats?window=minute')).body.top, []);
    // What is still fine: digits, "0", a timestamp string without leading zeros, non-ASCII UTF-8.
    const fine = await postBytes(s, `[{"timestamp":"${ts}","café.example":0,"a":10},{"timestamp":${ts},"a":0}]`);
    assert.deepEqual(fine.body, { accepted: 2, counters: 3 });
  });
}

test('WebSocket: MessagePack that is not UTF-8, has a key twice or uses extension types is refused', async (t) => {
  const s = await startServer(t);
  const ws = await TestSocket.open(t, s.url);
  const packr = new Packr({ useRecords: false, structuredClone: true });
  const counter = (domain: Buffer): Buffer =>
    // {"type":"events","id":"x","events":[{"timestamp":ts,<domain>:1}]} with the domain's raw bytes.
    Buffer.concat([
      Buffer.from([0x83, 0xa4]), Buffer.from('type'), Buffer.from([0xa6]), Buffer.from('events'),
      Buffer.from([0xa2]), Buffer.from('id'), Buffer.from([0xa1]), Buffer.from('x'),
      Buffer.from([0xa6]), Buffer.from('events'), Buffer.from([0x91, 0x82, 0xa9]), Buffer.from('timestamp'),
      Buffer.from([0xce]), Buffer.from([ts >>> 24, (ts >>> 16) & 0xff, (ts >>> 8) & 0xff, ts & 0xff]),
      Buffer.from([0xa0 | domain.length]), domain, Buffer.from([0x01]),
    ]);
  ws.socket.send(counter(Buffer.from('ok.example')), { binary: true });
  assert.deepEqual(await ws.body(), { type: 'ack', id: 'x', accepted: 1, counters: 1 }, 'the hand-made frame is valid');
  ws.socket.send(counter(Buffer.from([0x63, 0x61, 0x66, 0xe9])), { binary: true });
  assert.equal((await ws.body()).error.code, 'TOPTALLY_ERR_INVALID_UTF8');
  // The same counter with the domain "a" twice: the map says 3 entries, the Map holds 2.
  const twice = Buffer.concat([counter(Buffer.from('a')), Buffer.from([0xa1, 0x61, 0x02])]);
  twice[twice.indexOf(0x82, 30)] = 0x83;
  ws.socket.send(twice, { binary: true });
  assert.equal((await ws.body()).error.code, 'TOPTALLY_ERR_MALFORMED_MSGPACK');
  for (const value of [new Set([1]), new Date(ts * 1000), new Uint8Array([1])]) {
    ws.socket.send(packr.pack({ type: 'events', id: 'y', events: [{ timestamp: ts, a: value }] }), { binary: true });
    const frame = await ws.body();
    assert.equal(frame.error.code, 'TOPTALLY_ERR_MALFORMED_MSGPACK', String(value));
    assert.match(frame.error.message, /extension types/);
  }
  assert.deepEqual((await s.get('/api/stats?window=minute')).body.top, [{ domain: 'ok.example', count: 1 }]);
});
