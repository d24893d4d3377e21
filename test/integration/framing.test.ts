// HTTP/1.1 framing, strictly (RFC 9112): a request whose body's end is in doubt is refused with 400
// before its body is read, so no proxy in front can be made to see a different request than we do.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawExchange } from '../helpers/raw-http.ts';
import { startServer, T0, type TestServer } from '../helpers/server.ts';

const body = JSON.stringify({ timestamp: T0 - 60, 'smuggled.example': 1 });
const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
const head = 'POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n';

const exchange = (s: TestServer, text: string): Promise<string> => rawExchange(s.app.port, text);

const AMBIGUOUS: [string, string, RegExp][] = [
  ['two different Content-Length', `Content-Length: ${body.length}\r\nContent-Length: 5\r\n\r\n${body}`, /more than one Content-Length/],
  ['two equal Content-Length', `Content-Length: ${body.length}\r\nContent-Length: ${body.length}\r\n\r\n${body}`, /more than one Content-Length/],
  ['Transfer-Encoding: xchunked', `Transfer-Encoding: xchunked\r\n\r\n${chunked}`, /Transfer-Encoding \\"xchunked\\" is not supported/],
  ['Transfer-Encoding: gzip, chunked', `Transfer-Encoding: gzip, chunked\r\n\r\n${chunked}`, /Transfer-Encoding \\"gzip, chunked\\"/],
  ['chunked, then a second Transfer-Encoding', `Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n${chunked}`, /more than one Transfer-Encoding/],
];

/**
 * Requests uWS's parser drops before any handler sees them, so no status can be given: the
 * connection closes with no reply, and nothing of them is counted. (HTTP/1.0 and a control byte in a
 * header value are dropped too, but uWS holds those connections until its 10 s timeout first.)
 */
const DROPPED_BY_UWS: [string, string][] = [
  ['Content-Length and Transfer-Encoding', `${head}Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`],
  ['HTTP/1.1 without Host', `POST /api/events HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`],
];

test('ambiguous framing is refused with 400 TOPTALLY_ERR_BAD_FRAMING before the body is read, and nothing is counted', async (t) => {
  const s = await startServer(t);
  for (const [name, rest, message] of AMBIGUOUS) {
    const reply = await exchange(s, head + rest);
    assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/, name);
    assert.match(reply, /"code":"TOPTALLY_ERR_BAD_FRAMING"/, name);
    assert.match(reply, message, name);
    assert.equal(reply.match(/HTTP\/1\.1/g)?.length, 1, `${name}: one reply, nothing read as a next request`);
  }
  assert.deepEqual((await s.get('/api/stats?window=minute')).body.top, []);
  // Plain chunked and plain Content-Length are fine.
  assert.match(await exchange(s, head + `Transfer-Encoding: chunked\r\n\r\n${chunked}`), /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(await exchange(s, head + `Content-Length: ${body.length}\r\n\r\n${body}`), /^HTTP\/1\.1 200 OK\r\n/);
  assert.deepEqual((await s.get('/api/stats?window=minute')).body.top, [{ domain: 'smuggled.example', count: 2 }]);
});

test('requests uWS drops unanswered (Content-Length with Transfer-Encoding, no Host) change nothing', async (t) => {
  const s = await startServer(t);
  for (const [name, text] of DROPPED_BY_UWS) assert.equal(await exchange(s, text), '', name);
  assert.deepEqual((await s.get('/api/stats?window=minute')).body.top, []);
});
