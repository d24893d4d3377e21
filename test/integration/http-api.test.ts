import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startServer, T0 } from '../helpers/server.ts';

const minuteStart = Math.floor(T0 / 60) * 60;
const lastMinute = minuteStart - 60;

test('a posted counter shows up in the last round minute and hour, in the seed format', async (t) => {
  const s = await startServer(t);
  const posted = await s.post({ timestamp: String(lastMinute + 5), A: 3, B: 4, C: 8 });
  assert.equal(posted.status, 200);
  assert.deepEqual(posted.body, { accepted: 1, counters: 3 });

  const expected = [
    { Domain: 'C', NumberOfRequests: 8 },
    { Domain: 'B', NumberOfRequests: 4 },
    { Domain: 'A', NumberOfRequests: 3 },
  ];
  for (const path of ['/api/stats/minutes', '/stats/minutes', '/stats/api/minutes']) {
    const reply = await s.get(path);
    assert.equal(reply.status, 200, path);
    assert.deepEqual(reply.body, expected, path);
  }
  // The hour holding T0 is still open, so the last round hour is the one before: empty.
  for (const path of ['/api/stats/hours', '/stats/hours', '/stats/api/hours']) {
    assert.deepEqual((await s.get(path)).body, [], path);
  }
  const nextHour = (Math.floor(T0 / 3600) + 1) * 3600;
  const future = await s.get(`/api/stats/hours?at=${nextHour}`);
  assert.equal(future.status, 400);
  assert.equal(future.body.error.code, 'TOPTALLY_ERR_INVALID_PARAMETER');
  assert.equal(future.body.error.parameter, 'at');
  s.clock.set(nextHour * 1000 + 1);
  assert.deepEqual((await s.get('/api/stats/hours')).body, expected);
});
