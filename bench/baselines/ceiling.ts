/**
 * Ceiling: what uWS costs with no work at all. Reads the whole body, parses nothing, replies `{}`.
 * No service built on this stack can beat this row; the gap to it is the price of the real work.
 *
 *   PORT=3001 node --import tsx bench/baselines/ceiling.ts
 */
import uWS from '@trufflesuite/uws-js-unofficial';
import { listen, readBody, reply } from './common/uws.js';

const app = uWS.App();
app.post('/api/events', (res) => {
  readBody(res, () => reply(res, '200 OK', '{}'));
});
listen(app, 'ceiling');
