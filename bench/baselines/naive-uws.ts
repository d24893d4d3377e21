/**
 * Naive uWS: one thread, JSON.parse, a Map per minute. The straightforward service on the fast stack.
 *
 *   PORT=3002 node --import tsx bench/baselines/naive-uws.ts
 */
import uWS from '@trufflesuite/uws-js-unofficial';
import { MinuteCounts, nowSeconds } from './common/minute-counts.js';
import { listen, readBody, reply } from './common/uws.js';

const counts = new MinuteCounts();
const app = uWS.App();

app.post('/api/events', (res) => {
  readBody(res, (body) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      reply(res, '400 Bad Request', '{"error":"invalid JSON"}');
      return;
    }
    reply(res, '200 OK', `{"accepted":${counts.addBody(parsed)}}`);
  });
});

app.get('/api/stats/minutes', (res) => {
  res.writeHeader('content-type', 'application/json').end(JSON.stringify(counts.topOfLastMinute(nowSeconds())));
});

listen(app, 'naive-uws');
