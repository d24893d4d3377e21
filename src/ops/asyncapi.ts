// The AsyncAPI 3.1 description of the WebSocket protocol at /ws (docs/websocket.md), served at
// /asyncapi.json beside the OpenAPI document, whose body schemas it shares. Operations are from the
// server's side: it receives events, subscribe and unsubscribe, and sends the answers and pushes.

import { MAX_LIMIT } from '../api/params.ts';
import { WS_PATH } from '../api/ws-protocol.ts';
import { version } from '../version.ts';
import { SCHEMAS } from './openapi.ts';

type Json = { [key: string]: unknown };

const schema = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const message = (name: string): Json => ({ $ref: `#/components/messages/${name}` });
const channelMessage = (name: string): Json => ({ $ref: `#/channels/ws/messages/${name}` });
const CHANNEL = { $ref: '#/channels/ws' };
const id: Json = {
  oneOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', maxLength: 128 },
  ],
  description: "The client's name for an events message, echoed in its answer",
};
const windowKind: Json = { type: 'string', enum: ['minute', 'hour'] };

const frame = (type: string, required: string[], properties: Json, description: string): Json => ({
  type: 'object',
  description,
  required: ['type', ...required],
  additionalProperties: false,
  properties: { type: { type: 'string', const: type }, ...properties },
});

const WS_SCHEMAS: Json = {
  EventsMessage: frame(
    'events',
    ['id', 'events'],
    {
      id,
      events: { type: 'array', items: schema('Counter'), description: 'All or nothing, as POST /api/events' },
      key: { type: 'string', description: 'An idempotency key: a retry with the same key within 10 minutes gets the first ack and counts once' },
    },
    'Counters to add; answered with an ack or an error with the same id',
  ),
  SubscribeMessage: frame(
    'subscribe',
    ['window'],
    {
      window: windowKind,
      limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 10 },
      live: { type: 'boolean', default: false, description: "Also push the open window's running top, at most once per --live-interval" },
    },
    "Follow a window's top; answered at once with a top frame, then pushes as windows close",
  ),
  UnsubscribeMessage: frame('unsubscribe', [], { window: windowKind }, 'Stop the pushes of one window, or of every window without `window`'),
  AckMessage: frame(
    'ack',
    ['id', 'accepted', 'counters'],
    {
      id,
      accepted: { type: 'integer', minimum: 0, description: 'Counter objects taken' },
      counters: { type: 'integer', minimum: 0, description: 'Domain entries taken' },
    },
    'The events message is journaled (with --durability off, applied): a query made after it sees the counters',
  ),
  ErrorMessage: frame(
    'error',
    ['error'],
    { id, error: (SCHEMAS.Error as { properties: Json }).properties.error },
    'A message was refused (nothing of it applied) and the connection stays open; `id` when it had a usable one',
  ),
  TopMessage: frame(
    'top',
    ['window', 'from', 'to', 'top', 'final'],
    {
      window: windowKind,
      from: { type: 'integer', description: 'Unix seconds, inclusive' },
      to: { type: 'integer', description: 'Unix seconds, exclusive' },
      top: { type: 'array', items: schema('RankedDomain') },
      final: { type: 'boolean', description: 'true for a closed window, false for the running top of the open one' },
    },
    'The top domains of a window: on subscribe, when a window closes, when a late counter changes it, and live',
  ),
  UnsubscribedMessage: frame(
    'unsubscribed',
    ['windows'],
    { windows: { type: 'array', items: windowKind, description: 'The subscriptions that were stopped' } },
    'Answer to unsubscribe; no push of those windows follows it',
  ),
};

const MESSAGES: Record<string, [title: string, schemaName: string]> = {
  events: ['Counters to add', 'EventsMessage'],
  subscribe: ['Subscribe to a window', 'SubscribeMessage'],
  unsubscribe: ['Unsubscribe', 'UnsubscribeMessage'],
  ack: ['Events acknowledged', 'AckMessage'],
  error: ['A refused message', 'ErrorMessage'],
  top: ['Top domains of a window', 'TopMessage'],
  unsubscribed: ['Unsubscribe answered', 'UnsubscribedMessage'],
};

export function asyncApiDocument(): Json {
  const messages = Object.fromEntries(
    Object.entries(MESSAGES).map(([name, [title, schemaName]]) => [
      name,
      {
        name,
        title,
        summary: (WS_SCHEMAS[schemaName] as { description: string }).description,
        contentType: 'application/json',
        description: 'JSON in a text frame, or the same message as MessagePack in a binary frame (answered in the same frame type)',
        payload: schema(schemaName),
      },
    ]),
  );
  const receive = (name: string, summary: string, replies: string[]): Json => ({
    action: 'receive',
    channel: CHANNEL,
    summary,
    messages: [channelMessage(name)],
    reply: { channel: CHANNEL, messages: replies.map(channelMessage) },
  });
  return {
    asyncapi: '3.1.0',
    info: {
      title: 'toptally WebSocket protocol',
      version,
      description: 'Streaming ingest with acks and top-N subscriptions pushed as windows close (docs/websocket.md). The HTTP API is described by /openapi.json.',
      license: { name: 'UNLICENSED: private, all rights reserved', url: 'https://docs.npmjs.com/cli/configuring-npm/package-json#license' },
    },
    defaultContentType: 'application/json',
    servers: {
      local: {
        host: '127.0.0.1:5000',
        protocol: 'ws',
        description: 'The defaults of --host and --port',
        security: [{ $ref: '#/components/securitySchemes/bearer' }, { $ref: '#/components/securitySchemes/queryToken' }],
      },
    },
    channels: {
      ws: {
        address: WS_PATH,
        title: 'The WebSocket endpoint',
        description: 'One connection can stream counters in and receive the top domains as they change, or both',
        servers: [{ $ref: '#/servers/local' }],
        messages: Object.fromEntries(Object.keys(MESSAGES).map((name) => [name, message(name)])),
      },
    },
    operations: {
      receiveEvents: receive('events', 'Add counters (ingest scope)', ['ack', 'error']),
      receiveSubscribe: receive('subscribe', "Follow a window's top (read scope)", ['top', 'error']),
      receiveUnsubscribe: receive('unsubscribe', 'Stop following windows', ['unsubscribed', 'error']),
      sendTop: { action: 'send', channel: CHANNEL, summary: 'Push the top of a subscribed window', messages: [channelMessage('top')] },
    },
    components: {
      schemas: { ...SCHEMAS, ...WS_SCHEMAS },
      messages,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <token> on the upgrade request (docs/security.md)' },
        queryToken: { type: 'httpApiKey', name: 'token', in: 'query', description: 'From a browser, which cannot set headers: /ws?token=<token>' },
      },
    },
  };
}
