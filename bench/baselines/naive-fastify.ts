/**
 * Naive Fastify: the same service as naive-uws, written the way most Node developers would.
 *
 *   PORT=3003 node --import tsx bench/baselines/naive-fastify.ts
 */
import Fastify from 'fastify';
import { MinuteCounts } from './common/minute-counts.js';

interface StatsQuery {
  window?: string;
  at?: string;
}

const counts = new MinuteCounts();
const app = Fastify({ logger: false });

app.post('/api/events', async (request) => ({ accepted: counts.addBody(request.body) }));
app.get<{ Querystring: StatsQuery }>('/api/stats/minutes', async (request) => counts.top('minute', request.query.at));
app.get<{ Querystring: StatsQuery }>('/api/stats', async (request) => counts.top(request.query.window, request.query.at));

const port = Number(process.env['PORT'] ?? 3000);
await app.listen({ host: '127.0.0.1', port });
console.log(`ready naive-fastify on 127.0.0.1:${port}`);
// No graceful close: keep-alive load connections would hold it open, and there is nothing to flush.
process.once('SIGTERM', () => process.exit(0));
