/**
 * WebSocket load generator process: each connection keeps up to W MessagePack event frames in flight,
 * sending the next one as each ack arrives, until the deadline. Configured by environment:
 *
 *   BENCH_PORT=3000 BENCH_CONNECTIONS=4 BENCH_IN_FLIGHT=4 node --import tsx bench/lib/ws-load.ts
 *
 * BENCH_WS_PATH (default /ws), BENCH_POOL, BENCH_SEED, BENCH_UNIVERSE, and the phase variables of
 * load-protocol.ts. Prints one JSON line per phase event.
 */
import { Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { WsFramePool } from './data.js';
import { generatorMain, isMain, numberEnv, phasePlanFromEnv, runPhases, type LoadCounts, type LoadDriver } from './load-protocol.js';
import { LatencyHistogram } from './stats.js';

export interface WsLoadOptions {
  port: number;
  path: string;
  connections: number;
  /** Frames each connection may have sent but not yet seen acked. */
  inFlight: number;
  pool: number;
  seed: number;
  universe: number;
}

/** A server reply as decoded, before checking: `{"type":"ack","id","accepted","counters"}` or an error frame. */
interface Reply {
  type?: unknown;
  id?: unknown;
  accepted?: unknown;
  code?: unknown;
  message?: unknown;
}

const SETTLE_TIMEOUT_MS = 2000;
const unpackr = new Unpackr({ useRecords: false });

/** Shared tallies of one phase; frozen into a snapshot at the deadline. */
class Tally {
  requests = 0;
  counters = 0;
  errors = 0;
  firstError: string | undefined;
  readonly latency = new LatencyHistogram();

  error(message: string): void {
    this.errors++;
    this.firstError ??= message;
  }
}

/** One connection's send loop: ids are per connection and match acks to their send time. */
class Connection {
  private readonly socket: WebSocket;
  private readonly sentAt = new Map<number, number>();
  private nextId = 1;
  private sending = false;
  private settled: (() => void) | undefined;
  readonly opened: Promise<void>;

  constructor(
    url: string,
    private readonly frames: WsFramePool,
    private readonly nextFrame: () => number,
    private readonly inFlight: number,
    private readonly tally: () => Tally,
  ) {
    // No permessage-deflate: it would make ws queue frames asynchronously, and WsFramePool reuses buffers.
    this.socket = new WebSocket(url, { perMessageDeflate: false });
    this.socket.binaryType = 'nodebuffer';
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('message', (data: Buffer) => this.onMessage(data));
    this.socket.on('close', (code, reason) => {
      if (this.sending || this.sentAt.size > 0) this.tally().error(`closed by server: ${code} ${reason.toString()}`);
      this.sentAt.clear();
      this.settled?.();
    });
    this.socket.on('error', (error) => this.tally().error(error.message));
  }

  start(): void {
    this.sending = true;
    while (this.sentAt.size < this.inFlight) this.sendOne();
  }

  /** Stops sending; resolves once every outstanding frame is acked (or the socket closes). */
  stop(): Promise<void> {
    this.sending = false;
    if (this.sentAt.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.settled = resolve;
    });
  }

  close(): void {
    this.socket.close();
  }

  private sendOne(): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    const id = this.nextId++;
    this.sentAt.set(id, performance.now());
    // Safe with the shared frame buffer: ws copies it while masking, before send() returns.
    this.socket.send(this.frames.frame(this.nextFrame(), id), { binary: true });
  }

  private onMessage(data: Buffer): void {
    const tally = this.tally();
    let reply: Reply;
    try {
      reply = unpackr.unpack(data) as Reply;
    } catch (error) {
      tally.error(`undecodable frame: ${(error as Error).message}`);
      return;
    }
    const id = typeof reply.id === 'number' ? reply.id : Number.NaN;
    const sentAt = this.sentAt.get(id);
    if (sentAt === undefined) {
      tally.error(`reply for unknown id: ${JSON.stringify(reply).slice(0, 200)}`);
      return;
    }
    this.sentAt.delete(id);
    if (reply.type === 'ack') {
      tally.requests++;
      tally.counters += typeof reply.accepted === 'number' ? reply.accepted : this.frames.countersPerFrame;
      tally.latency.recordMs(performance.now() - sentAt);
    } else {
      tally.error(`${String(reply.type)} frame: ${String(reply.code ?? '')} ${String(reply.message ?? '')}`);
    }
    if (this.sending) this.sendOne();
    else if (this.sentAt.size === 0) this.settled?.();
  }
}

export class WsLoad implements LoadDriver {
  private frames: WsFramePool | undefined;
  private connections: Connection[] = [];
  private draining: Promise<unknown> = Promise.resolve();
  private tally = new Tally();

  constructor(private readonly options: WsLoadOptions) {}

  prepare(): void {
    const { pool, seed, universe } = this.options;
    this.frames = new WsFramePool({ seed, size: pool, universe, now: Math.floor(Date.now() / 1000) });
  }

  async run(durationS: number, started: () => void): Promise<LoadCounts> {
    const { port, path, connections, inFlight } = this.options;
    const frames = this.frames;
    if (frames === undefined) throw new Error('WsLoad.run() before prepare()');
    const tally = new Tally();
    this.tally = tally;
    let frameIndex = 0;
    const url = `ws://127.0.0.1:${port}${path}`;
    this.connections = Array.from(
      { length: connections },
      () => new Connection(url, frames, () => frameIndex++, inFlight, () => this.tally),
    );
    try {
      await Promise.all(this.connections.map((connection) => connection.opened));
    } catch (error) {
      throw new Error(`cannot open ${url}: ${(error as Error).message}`);
    }
    started();
    for (const connection of this.connections) connection.start();
    await new Promise((resolve) => setTimeout(resolve, durationS * 1000));
    this.draining = Promise.all(this.connections.map((connection) => connection.stop()));
    // Acks that arrive after the deadline go to a tally nobody reads.
    this.tally = new Tally();
    return {
      requests: tally.requests,
      counters: tally.counters,
      errors: tally.errors,
      ...(tally.firstError === undefined ? {} : { firstError: tally.firstError }),
      latencyP50Ms: tally.latency.quantileMs(0.5),
      latencyP99Ms: tally.latency.quantileMs(0.99),
    };
  }

  async settle(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((resolve) => (timer = setTimeout(resolve, SETTLE_TIMEOUT_MS)));
    await Promise.race([this.draining, timeout]);
    clearTimeout(timer);
    for (const connection of this.connections) connection.close();
    this.connections = [];
  }
}

if (isMain(import.meta.url)) {
  await generatorMain(async () => {
    const load = new WsLoad({
      port: numberEnv('BENCH_PORT', 3000),
      path: process.env['BENCH_WS_PATH'] ?? '/ws',
      connections: numberEnv('BENCH_CONNECTIONS', 4),
      inFlight: numberEnv('BENCH_IN_FLIGHT', 4),
      pool: numberEnv('BENCH_POOL', 200),
      seed: numberEnv('BENCH_SEED', 42),
      universe: numberEnv('BENCH_UNIVERSE', 10_000),
    });
    await runPhases(load, phasePlanFromEnv());
  });
}
