// The /ws endpoint: streaming ingest with acks and an in-flight limit, and top-N subscriptions.
// uWS rules: the message's ArrayBuffer is only valid until the handler returns, so it is decoded
// before any await; a closed socket must not be touched, so every write after an await checks
// `closed` and is corked.

import { EventEmitter } from 'node:events';
import { TopTallyError, toTopTallyError } from '../errors.ts';
import type { Ingestor } from '../ingest/ingest.ts';
import { InFlight } from '../lifecycle/in-flight.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Publisher } from '../push/publisher.ts';
import type { WindowKind } from '../window.ts';
import { AccessControl, bearerToken, challenge, type Grant } from '../access/access.ts';
import { Exchange } from './http.ts';
import { decodeFrame, encodeFrame } from './ws-codec.ts';
import { idOf, parseClientMessage, WS_PATH, type ClientMessage, type MessageId, type ServerMessage } from '../api/ws-protocol.ts';
import type { RequestScreen } from './request-screen.ts';
import { WsTopics, type Subscriber, type Subscription } from './ws-topics.ts';
import { uWS, type HttpResponse, type TemplatedApp, type WebSocket } from './uws.ts';

/** Close codes (RFC 6455): going away, message too big, try again later. */
const CLOSE_GOING_AWAY = 1001;
const CLOSE_TOO_BIG = 1009;
const CLOSE_TRY_AGAIN_LATER = 1013;

export interface WsOptions {
  maxFrame: number;
  maxInflight: number;
  maxBackpressure: number;
  /** Milliseconds a connection may send nothing, not even a pong, before it is closed; 0: never. */
  wsIdleTimeout: number;
  /** Open WebSockets one client address may hold. */
  maxConnectionsPerAddress: number;
}

export interface WsDeps {
  ingestor: Ingestor;
  publisher: Publisher;
  metrics: Pick<Metrics, 'wsConnectionOpened' | 'wsConnectionClosed' | 'wsSubscribed' | 'wsUnsubscribed' | 'rejected'>;
  log: Logger;
  access: AccessControl;
  /**
   * The server-wide connection limit, given the WebSockets open now: null when one more may open,
   * else the error.
   */
  admit: (sockets: number) => TopTallyError | null;
  /** Host and Origin checks of the upgrade request. */
  screen?: RequestScreen;
}

interface Connection extends Subscriber {
  closed: boolean;
  /** The client's address, as counted in #perAddress. */
  address: string;
  grant: Grant;
  /** performance.now() of the last message or pong from the client. */
  lastSeen: number;
  /** A ping went out since lastSeen; a connection still silent after the timeout is closed. */
  pinged: boolean;
  /** Closed by the idle sweep with a close frame; forced shut if even that goes unanswered. */
  ending: boolean;
  /** Events messages taken but not yet answered. */
  inFlight: number;
  subscriptions: Map<WindowKind, Subscription>;
}

type Socket = WebSocket<Connection>;

/** 'slow' reports each use of the slow-subscriber policy, with the backlog that triggered it. */
export class WsEndpoint extends EventEmitter<{ slow: [action: 'held' | 'closed', backlog: number] }> {
  readonly #ingestor: Ingestor;
  readonly #publisher: Publisher;
  readonly #metrics: WsDeps['metrics'];
  readonly #options: WsOptions;
  readonly #log: Logger;
  readonly #access: AccessControl;
  readonly #admit: WsDeps['admit'];
  readonly #screen: RequestScreen | undefined;
  readonly #sweep: NodeJS.Timeout | undefined;
  readonly #topics: WsTopics<Connection>;
  readonly #sockets = new Set<Socket>();
  /** Open connections by client address, with upgrades taken but not yet open. */
  readonly #perAddress = new Map<string, number>();
  readonly #inFlight = new InFlight();
  #stopping = false;

  constructor(app: TemplatedApp, { ingestor, publisher, metrics, log, access, admit, screen }: WsDeps, options: WsOptions) {
    super();
    this.#ingestor = ingestor;
    this.#publisher = publisher;
    this.#metrics = metrics;
    this.#options = options;
    this.#log = log;
    this.#access = access;
    this.#admit = admit;
    this.#screen = screen;
    const idle = options.wsIdleTimeout;
    if (idle > 0) this.#sweep = setInterval(() => this.#sweepIdle(), Math.max(idle / 4, 10)).unref();
    this.#topics = new WsTopics<Connection>(app, {
      limit: options.maxBackpressure,
      tooSlow: (ws) => this.#tooSlow(ws),
      held: (ws) => this.emit('slow', 'held', ws.getBufferedAmount()),
    });
    publisher.on('push', (kind, limit, frame) => this.#topics.push(kind, limit, frame));
    app.ws<Connection>(WS_PATH, {
      // Up to twice the limit is read so that an oversized message can be refused with 1009 and a
      // reason; beyond that uWS cuts the connection (1006) before buffering it.
      maxPayloadLength: 2 * options.maxFrame,
      // The policy above bounds every backlog; uWS's own limit would drop frames silently, even the
      // close frame that explains why.
      maxBackpressure: 0,
      // Idle connections are found by #sweepIdle: uWS's own timeout takes whole seconds, 8 at least.
      idleTimeout: 0,
      sendPingsAutomatically: false,
      compression: uWS.DISABLED,
      upgrade: (res, req, context) => {
        let grant: Grant;
        const address = Buffer.from(res.getRemoteAddressAsText()).toString();
        try {
          if (this.#stopping) throw new TopTallyError('TOPTALLY_ERR_SHUTTING_DOWN');
          const refused = this.#screen?.upgrade(req) ?? this.#admit(this.#sockets.size) ?? this.#admitFrom(address);
          if (refused) throw refused;
          // Browsers cannot set headers on a WebSocket: they send the token as ?token=.
          grant = this.#access.grant(bearerToken(req.getHeader('authorization')) ?? (req.getQuery('token') || undefined));
          if (grant.scopes.size === 0) {
            throw new TopTallyError('TOPTALLY_ERR_UNAUTHORIZED', 'A token is required: Authorization: Bearer <token>, or ?token=<token>');
          }
        } catch (err) {
          this.#refuseUpgrade(res, toTopTallyError(err));
          return;
        }
        this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
        const connection: Connection = {
          closed: false,
          address,
          grant,
          lastSeen: performance.now(),
          pinged: false,
          ending: false,
          inFlight: 0,
          subscriptions: new Map(),
          held: new Map(),
        };
        res.upgrade(
          connection,
          req.getHeader('sec-websocket-key'),
          req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'),
          context,
        );
      },
      open: (ws) => {
        this.#sockets.add(ws);
        this.#metrics.wsConnectionOpened();
      },
      message: (ws, data, binary) => {
        this.#seen(ws);
        try {
          this.#onMessage(ws, data, binary);
        } catch (err) {
          this.#failed(ws, err, undefined, binary);
        }
      },
      pong: (ws) => this.#seen(ws),
      ping: (ws) => this.#seen(ws),
      drain: (ws) => {
        for (const sub of this.#topics.resume(ws)) {
          const live = this.#publisher.currentLive(sub.kind, sub.limit);
          if (live) this.#send(ws, live, sub.binary);
        }
      },
      close: (ws) => {
        const connection = ws.getUserData();
        connection.closed = true;
        this.#sockets.delete(ws);
        const left = (this.#perAddress.get(connection.address) ?? 1) - 1;
        if (left > 0) this.#perAddress.set(connection.address, left);
        else this.#perAddress.delete(connection.address);
        for (const sub of connection.subscriptions.values()) this.#unsubscribe(ws, sub, false);
        connection.subscriptions.clear();
        this.#metrics.wsConnectionClosed();
      },
    });
  }

  /** Open connections. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** From now on, new connections and events messages are refused with TOPTALLY_ERR_SHUTTING_DOWN. */
  stopAccepting(): void {
    this.#stopping = true;
    clearInterval(this.#sweep);
  }

  /** Resolves once every events message taken has been answered. */
  drained(): Promise<void> {
    return this.#inFlight.drained();
  }

  /** Closes every connection with 1001 (going away). */
  closeAll(): void {
    for (const ws of this.#sockets) ws.end(CLOSE_GOING_AWAY, 'server shutting down');
  }

  #onMessage(ws: Socket, data: ArrayBuffer, binary: boolean): void {
    if (data.byteLength > this.#options.maxFrame) {
      const err = new TopTallyError(
        'TOPTALLY_ERR_FRAME_TOO_LARGE',
        `The message is ${data.byteLength} bytes, over the limit of ${this.#options.maxFrame} (--max-frame)`,
        { limit: this.#options.maxFrame },
      );
      this.#sendError(ws, err, undefined, binary);
      ws.end(CLOSE_TOO_BIG, `TOPTALLY_ERR_FRAME_TOO_LARGE: over ${this.#options.maxFrame} bytes`);
      return;
    }
    let decoded: unknown;
    let message: ClientMessage;
    try {
      decoded = decodeFrame(data, binary);
      message = parseClientMessage(decoded, binary);
    } catch (err) {
      this.#sendError(ws, err, idOf(decoded), binary);
      return;
    }
    try {
      if (message.type === 'events') AccessControl.require(ws.getUserData().grant, 'ingest');
      if (message.type === 'subscribe') AccessControl.require(ws.getUserData().grant, 'read');
    } catch (err) {
      this.#sendError(ws, err, message.type === 'events' ? message.id : undefined, binary);
      return;
    }
    switch (message.type) {
      case 'events':
        return this.#events(ws, message, binary);
      case 'subscribe':
        return this.#subscribe(ws, { kind: message.window, limit: message.limit, live: message.live, binary });
      case 'unsubscribe': {
        const connection = ws.getUserData();
        const windows = message.window ? [message.window] : [...connection.subscriptions.keys()];
        const stopped = windows.filter((kind) => {
          const sub = connection.subscriptions.get(kind);
          if (sub) this.#unsubscribe(ws, sub, true);
          return connection.subscriptions.delete(kind);
        });
        this.#send(ws, { type: 'unsubscribed', windows: stopped }, binary);
        return;
      }
    }
  }

  #events(ws: Socket, { id, events, key }: { id: MessageId; events: unknown[]; key?: string }, binary: boolean): void {
    const connection = ws.getUserData();
    if (this.#stopping) {
      return this.#sendError(ws, new TopTallyError('TOPTALLY_ERR_SHUTTING_DOWN'), id, binary);
    }
    if (connection.inFlight >= this.#options.maxInflight) {
      const err = new TopTallyError(
        'TOPTALLY_ERR_TOO_MANY_IN_FLIGHT',
        `At most ${this.#options.maxInflight} events messages may await their ack (--max-inflight); wait for one`,
        { limit: this.#options.maxInflight },
      );
      return this.#sendError(ws, err, id, binary);
    }
    connection.inFlight++;
    this.#inFlight.enter();
    this.#ingestor
      .ingestDecoded({ items: events, where: (index) => ({ index }) }, { key })
      .then(
        ({ accepted, counters }) => this.#send(ws, { type: 'ack', id, accepted, counters }, binary),
        (err) => this.#sendError(ws, err, id, binary),
      )
      .catch((err) => this.#failed(ws, err, id, binary))
      .finally(() => {
        connection.inFlight--;
        this.#inFlight.leave();
      });
  }

  /**
   * A subscription replaces the connection's previous one for the same window; the same one again
   * just asks for a fresh snapshot.
   */
  #subscribe(ws: Socket, asked: Subscription): void {
    const connection = ws.getUserData();
    const previous = connection.subscriptions.get(asked.kind);
    const same = previous && previous.limit === asked.limit && previous.live === asked.live && previous.binary === asked.binary;
    const sub = same ? previous : asked;
    if (!same) {
      if (previous) this.#unsubscribe(ws, previous, true);
      connection.subscriptions.set(sub.kind, sub);
      this.#publisher.add(sub.kind, sub.limit, sub.live);
      this.#topics.join(ws, sub);
      this.#metrics.wsSubscribed(sub.kind);
    }
    this.#publisher.snapshot(sub.kind, sub.limit).then(
      (frame) => {
        // Unsubscribed meanwhile: nothing more may arrive for it.
        if (connection.subscriptions.get(sub.kind) !== sub) return;
        if (frame) this.#send(ws, frame, sub.binary);
        const live = sub.live ? this.#publisher.currentLive(sub.kind, sub.limit) : undefined;
        if (live) this.#send(ws, live, sub.binary);
      },
      (err) => this.#sendError(ws, err, undefined, sub.binary),
    ).catch((err) => this.#failed(ws, err, undefined, sub.binary));
  }

  /**
   * The last resort of a message that failed where no error was expected: logged, and answered with
   * TOPTALLY_ERR_INTERNAL if the connection still takes it. Never throws, so no message can end the
   * process.
   */
  #failed(ws: Socket, err: unknown, id: MessageId | undefined, binary: boolean): void {
    this.#log.error({ err }, 'a WebSocket message failed unexpectedly');
    try {
      const error = new TopTallyError('TOPTALLY_ERR_INTERNAL', `Internal error: ${err instanceof Error ? err.message : String(err)}`);
      this.#send(ws, id === undefined ? { type: 'error', error: error.toJSON() } : { type: 'error', id, error: error.toJSON() }, binary);
    } catch {
      // nothing more can be said on this connection
    }
  }

  #unsubscribe(ws: Socket, sub: Subscription, open: boolean): void {
    this.#topics.leave(ws, sub, open);
    this.#publisher.remove(sub.kind, sub.limit, sub.live);
    this.#metrics.wsUnsubscribed(sub.kind);
  }

  #sendError(ws: Socket, err: unknown, id: MessageId | undefined, binary: boolean): void {
    const error = toTopTallyError(err);
    this.#metrics.rejected(error.code);
    if (error.code === 'TOPTALLY_ERR_INTERNAL') this.#log.error({ err }, 'WebSocket message failed');
    this.#send(ws, id === undefined ? { type: 'error', error: error.toJSON() } : { type: 'error', id, error: error.toJSON() }, binary);
  }

  /** Every direct write: skipped once closed, and refused to a connection whose backlog is over the limit. */
  #send(ws: Socket, message: ServerMessage, binary: boolean): void {
    if (ws.getUserData().closed) return;
    if (ws.getBufferedAmount() > this.#options.maxBackpressure) {
      this.#tooSlow(ws);
      return;
    }
    const bytes = encodeFrame(message, binary);
    ws.cork(() => ws.send(bytes, binary));
  }

  /**
   * One client may not take every connection: past the limit its upgrades get 503, while other
   * addresses are still admitted. Behind a proxy every client has the proxy's address (security.md).
   */
  #admitFrom(address: string): TopTallyError | null {
    const limit = this.#options.maxConnectionsPerAddress;
    if ((this.#perAddress.get(address) ?? 0) < limit) return null;
    return new TopTallyError(
      'TOPTALLY_ERR_TOO_MANY_CONNECTIONS',
      `This address has ${limit} WebSockets open, the most one address may (--max-connections-per-address)`,
      { limit, perAddress: true, retryAfter: 1 },
    );
  }

  /** An upgrade refused is an HTTP error reply like any other. */
  #refuseUpgrade(res: HttpResponse, err: TopTallyError): void {
    new Exchange(res, () => this.#metrics.rejected(err.code)).error(err, challenge(err), true);
  }

  #seen(ws: Socket): void {
    const connection = ws.getUserData();
    connection.lastSeen = performance.now();
    connection.pinged = false;
  }

  /**
   * Pings a connection silent for half the timeout, and closes one silent for all of it. A message
   * counts only once whole, so a client trickling one frame is closed like a silent one.
   */
  #sweepIdle(): void {
    const timeout = this.#options.wsIdleTimeout;
    const now = performance.now();
    for (const ws of this.#sockets) {
      const connection = ws.getUserData();
      const silent = now - connection.lastSeen;
      if (connection.ending) {
        ws.close();
      } else if (silent >= timeout) {
        connection.ending = true;
        this.#metrics.rejected('TOPTALLY_ERR_IDLE_TIMEOUT');
        ws.end(CLOSE_GOING_AWAY, `TOPTALLY_ERR_IDLE_TIMEOUT: nothing received for ${timeout} ms`);
      } else if (silent >= timeout / 2 && !connection.pinged) {
        connection.pinged = true;
        ws.ping();
      }
    }
  }

  #tooSlow(ws: Socket): void {
    const backlog = ws.getBufferedAmount();
    this.#log.warn({ backlog, limit: this.#options.maxBackpressure }, 'closing a WebSocket that reads too slowly');
    this.emit('slow', 'closed', backlog);
    this.#metrics.rejected('TOPTALLY_ERR_SLOW_CONSUMER');
    ws.end(CLOSE_TRY_AGAIN_LATER, `TOPTALLY_ERR_SLOW_CONSUMER: backlog over ${this.#options.maxBackpressure} bytes`);
  }
}
