// Pushes go out through uWS topics, one per (window, limit, final or live, encoding): each update is
// encoded once and published once, whatever the number of subscribers.
//
// Slow subscribers: before a publish, every subscriber whose backlog is over --max-backpressure is
// dealt with. A final top cannot be skipped, so that subscriber is closed (1013, via `tooSlow`). A live
// top is superseded by the next one anyway, so the subscriber leaves the live topic ("held") until
// its backlog drains below half the limit; then it rejoins and is sent the newest running top. No
// backlog grows past the limit by more than one round of pushes.

import type { TopFrame } from '../api/ws-protocol.ts';
import { encodeFrame } from './ws-codec.ts';
import type { TemplatedApp, WebSocket } from './uws.ts';
import type { WindowKind } from '../window.ts';

export interface Subscription {
  kind: WindowKind;
  limit: number;
  live: boolean;
  /** Pushes go out as MessagePack (binary frames) or JSON (text frames), as the subscribe came. */
  binary: boolean;
}

/** What the topics need of a connection's user data. */
export interface Subscriber {
  /** Live topics left while the backlog is over the limit. */
  held: Map<string, Subscription>;
}

export interface SlowPolicy<S extends Subscriber> {
  limit: number;
  tooSlow(ws: WebSocket<S>): void;
  held(ws: WebSocket<S>): void;
}

function topicName(kind: WindowKind, limit: number, final: boolean, binary: boolean): string {
  return `${kind}/${limit}/${final ? 'final' : 'live'}/${binary ? 'msgpack' : 'json'}`;
}

function topicsOf(sub: Subscription): string[] {
  const final = topicName(sub.kind, sub.limit, true, sub.binary);
  return sub.live ? [final, topicName(sub.kind, sub.limit, false, sub.binary)] : [final];
}

export class WsTopics<S extends Subscriber> {
  readonly #app: TemplatedApp;
  readonly #policy: SlowPolicy<S>;
  /** Subscribers per topic, kept here too so the policy can look at their backlogs. */
  readonly #members = new Map<string, Set<WebSocket<S>>>();

  constructor(app: TemplatedApp, policy: SlowPolicy<S>) {
    this.#app = app;
    this.#policy = policy;
  }

  join(ws: WebSocket<S>, sub: Subscription): void {
    for (const name of topicsOf(sub)) {
      let members = this.#members.get(name);
      if (!members) this.#members.set(name, (members = new Set()));
      members.add(ws);
      ws.subscribe(name);
    }
  }

  /** `open` is false from the close handler, where uWS drops the socket's topics itself. */
  leave(ws: WebSocket<S>, sub: Subscription, open: boolean): void {
    for (const name of topicsOf(sub)) {
      const members = this.#members.get(name);
      members?.delete(ws);
      if (members?.size === 0) this.#members.delete(name);
      if (open && !ws.getUserData().held.delete(name)) ws.unsubscribe(name);
    }
  }

  push(kind: WindowKind, limit: number, frame: TopFrame): void {
    for (const binary of [false, true]) {
      const name = topicName(kind, limit, frame.final, binary);
      const members = this.#members.get(name);
      if (!members) continue;
      for (const ws of members) {
        const { held } = ws.getUserData();
        if (held.has(name) || ws.getBufferedAmount() <= this.#policy.limit) continue;
        if (frame.final) {
          this.#policy.tooSlow(ws);
        } else {
          held.set(name, { kind, limit, live: true, binary });
          ws.unsubscribe(name);
          this.#policy.held(ws);
        }
      }
      if (members.size > 0) this.#app.publish(name, encodeFrame(frame, binary), binary);
    }
  }

  /** From the drain handler: rejoins held live topics once the backlog is low; returns them. */
  resume(ws: WebSocket<S>): Subscription[] {
    const { held } = ws.getUserData();
    if (held.size === 0 || ws.getBufferedAmount() > this.#policy.limit / 2) return [];
    const resumed = [...held];
    held.clear();
    for (const [name] of resumed) ws.subscribe(name);
    return resumed.map(([, sub]) => sub);
  }
}
