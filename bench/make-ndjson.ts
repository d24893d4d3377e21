/**
 * Seeded NDJSON counters for `toptally send`: COUNT lines of `{"timestamp": now, <5 Zipf domains>}`.
 *
 *   node --import tsx bench/make-ndjson.ts 1000000 > /tmp/counters.ndjson
 *
 * Optional second and third arguments: the Zipf universe (default 10000) and the seed (default 42).
 */
import { makeCounter, shapes } from './lib/data.js';
import { mulberry32, Zipf } from './lib/prng.js';

const count = Number(process.argv[2] ?? 100_000);
const universe = Number(process.argv[3] ?? 10_000);
const random = mulberry32(Number(process.argv[4] ?? 42));
const zipf = new Zipf(universe);
const now = Math.floor(Date.now() / 1000);

let chunk = '';
for (let i = 0; i < count; i++) {
  chunk += JSON.stringify(makeCounter(random, zipf, now, shapes.WS.domainsPerCounter)) + '\n';
  if (chunk.length > 1 << 20) {
    if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    chunk = '';
  }
}
process.stdout.write(chunk);
