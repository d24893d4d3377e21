// Request bodies from clients that do not play fair: sizes that meet the buffer pool's edges, bodies
// decoded on the pool, and a request path that fails where nobody expected it to.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startServer, T0 } from '../helpers/server.ts';

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
