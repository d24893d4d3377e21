/**
 * The soak's traffic: concurrent loops of valid, invalid and aborted requests over HTTP and WebSocket,
 * each writing what happened into the Tally. Only what the server acknowledged (200 or ack) enters the
 * count; an abort is only ever made before a request is complete, so its fate is never in doubt.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { domainName, mulberry32, Zipf, type Random } from './prng.js';
import type { Counter, Tally } from './tally.js';

export interface Traffic {
  port: number;
  ingestToken: string;
  readToken: string;
  /** Date.now() after which no new request starts. */
  deadline: number;
  tally: Tally;
  seed: number;
  /** Domains are drawn from this many names (Zipf), so a minute's top 1000 holds them all. */
  universe: number;
}

const packr = new Packr({ useRecords: false });
const GARBAGE = -2;
const unpackr = new Unpackr({ useRecords: false });

function batch(random: Random, zipf: Zipf, maxCounters: number): Counter[] {
  const now = Math.floor(Date.now() / 1000);
  return Array.from({ length: 1 + Math.floor(random() * maxCounters) }, () => {
    const counter: Counter = { timestamp: now - Math.floor(random() * 5) };
    const domains = 1 + Math.floor(random() * 5);
    for (let d = 0; d < domains; d++) counter[domainName(zipf.sample(random))] = 1 + Math.floor(random() * 10);
    return counter;
  });
}

async function post(traffic: Traffic, body: string | Uint8Array, headers: Record<string, string>): Promise<{ status: number; code?: string }> {
  const res = await fetch(`http://127.0.0.1:${traffic.port}/api/events`, { method: 'POST', headers, body: body as string });
  const json = (await res.json().catch(() => null)) as { error?: { code?: string } } | null;
  return { status: res.status, code: json?.error?.code };
}

const auth = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

/** Valid batches of 1 to 40 counters, as fast as the server answers. */
export async function validHttp(traffic: Traffic, id: number): Promise<void> {
  const random = mulberry32(traffic.seed + id);
  const zipf = new Zipf(traffic.universe);
  while (Date.now() < traffic.deadline) {
    const counters = batch(random, zipf, 40);
    const reply = await post(traffic, JSON.stringify(counters), auth(traffic.ingestToken));
    if (reply.status === 200) traffic.tally.acknowledged(counters);
    traffic.tally.outcome(reply.status === 200 ? 'ok' : reply.code ?? `HTTP ${reply.status}`);
  }
}

/** One of each kind of bad request, in turn; a few a second. */
export async function invalidHttp(traffic: Traffic): Promise<void> {
  const now = (): number => Math.floor(Date.now() / 1000);
  const kinds: [string, () => string | Buffer, Record<string, string>][] = [
    ['malformed JSON', () => '{"timestamp": 1, "a.example": ', auth(traffic.ingestToken)],
    ['negative count', () => JSON.stringify({ timestamp: now(), 'a.example': -1 }), auth(traffic.ingestToken)],
    ['nested value', () => JSON.stringify({ timestamp: now(), 'a.example': { n: 1 } }), auth(traffic.ingestToken)],
    ['too many counters', () => JSON.stringify(Array.from({ length: 1001 }, () => ({ timestamp: now() }))), auth(traffic.ingestToken)],
    ['too many domains', () => JSON.stringify({ timestamp: now(), ...Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`x${i}`, 1])) }), auth(traffic.ingestToken)],
    ['domain too long', () => JSON.stringify({ timestamp: now(), ['x'.repeat(256)]: 1 }), auth(traffic.ingestToken)],
    ['too old', () => JSON.stringify({ timestamp: now() - 40 * 3600, 'a.example': 1 }), auth(traffic.ingestToken)],
    ['body too large', () => Buffer.alloc(1024 * 1024 + 1, 32), auth(traffic.ingestToken)],
    ['no token', () => JSON.stringify({ timestamp: now(), 'a.example': 1 }), { 'content-type': 'application/json' }],
    ['read token', () => JSON.stringify({ timestamp: now(), 'a.example': 1 }), auth(traffic.readToken)],
    ['wrong token', () => JSON.stringify({ timestamp: now(), 'a.example': 1 }), auth('not-a-token-of-this-server')],
    ['media type', () => '<counter/>', { ...auth(traffic.ingestToken), 'content-type': 'application/xml' }],
  ];
  for (let i = 0; Date.now() < traffic.deadline; i++) {
    const [, body, headers] = kinds[i % kinds.length];
    const reply = await post(traffic, body(), headers).catch(() => ({ status: 0, code: 'closed without reply' }));
    traffic.tally.outcome(reply.status === 200 ? 'UNEXPECTED 200' : reply.code ?? `HTTP ${reply.status}`);
    await sleep(20);
  }
}

/** Half a body, then the connection is cut. */
export async function abortedHttp(traffic: Traffic): Promise<void> {
  const body = JSON.stringify({ timestamp: Math.floor(Date.now() / 1000), 'aborted.example': 1 });
  while (Date.now() < traffic.deadline) {
    const socket = net.connect(traffic.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${traffic.ingestToken}\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 20)}`);
    await sleep(5);
    socket.destroy();
    traffic.tally.outcome('aborted mid-body');
    await sleep(20);
  }
}

/** A body sent a byte every 100 ms: the server must drop it at --body-timeout. */
export async function slowLoris(traffic: Traffic): Promise<void> {
  while (Date.now() < traffic.deadline) {
    const socket = net.connect(traffic.port, '127.0.0.1');
    const reply: Buffer[] = [];
    socket.on('data', (chunk) => reply.push(chunk));
    socket.on('error', () => {});
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(`POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${traffic.ingestToken}\r\nContent-Length: 100000\r\n\r\n`);
    const trickle = setInterval(() => socket.write(' '), 100);
    await closed;
    clearInterval(trickle);
    const code = /"code":"([A-Z_]+)"/.exec(Buffer.concat(reply).toString())?.[1];
    traffic.tally.outcome(code ?? 'slow client dropped without reply');
  }
}

async function open(url: string, token: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return ws;
}

/**
 * Streams MessagePack batches with up to 8 awaiting their ack; one message in 20 is invalid, and now
 * and then the connection is cut in the middle of a frame (with nothing in flight).
 */
export async function wsIngest(traffic: Traffic, id: number): Promise<void> {
  const random = mulberry32(traffic.seed + 1000 + id);
  const zipf = new Zipf(traffic.universe);
  const url = `ws://127.0.0.1:${traffic.port}/ws`;
  while (Date.now() < traffic.deadline) {
    const ws = await open(url, traffic.ingestToken);
    const sent = new Map<number, Counter[]>();
    let next = 0;
    let wake: (() => void) | null = null;
    ws.on('message', (data: Buffer) => {
      const reply = unpackr.unpack(data) as { type: string; id?: number; error?: { code: string } };
      // A frame that is not MessagePack has no id its error could name: it was sent alone.
      const key = reply.id ?? GARBAGE;
      const counters = sent.get(key);
      sent.delete(key);
      if (reply.type === 'ack' && counters) traffic.tally.acknowledged(counters);
      traffic.tally.outcome(reply.type === 'ack' ? 'ok' : reply.error?.code ?? reply.type);
      wake?.();
    });
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    const messages = 100 + Math.floor(random() * 200);
    for (let m = 0; m < messages && Date.now() < traffic.deadline; m++) {
      while (sent.size >= 8) await new Promise<void>((resolve) => (wake = resolve));
      const mid = next++;
      const bad = random();
      if (bad < 0.01) {
        while (sent.size > 0) await new Promise<void>((resolve) => (wake = resolve));
        sent.set(GARBAGE, []);
        ws.send(Buffer.from([0xc1, 0xc1]));
        continue;
      }
      if (bad < 0.05) {
        sent.set(mid, []);
        ws.send(packr.pack({ type: 'events', id: mid, events: bad < 0.03 ? 'none' : [{ timestamp: 'soon', a: 1 }] }));
        continue;
      }
      const counters = batch(random, zipf, 200);
      sent.set(mid, counters);
      ws.send(packr.pack({ type: 'events', id: mid, events: counters }));
    }
    while (sent.size > 0) await new Promise<void>((resolve) => (wake = resolve));
    // A frame cut in half: the server never gets the message, so it cannot be counted.
    const raw = (ws as unknown as { _socket: net.Socket })._socket;
    const frame = packr.pack({ type: 'events', id: -1, events: [{ timestamp: Math.floor(Date.now() / 1000), 'cut.example': 1 }] });
    raw.write(Buffer.from([0x82, 0x80 | frame.length, 0, 0, 0, 0, ...frame.subarray(0, frame.length >> 1)]));
    raw.destroy();
    await closed;
    traffic.tally.outcome('aborted mid-frame');
  }
}

/** Stats queries over HTTP, and a live subscription over WebSocket; returns the frames pushed. */
export async function readers(traffic: Traffic): Promise<number> {
  const ws = await open(`ws://127.0.0.1:${traffic.port}/ws`, traffic.readToken);
  let pushed = 0;
  ws.on('message', () => pushed++);
  ws.send(JSON.stringify({ type: 'subscribe', window: 'minute', limit: 10, live: true }));
  const headers = { authorization: `Bearer ${traffic.readToken}` };
  while (Date.now() < traffic.deadline) {
    const path = ['/api/stats/minutes', '/api/stats?window=hour&limit=100', '/api/stats?window=minute&open=true'][pushed % 3];
    const res = await fetch(`http://127.0.0.1:${traffic.port}${path}`, { headers });
    await res.arrayBuffer();
    traffic.tally.outcome(res.status === 200 ? 'read ok' : `read HTTP ${res.status}`);
    await sleep(50);
  }
  ws.close();
  return pushed;
}
