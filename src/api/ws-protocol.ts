// The WebSocket protocol (docs/websocket.md): what clients send, what the server answers and pushes.
// Decoded frames are checked strictly, like query parameters: an unknown type or field is an error.

import { TopTallyError, type ErrorBody } from '../errors.ts';
import type { RankedDomain } from '../query/merge.ts';
import type { WindowKind } from '../window.ts';
import { DEFAULT_LIMIT, MAX_LIMIT } from './params.ts';

export const WS_PATH = '/ws';

/** A client's name for one events message, echoed in its ack or error. */
export type MessageId = number | string;

export type ClientMessage =
  /** `key`: an idempotency key, as the HTTP Idempotency-Key header. */
  | { type: 'events'; id: MessageId; events: unknown[]; key?: string }
  | { type: 'subscribe'; window: WindowKind; limit: number; live: boolean }
  | { type: 'unsubscribe'; window: WindowKind | undefined };

export interface TopFrame {
  type: 'top';
  window: WindowKind;
  from: number;
  to: number;
  top: RankedDomain[];
  /** True for a closed window, false for the running top of the open one. */
  final: boolean;
}

export type ServerMessage =
  | { type: 'ack'; id: MessageId; accepted: number; counters: number }
  | { type: 'error'; id?: MessageId; error: ErrorBody }
  | { type: 'unsubscribed'; windows: WindowKind[] }
  | TopFrame;

const FIELDS: Record<ClientMessage['type'], readonly string[]> = {
  events: ['type', 'id', 'events', 'key'],
  subscribe: ['type', 'window', 'limit', 'live'],
  unsubscribe: ['type', 'window'],
};

const MAX_ID_LENGTH = 128;

function invalid(message: string, field?: string): never {
  throw new TopTallyError('TOPTALLY_ERR_INVALID_MESSAGE', message, field === undefined ? {} : { field });
}

/** A frame's fields, whether JSON gave an object or MessagePack a Map. */
function fieldsOf(value: unknown): Map<unknown, unknown> | undefined {
  if (value instanceof Map) return value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return new Map(Object.entries(value));
}

function isId(value: unknown): value is MessageId {
  return (
    (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) ||
    (typeof value === 'string' && value.length <= MAX_ID_LENGTH)
  );
}

/** The message's id when it has a usable one, so even a refused message's error can name it. */
export function idOf(value: unknown): MessageId | undefined {
  const id = fieldsOf(value)?.get('id');
  return isId(id) ? id : undefined;
}

function windowOf(value: unknown): WindowKind {
  if (value !== 'minute' && value !== 'hour') {
    invalid(`"window" must be "minute" or "hour", not ${JSON.stringify(value) ?? String(value)}`, 'window');
  }
  return value;
}

export function parseClientMessage(value: unknown, binary: boolean): ClientMessage {
  const fields = fieldsOf(value);
  if (!fields) invalid('A message must be an object with a "type"');
  const type = fields.get('type');
  if (type !== 'events' && type !== 'subscribe' && type !== 'unsubscribe') {
    invalid(`Unknown message type ${JSON.stringify(type) ?? String(type)}; known: events, subscribe, unsubscribe`, 'type');
  }
  const known = FIELDS[type];
  for (const key of fields.keys()) {
    if (typeof key !== 'string' || !known.includes(key)) {
      invalid(`Unknown field ${JSON.stringify(key) ?? String(key)} in a ${type} message; known: ${known.join(', ')}`, String(key));
    }
  }
  switch (type) {
    case 'events': {
      const id = fields.get('id');
      if (!isId(id)) invalid(`"id" must be a non-negative integer or a string of at most ${MAX_ID_LENGTH} characters`, 'id');
      const events = fields.get('events');
      if (!Array.isArray(events)) invalid('"events" must be an array of counters', 'events');
      if (binary) refuseRecords(events);
      const key = fields.get('key');
      if (key === undefined) return { type, id, events };
      if (typeof key !== 'string') invalid('"key" must be a string', 'key');
      return { type, id, events, key };
    }
    case 'subscribe': {
      const limit = fields.get('limit') ?? DEFAULT_LIMIT;
      if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
        invalid(`"limit" must be a whole number from 1 to ${MAX_LIMIT}`, 'limit');
      }
      const live = fields.get('live') ?? false;
      if (typeof live !== 'boolean') invalid('"live" must be true or false', 'live');
      return { type, window: windowOf(fields.get('window')), limit, live };
    }
    case 'unsubscribe': {
      const window = fields.get('window');
      return { type, window: window === undefined ? undefined : windowOf(window) };
    }
  }
}

/**
 * MessagePack counters must be maps. A plain object here came from a msgpackr record, which renames a
 * "__proto__" key on the way in; refusing it keeps every domain exactly as sent.
 */
function refuseRecords(events: unknown[]): void {
  for (let index = 0; index < events.length; index++) {
    const event = events[index];
    if (typeof event === 'object' && event !== null && Object.getPrototypeOf(event) === Object.prototype) {
      throw new TopTallyError(
        'TOPTALLY_ERR_INVALID_COUNTER',
        'A MessagePack counter must be a map; msgpackr records are not accepted (encode with useRecords: false)',
        { index },
      );
    }
  }
}
