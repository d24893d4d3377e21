// Paths and the methods they allow: a known path with the wrong method is a 405 with Allow, any
// other path a 404, both with the usual JSON error body.

import { TopTallyError } from '../errors.ts';
import { challenge } from '../access/access.ts';
import { Exchange } from './http.ts';
import type { Logger } from '../log.ts';
import type { RequestScreen } from './request-screen.ts';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.ts';

/** The route of requests no path matched (a 404), so they count under one label. */
export const UNMATCHED = '/*';

/** A handler that answers later returns its promise, so that nothing it throws goes unanswered. */
export type Handler = (exchange: Exchange, req: HttpRequest) => void | Promise<unknown>;

/** Decides whether a request may reach its handler: null, or the error to refuse it with. */
export type Guard = (method: string, path: string, req: HttpRequest) => TopTallyError | null;

export class Router {
  readonly #routes = new Map<string, Map<string, Handler>>();
  readonly #track: (res: HttpResponse, route: string) => Exchange;
  readonly #guard: Guard | undefined;
  readonly #log: Logger | undefined;
  readonly #screen: RequestScreen | undefined;

  /**
   * `track` wraps each response, so the server can count what is in flight, by route; `guard` runs
   * before each handler (access control, the connection limit); `screen` before that, on every
   * request to a known path (framing, Host, Origin, CORS preflights); `log` hears of every handler
   * that threw or rejected, which is answered 500.
   */
  constructor(track: (res: HttpResponse, route: string) => Exchange, guard?: Guard, options: { log?: Logger; screen?: RequestScreen } = {}) {
    this.#track = track;
    this.#guard = guard;
    this.#log = options.log;
    this.#screen = options.screen;
  }

  add(method: 'GET' | 'POST', paths: readonly string[], handler: Handler): this {
    for (const path of paths) {
      let methods = this.#routes.get(path);
      if (!methods) this.#routes.set(path, (methods = new Map()));
      methods.set(method, handler);
    }
    return this;
  }

  paths(): string[] {
    return [...this.#routes.keys()];
  }

  methods(path: string): string[] {
    return [...(this.#routes.get(path)?.keys() ?? [])];
  }

  mount(app: TemplatedApp): void {
    for (const [path, methods] of this.#routes) {
      const allow = [...methods.keys()].join(', ');
      app.any(path, (res, req) => {
        const exchange = this.#track(res, path);
        const method = req.getMethod().toUpperCase();
        const screen = this.#screen;
        if (screen) {
          if (method === 'OPTIONS' && req.getHeader('access-control-request-method') !== '') return screen.preflight(req, exchange, allow);
          // Closed: the body of a request refused here is never read, and its framing may be in doubt.
          const refused = screen.http(method, req, exchange);
          if (refused) return exchange.error(refused, {}, true);
        }
        const handler = methods.get(method);
        if (handler) {
          const refused = this.#guard?.(method, path, req);
          // Closed: a refused request's body is never read.
          if (refused) return exchange.error(refused, challenge(refused), true);
          return this.#run(path, exchange, handler, req);
        }
        const err = new TopTallyError(
          'TOPTALLY_ERR_METHOD_NOT_ALLOWED',
          `${req.getMethod().toUpperCase()} is not allowed on ${path}; allowed: ${allow}`,
        );
        exchange.error(err, { Allow: allow }, true);
      });
    }
    app.any('/*', (res, req) => {
      const err = new TopTallyError('TOPTALLY_ERR_NOT_FOUND', `No such path: ${req.getUrl()}`);
      this.#track(res, UNMATCHED).error(err, {}, true);
    });
  }

  /** Runs a handler so that a throw, now or later, is answered 500 and logged, never left to crash the process. */
  #run(route: string, exchange: Exchange, handler: Handler, req: HttpRequest): void {
    let answering: void | Promise<unknown>;
    try {
      answering = handler(exchange, req);
    } catch (err) {
      return this.#failed(route, exchange, err);
    }
    answering?.catch((err: unknown) => this.#failed(route, exchange, err));
  }

  #failed(route: string, exchange: Exchange, err: unknown): void {
    this.#log?.error({ err, route }, 'a request failed unexpectedly; answered 500');
    exchange.fail(err);
  }
}
