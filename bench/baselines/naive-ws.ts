/**
 * Naive WebSocket: one uWS thread on /ws that unpacks each MessagePack frame
 * `{"type":"events","id":n,"events":[...]}`, counts into a Map per minute and acks
 * `{"type":"ack","id":n,"accepted":a,"counters":c}` in MessagePack.
 *
 *   PORT=3004 node --import tsx bench/baselines/naive-ws.ts
 */
import uWS from '@trufflesuite/uws-js-unofficial';
import { Packr } from 'msgpackr';
import { MinuteCounts } from './common/minute-counts.js';
import { listen } from './common/uws.js';

const counts = new MinuteCounts();
const packr = new Packr({ useRecords: false });

interface EventsFrame {
  type: 'events';
  id: number;
  events: unknown[];
}

function isEventsFrame(value: unknown): value is EventsFrame {
  const frame = value as Partial<EventsFrame> | null;
  return typeof frame === 'object' && frame !== null && frame.type === 'events' && Array.isArray(frame.events);
}

const app = uWS.App();
app.ws('/ws', {
  maxPayloadLength: 16 * 1024 * 1024,
  idleTimeout: 60,
  message: (ws, message) => {
    let frame: unknown;
    try {
      frame = packr.unpack(Buffer.from(message)); // synchronous: `message` is neutered on return
    } catch {
      ws.end(1007, 'invalid MessagePack');
      return;
    }
    if (!isEventsFrame(frame)) {
      ws.end(1008, 'expected an events frame');
      return;
    }
    const accepted = counts.addBody(frame.events);
    ws.send(packr.pack({ type: 'ack', id: frame.id, accepted, counters: frame.events.length }), true);
  },
});
listen(app, 'naive-ws');
