import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import { TopTallyError } from '../../src/errors.ts';
import { decodeFrame, encodeFrame } from '../../src/frontend/ws-codec.ts';
import { idOf, parseClientMessage } from '../../src/api/ws-protocol.ts';
import { validate } from '../../src/ingest/validate.ts';
import { viewPart } from '../../src/protocol/shard-part.ts';

const packr = new Packr({ useRecords: false });
const bounds = { oldest: 0, newest: 2 ** 40, retainHours: 24, maxFuture: 300 };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TopTallyError, String(err));
    return err.code;
  }
  assert.fail('expected an error');
}

test('MessagePack maps decode as Maps, so "__proto__" stays a key and no prototype changes', () => {
  const counter = JSON.parse('{"timestamp": 60, "__proto__": {"polluted": 1}, "constructor": 2}');
  const frame = decodeFrame(packr.pack({ type: 'events', id: 1, events: [counter] }), true);
  const message = parseClientMessage(frame, true);
  assert.equal(message.type, 'events');
  const [decoded] = (message as { events: unknown[] }).events as Map<string, unknown>[];
  assert.ok(decoded instanceof Map);
  assert.deepEqual([...decoded.keys()], ['timestamp', '__proto__', 'constructor']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  // The same validation as HTTP: the "__proto__" entry is refused for its value, by name.
  assert.throws(
    () => validate({ items: [decoded], where: (index) => ({ index }) }, bounds, 1),
    (err: TopTallyError) => err.code === 'TOPTALLY_ERR_NESTED_VALUE' && err.details.key === '__proto__',
  );
});

test('validation treats a MessagePack map like a JSON object', () => {
  const fromJson = validate({ items: [JSON.parse('{"timestamp": "120", "__proto__": 3, "b": 4}')], where: () => ({}) }, bounds, 1);
  const counter = new Map<unknown, unknown>([['timestamp', '120'], ['__proto__', 3], ['b', 4]]);
  const fromMap = validate({ items: [counter], where: () => ({}) }, bounds, 1);
  assert.deepEqual(fromMap, fromJson);
  const part = viewPart(fromMap.parts[0]!);
  assert.deepEqual([fromMap.entries, fromMap.minutes, Buffer.from(part.names).toString()], [2, [2], '__proto__b']);
  const numericKey = new Map<unknown, unknown>([['timestamp', 60], [7, 1]]);
  assert.throws(
    () => validate({ items: [numericKey], where: (index) => ({ index }) }, bounds, 1),
    (err: TopTallyError) =>
      err.code === 'TOPTALLY_ERR_INVALID_COUNTER' && err.message === 'A domain must be a string, not number 7' && err.details.index === 0,
  );
});

test('64-bit MessagePack integers decode as numbers; past 2^53 validation refuses them', () => {
  // {"timestamp": uint64 60, "a": uint64 5, "b": uint64 2^53 + 2}
  const bytes = Buffer.concat([
    Buffer.from([0x83, 0xa9, ...Buffer.from('timestamp'), 0xcf, 0, 0, 0, 0, 0, 0, 0, 60]),
    Buffer.from([0xa1, 0x61, 0xcf, 0, 0, 0, 0, 0, 0, 0, 5]),
    Buffer.from([0xa1, 0x62, 0xcf, 0x00, 0x20, 0, 0, 0, 0, 0, 2]),
  ]);
  const counter = decodeFrame(bytes, true) as Map<string, unknown>;
  assert.equal(counter.get('a'), 5);
  assert.throws(
    () => validate({ items: [counter], where: () => ({}) }, bounds, 1),
    (err: TopTallyError) => err.code === 'TOPTALLY_ERR_INVALID_COUNTER' && err.details.key === 'b',
  );
});

test('frames that do not parse are errors naming the format; msgpackr references are refused', () => {
  assert.equal(code(() => decodeFrame(Buffer.from('{"type":'), false)), 'TOPTALLY_ERR_MALFORMED_JSON');
  assert.equal(code(() => decodeFrame(Buffer.from([0x92, 0x01]), true)), 'TOPTALLY_ERR_MALFORMED_MSGPACK');
  // With structured clone, a repeated object is sent once and referenced: a small frame could expand.
  const shared = { timestamp: 60, a: 1 };
  const cloning = new Packr({ useRecords: false, structuredClone: true });
  const frame = cloning.pack({ type: 'events', id: 1, events: [shared, shared] });
  assert.throws(
    () => decodeFrame(frame, true),
    (err: TopTallyError) => err.code === 'TOPTALLY_ERR_MALFORMED_MSGPACK' && /extension types/.test(err.message),
  );
});

test('msgpackr records are refused: they are an extension type', () => {
  const records = new Packr({ useRecords: true });
  assert.throws(
    () => decodeFrame(records.pack({ type: 'events', id: 1, events: [{ timestamp: 60, a: 1 }] }), true),
    (err: TopTallyError) => err.code === 'TOPTALLY_ERR_MALFORMED_MSGPACK' && /extension types/.test(err.message),
  );
});

test('messages are checked strictly: type, fields, id, window, limit, live', () => {
  const parse = (value: unknown) => parseClientMessage(value, false);
  assert.deepEqual(parse({ type: 'subscribe', window: 'hour' }), { type: 'subscribe', window: 'hour', limit: 10, live: false });
  assert.deepEqual(parse({ type: 'subscribe', window: 'minute', limit: 1000, live: true }), {
    type: 'subscribe',
    window: 'minute',
    limit: 1000,
    live: true,
  });
  assert.deepEqual(parse({ type: 'unsubscribe' }), { type: 'unsubscribe', window: undefined });
  assert.deepEqual(parse({ type: 'events', id: 'a', events: [] }), { type: 'events', id: 'a', events: [] });

  const field = (value: unknown): unknown => {
    try {
      parse(value);
    } catch (err) {
      assert.equal((err as TopTallyError).code, 'TOPTALLY_ERR_INVALID_MESSAGE');
      return (err as TopTallyError).details.field;
    }
    assert.fail('expected an error');
  };
  assert.equal(field([1]), undefined);
  assert.equal(field({ events: [] }), 'type');
  assert.equal(field({ type: 'events', id: 1.5, events: [] }), 'id');
  assert.equal(field({ type: 'events', id: 'x'.repeat(129), events: [] }), 'id');
  assert.equal(field({ type: 'events', id: 1, events: {} }), 'events');
  assert.equal(field(JSON.parse('{"type": "events", "id": 1, "events": [], "__proto__": 1}')), '__proto__');
  assert.equal(field({ type: 'subscribe' }), 'window');
  assert.equal(field({ type: 'subscribe', window: 'minute', limit: 0 }), 'limit');
  assert.equal(field({ type: 'subscribe', window: 'minute', live: 'yes' }), 'live');
  assert.equal(field({ type: 'unsubscribe', window: 'day' }), 'window');

  assert.equal(idOf({ type: 'nope', id: 4 }), 4);
  assert.equal(idOf(new Map([['id', 'x']])), 'x');
  assert.equal(idOf({ id: {} }), undefined);
  assert.equal(idOf(undefined), undefined);
});

test('replies go out in the frame type the client used', () => {
  const ack = { type: 'ack', id: 1, accepted: 2, counters: 3 };
  assert.equal(encodeFrame(ack, false), JSON.stringify(ack));
  assert.deepEqual(decodeFrame(encodeFrame(ack, true) as Uint8Array, true), new Map(Object.entries(ack)));
});
