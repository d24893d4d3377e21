// What every request to a known path passes before its handler, and every WebSocket upgrade before
// it is taken: unambiguous framing (framing.ts), then a Host and an Origin this service answers
// (origin-policy.ts). Also where CORS preflights are answered.

import type { Config } from '../config.ts';
import { TopTallyError } from '../errors.ts';
import type { Exchange } from './http.ts';
import { checkFraming } from './framing.ts';
import { OriginPolicy } from './origin-policy.ts';
import type { HttpRequest } from './uws.ts';

/**
 * Bodies any page may POST without a preflight (the CORS "simple" content types): from a browser
 * they would be a write nobody asked the server about, so a browser must send a JSON type.
 */
const SIMPLE_TYPES = new Set(['', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data']);

export class RequestScreen {
  readonly #policy: OriginPolicy;

  constructor(policy: OriginPolicy) {
    this.#policy = policy;
  }

  /** null, or the error to refuse an HTTP request with; an allowed cross-origin one gets its CORS headers. */
  http(method: string, req: HttpRequest, exchange: Exchange): TopTallyError | null {
    const framing = checkFraming(req);
    if (framing) return framing;
    const origin = req.getHeader('origin');
    const refused = this.#browser(req, origin);
    if (refused instanceof TopTallyError) return refused;
    if (refused === 'cors') exchange.headers = OriginPolicy.corsHeaders(origin);
    // Browsers send Origin with every POST; Sec-Fetch-Mode is the other sign of one.
    if (method === 'POST' && (origin !== '' || req.getHeader('sec-fetch-mode') !== '')) {
      const type = req.getHeader('content-type').split(';', 1)[0].trim().toLowerCase();
      if (SIMPLE_TYPES.has(type)) {
        return new TopTallyError(
          'TOPTALLY_ERR_UNSUPPORTED_MEDIA_TYPE',
          `A browser must send application/json or application/x-ndjson, not ${JSON.stringify(type)}: any web page can post that without asking`,
        );
      }
    }
    return null;
  }

  /** Answers a CORS preflight (OPTIONS with Access-Control-Request-Method) to a path allowing `methods`. */
  preflight(req: HttpRequest, exchange: Exchange, methods: string): void {
    const origin = req.getHeader('origin');
    const allowed = this.#browser(req, origin);
    if (allowed instanceof TopTallyError) return exchange.error(allowed, {}, true);
    if (allowed !== 'cors') {
      const err = new TopTallyError('TOPTALLY_ERR_ORIGIN_NOT_ALLOWED', 'A preflight needs an Origin listed in --allowed-origins');
      return exchange.error(err, {}, true);
    }
    exchange.send(204, 'text/plain', '', OriginPolicy.preflightHeaders(origin, methods));
  }

  /** null, or the error to refuse a WebSocket upgrade with: browsers send Origin on every one. */
  upgrade(req: HttpRequest): TopTallyError | null {
    const refused = this.#browser(req, req.getHeader('origin'));
    return refused instanceof TopTallyError ? refused : null;
  }

  #browser(req: HttpRequest, origin: string): 'same' | 'cors' | null | TopTallyError {
    const host = req.getHeader('host');
    return this.#policy.checkHost(host) ?? this.#policy.checkOrigin(origin, host);
  }
}

export function requestScreen(config: Pick<Config, 'host' | 'allowedHosts' | 'allowedOrigins'>): RequestScreen {
  return new RequestScreen(new OriginPolicy({ listenHost: config.host, allowedHosts: config.allowedHosts, allowedOrigins: config.allowedOrigins }));
}
