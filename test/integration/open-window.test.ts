import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startServer, T0 } from '../helpers/server.ts';

const minuteStart = Math.floor(T0 / 60) * 60;

test('open=true answers the window still open at `at` (default now) with its running counts', async (t) => {
  const s = await startServer(t);
  assert.equal((await s.post({ timestamp: T0 - 1, A: 2, B: 5 })).status, 200);
  assert.equal((await s.post({ timestamp: minuteStart - 30, C: 9 })).status, 200);

  const open = await s.get('/api/stats?window=minute&open=true');
  assert.equal(open.status, 200);
  assert.deepEqual(open.body, {
    window: 'minute',
    from: minuteStart,
    to: minuteStart + 60,
    total: 7,
    domains: 2,
    top: [
      { domain: 'B', count: 5 },
      { domain: 'A', count: 2 },
    ],
  });
  const earlier = await s.get(`/api/stats?window=minute&open=true&at=${minuteStart - 1}`);
  assert.equal(earlier.body.from, minuteStart - 60);
  assert.deepEqual(earlier.body.top, [{ domain: 'C', count: 9 }]);
  const last = await s.get('/api/stats?window=minute&open=false');
  assert.deepEqual(last.body.top, [{ domain: 'C', count: 9 }]);

  const bad = await s.get('/api/stats?window=minute&open=yes');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'TOPTALLY_ERR_INVALID_PARAMETER');
  assert.equal(bad.body.error.parameter, 'open');
  const seed = await s.get('/api/stats/minutes?open=true');
  assert.equal(seed.status, 400);
  assert.equal(seed.body.error.parameter, 'open');
});
