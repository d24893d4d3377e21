// A shard actor: moves messages between the main thread and its ShardState, nothing else.
// A failing request is answered with an error instead of crashing the worker.

import { parentPort } from 'node:worker_threads';
import { assertNever, send, type FromShard, type ToShard } from '../src/protocol/messages.ts';
import { ShardState } from './shard-state.ts';

const port = parentPort;
if (!port) throw new Error('shard-worker.ts must run in a worker thread');

const state = new ShardState();

function handle(message: ToShard): FromShard | undefined {
  switch (message.kind) {
    case 'ingest': {
      let entries = 0;
      for (const part of message.parts) entries += state.apply(part);
      return { kind: 'applied', id: message.id, entries };
    }
    case 'top':
      return { kind: 'top', id: message.id, ...state.top(message.window, message.index, message.limit) };
    case 'census':
      return { kind: 'census', id: message.id, ...state.census() };
    case 'totals':
      return { kind: 'totals', id: message.id, windows: state.totals() };
    case 'export':
      return {
        kind: 'exported',
        id: message.id,
        windows: message.windows.map(({ window, index }) => ({ window, index, parts: state.exportWindow(window, index) })),
      };
    case 'drain':
      return { kind: 'drained', id: message.id, ...state.drain() };
    case 'load':
      return { kind: 'applied', id: message.id, entries: state.load(message.window, message.index, message.part) };
    case 'retain':
      state.retain(message.oldestMinute, message.oldestHour);
      return undefined;
    case 'stop':
      return { kind: 'stopped', id: message.id };
    default:
      return assertNever(message);
  }
}

port.on('message', (message: ToShard) => {
  let reply: FromShard | undefined;
  try {
    reply = handle(message);
  } catch (err) {
    const id = 'id' in message ? message.id : -1;
    const error = err instanceof Error ? err.message : String(err);
    reply = { kind: 'error', id, error: { code: 'TOPTALLY_ERR_INTERNAL', message: error } };
  }
  if (reply) send(port, reply);
});

send(port, { kind: 'ready' });
