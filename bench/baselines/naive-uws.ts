/**
 * Naive uWS: one thread, JSON.parse, a Map per minute. The straightforward service on the fast stack.
 *
 *   PORT=3002 node --import tsx bench/baselines/naive-uws.ts
 */
import uWS from '@trufflesuite/uws-js-unofficial';
import { MinuteCounts } from './common/minute-counts.js';
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

// `?at=` (Unix seconds) names the instant whose last round window is wanted, as in toptally.
app.get('/api/stats/minutes', (res, req) => {
  res.writeHeader('content-type', 'application/json').end(JSON.stringify(counts.top('minute', req.getQuery('at'))));
});
app.get('/api/stats', (res, req) => {
  res.writeHeader('content-type', 'application/json').end(JSON.stringify(counts.top(req.getQuery('window'), req.getQuery('at'))));
});

listen(app, 'naive-uws');
