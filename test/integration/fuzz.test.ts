// Property-based: random, and randomly mutated, bodies and WebSocket frames thrown at a real server.
// Whatever arrives, the server answers with a known code (its documented status), a refused input
// changes no window, and an accepted one is counted exactly: every window it touched is compared with
// a model fed only by what the server acknowledged. The inputs come from a fixed seed, so a run's
// share of valid inputs (asserted below) is the same every time; FUZZ_SEED=<n> explores others, and
// fast-check prints the seed and path of a failing run.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { ERRORS } from '../../src/errors.ts';
import { oldestRetained } from '../../src/retention.ts';
import { mutate, type Mutation } from '../helpers/mutate.ts';
import { request, startServer, T0, type TestServer } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const RUNS = 250;
const SEED = Number(process.env.FUZZ_SEED ?? 20261207);
const LIMITS = { maxCounters: 6, maxDomains: 5 };

// --- inputs ---------------------------------------------------------------------------------------

const NAMES = ['a.example', 'b.example', 'A', 'a', '__proto__', 'constructor', 'toString', 'é.example', '😀.io', 'x'.repeat(255)];
const name = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 10 }) });
const timestamp = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: T0 - 2 * 3600, max: T0 + 300 }) },
  { weight: 1, arbitrary: fc.integer({ min: T0 - 2 * 3600, max: T0 }).map(String) },
  { weight: 1, arbitrary: fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), fc.constantFrom(null, -1, 1.5, '1e9', 'soon')) },
);
const count = fc.oneof(
  { weight: 30, arbitrary: fc.nat(1000) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(-1, 1.5, 2 ** 53, '3', null, true, [1], { n: 1 }) },
);
const counter = fc
  .tuple(timestamp, fc.array(fc.tuple(name, count), { maxLength: 6 }))
  .map(([ts, entries]) => ({ timestamp: ts, ...Object.fromEntries(entries) }));
const counters = fc.array(counter, { maxLength: 7 });

const TOKENS = ['{', '}', '[', ']', ',', '"', ':', '\n', '0', '-', '9e9', 'null', '{"a":1}', '[[[[', '\\u0000', '\\ud800', '\u2028', '\ufeff'];
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.constantFrom(...TOKENS).map((t) => Buffer.from(t)) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

/** Valid, mutated or random bytes; mutations of valid input reach far deeper than random bytes. */
function fuzzed(valid: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 4, arbitrary: valid },
    { weight: 4, arbitrary: fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([b, ms]) => mutate(b, ms)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')) },
  );
}

const JSON_TYPES = ['application/json', 'text/plain', ''];
const httpInput = fc.oneof(
  fc.record({ body: fuzzed(counters.map((c) => Buffer.from(JSON.stringify(c)))), type: fc.constantFrom(...JSON_TYPES) }),
  fc.record({ body: fuzzed(counter.map((c) => Buffer.from(JSON.stringify(c)))), type: fc.constant('application/json') }),
  fc.record({
    body: fuzzed(counters.map((c) => Buffer.from(c.map((x) => JSON.stringify(x)).join('\n')))),
    type: fc.constantFrom('application/x-ndjson', 'application/x-ndjson; charset=utf-8', 'application/xml'),
  }),
);

const packr = new Packr({ useRecords: false });
const events = fc.record({ type: fc.constant('events'), id: fc.nat(), events: counters });
const frameInput = fc.oneof(
  fc.record({ binary: fc.constant(false), data: fuzzed(events.map((m) => Buffer.from(JSON.stringify(m)))) }),
  fc.record({ binary: fc.constant(true), data: fuzzed(events.map((m) => Buffer.from(packr.pack(m)))) }),
  fc.record({ binary: fc.constant(true), data: fc.jsonValue().map((v) => Buffer.from(packr.pack(v))) }),
);

// --- the reference: what an accepted input must add --------------------------------------------

/** Counts by window: "minute:<index>" or "hour:<index>" -> domain -> count. */
type Model = Map<string, Map<string, number>>;

/** Adds an acknowledged input's counters; returns how many objects and entries it held, and its windows. */
function add(model: Model, items: unknown[]): { accepted: number; counters: number; windows: Set<string> } {
  const windows = new Set<string>();
  let entries = 0;
  for (const item of items) {
    const fields = item instanceof Map ? (item as Map<string, unknown>) : new Map(Object.entries(item as object));
    const ts = Number(fields.get('timestamp'));
    for (const [domain, n] of fields) {
      if (domain === 'timestamp') continue;
      entries++;
      if ((n as number) === 0) continue;
      for (const window of [`minute:${Math.floor(ts / 60)}`, `hour:${Math.floor(ts / 3600)}`]) {
        let counts = model.get(window);
        if (!counts) model.set(window, (counts = new Map()));
        counts.set(domain, (counts.get(domain) ?? 0) + (n as number));
        windows.add(window);
      }
    }
  }
  return { accepted: items.length, counters: entries, windows };
}

/** The window's answer as the server must give it, and what the server gives. */
async function compare(s: TestServer, window: string, counts: Map<string, number>): Promise<void> {
  const [kind, index] = window.split(':') as ['minute' | 'hour', string];
  const size = kind === 'minute' ? 60 : 3600;
  const now = Math.floor(s.clock.now() / 1000);
  const retention = { minutes: s.config.retainMinutes, hours: s.config.retainHours };
  if (Number(index) * size > now || Number(index) < oldestRetained(retention, kind, now)) return; // not readable now
  const reply = await s.get(`/api/stats?window=${kind}&open=true&at=${Number(index) * size}&limit=1000`);
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  const ranked = [...counts].map(([domain, count]) => ({ domain, count }));
  ranked.sort((a, b) => b.count - a.count || (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
  const total = ranked.reduce((sum, e) => sum + e.count, 0);
  assert.deepEqual(reply.body.top, ranked.slice(0, 1000), window);
  assert.equal(reply.body.domains, ranked.length, window);
  // Past 2^53 a sum depends on the order of the additions; the server's order is its own.
  if (total <= Number.MAX_SAFE_INTEGER) assert.equal(reply.body.total, total, window);
}

/** A refusal names a known code, with that code's status. */
function assertKnownError(status: number, body: any, input: string): void {
  const code = body?.error?.code as keyof typeof ERRORS;
  assert.ok(code in ERRORS, `${input}: ${JSON.stringify(body)}`);
  assert.equal(status, ERRORS[code].status, `${input}: ${code}`);
  assert.notEqual(code, 'TOPTALLY_ERR_INTERNAL', `${input}: ${body.error.message}`);
}

const utf8 = new TextDecoder();

/** The body as the server reads it: the same decoding rules, applied here to count what it holds. */
function itemsOf(body: Buffer, type: string): unknown[] {
  const text = utf8.decode(body);
  if (type.startsWith('application/x-ndjson')) {
    return text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line));
  }
  const value = JSON.parse(text);
  return Array.isArray(value) ? value : [value];
}

async function finalCheck(s: TestServer, model: Model): Promise<void> {
  // Every window the fuzz reached, once all of them are in the past.
  s.clock.advance(7 * 60 * 1000);
  for (const [window, counts] of model) await compare(s, window, counts);
  assert.deepEqual((await s.get('/healthz')).body, { ok: true });
}

// --- the properties -----------------------------------------------------------------------------

test('HTTP: random and mutated bodies never crash the server; refused ones change nothing, accepted ones count exactly', async (t) => {
  const s = await startServer(t, LIMITS);
  const model: Model = new Map();
  let accepted = 0;
  await fc.assert(
    fc.asyncProperty(httpInput, async ({ body, type }) => {
      const reply = await request(`${s.url}/api/events`, { method: 'POST', headers: { 'content-type': type }, body });
      const input = `${type} ${JSON.stringify(body.toString('latin1'))}`;
      if (reply.status !== 200) return assertKnownError(reply.status, reply.body, input);
      accepted++;
      const added = add(model, itemsOf(body, type));
      assert.deepEqual(reply.body, { accepted: added.accepted, counters: added.counters }, input);
      for (const window of added.windows) await compare(s, window, model.get(window)!);
    }),
    { numRuns: RUNS, seed: SEED },
  );
  assert.ok(accepted > RUNS / 10, `only ${accepted} of ${RUNS} bodies were accepted (seed ${SEED})`);
  await finalCheck(s, model);
});

test('WebSocket: random and mutated frames never crash the server; refused ones change nothing, acked ones count exactly', async (t) => {
  const s = await startServer(t, LIMITS);
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: 'number' });
  const model: Model = new Map();
  let ws = await TestSocket.open(t, s.url);
  let acked = 0;
  await fc.assert(
    fc.asyncProperty(frameInput, async ({ binary, data }) => {
      const input = `${binary ? 'binary' : 'text'} ${data.toString('hex')}`;
      ws.sendRaw(data, binary);
      let reply;
      try {
        reply = await ws.body();
      } catch (err) {
        // A text frame must be UTF-8 (RFC 6455 section 8.1): uWS fails the connection otherwise,
        // cutting it without a close frame (the client sees 1006). Nothing else may close it.
        const closed = await ws.closed;
        ws = await TestSocket.open(t, s.url);
        assert.ok(!binary && closed.code === 1006, `${input}: ${(err as Error).message}`);
        assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(data), input);
        return;
      }
      if (reply.type === 'top' || reply.type === 'unsubscribed') {
        // The mutation made a subscription: start afresh, so no push is taken for a reply.
        ws.socket.close();
        ws = await TestSocket.open(t, s.url);
        return;
      }
      if (reply.type === 'error') return assertKnownError(ERRORS[reply.error.code as keyof typeof ERRORS]?.status, { error: reply.error }, input);
      assert.equal(reply.type, 'ack', input);
      acked++;
      const message = binary ? unpackr.unpack(data) : JSON.parse(data.toString('utf8'));
      const items = (message instanceof Map ? message.get('events') : message.events) as unknown[];
      const added = add(model, items);
      assert.deepEqual([reply.accepted, reply.counters], [added.accepted, added.counters], input);
      for (const window of added.windows) await compare(s, window, model.get(window)!);
    }),
    { numRuns: RUNS, seed: SEED },
  );
  assert.ok(acked > RUNS / 10, `only ${acked} of ${RUNS} frames were acked (seed ${SEED})`);
  await finalCheck(s, model);
});
