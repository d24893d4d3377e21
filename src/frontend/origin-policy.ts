// Which Host and Origin headers a request may carry: the defence against web pages. A page on any
// site can make a browser send requests here; two headers say where they come from, and the browser
// sets both itself. `Host` is the name the browser resolved: a page that rebinds its own name to this
// machine's address (DNS rebinding) reads the answers as same-origin, so a name nobody configured is
// refused (421). `Origin` is the page: a page from another origin may not write or read (403), unless
// it is listed in --allowed-origins, in which case CORS headers let the browser give it the answer.
// IP addresses and localhost are always fine as a Host: rebinding needs a name the attacker controls.
// Clients that are not browsers send no Origin and whatever Host their URL has.

import net from 'node:net';
import { TopTallyError } from '../errors.ts';

export interface OriginPolicyOptions {
  /** The address listened on (--host): a name here is one the service is reached by. */
  listenHost: string;
  /** Host names (no port) accepted besides IP addresses and localhost; `*` takes any, `.example.com` a domain and its subdomains. */
  allowedHosts: readonly string[];
  /** Origins (`https://dash.example.com`) that may use the API from a browser besides the service's own; `*` any. */
  allowedOrigins: readonly string[];
}

/** The headers a cross-origin page may send, and the methods it may use. */
const CORS_ALLOW_HEADERS = 'authorization, content-type, idempotency-key';
const CORS_MAX_AGE = '600';
/** Acceptable Host headers remembered; a client inventing new ones gets them checked each time. */
const HOSTS_SEEN = 256;

export class OriginPolicy {
  readonly #hosts: ReadonlySet<string>;
  readonly #domains: readonly string[];
  readonly #anyHost: boolean;
  readonly #origins: ReadonlySet<string>;
  readonly #anyOrigin: boolean;
  /** Host headers found acceptable: clients send the same few on every request. */
  readonly #hostsSeen = new Set<string>();

  constructor({ listenHost, allowedHosts, allowedOrigins }: OriginPolicyOptions) {
    const hosts = allowedHosts.map((h) => h.toLowerCase());
    this.#anyHost = hosts.includes('*');
    this.#domains = hosts.filter((h) => h.startsWith('.'));
    this.#hosts = new Set([...hosts.filter((h) => !h.startsWith('.')), listenHost.toLowerCase()]);
    this.#anyOrigin = allowedOrigins.includes('*');
    this.#origins = new Set(allowedOrigins.map((o) => o.toLowerCase()));
  }

  /** 421 unless `host` (a Host header) names this service. An empty one is not a browser's. */
  checkHost(host: string): TopTallyError | null {
    if (host === '' || this.#anyHost || this.#hostsSeen.has(host)) return null;
    if (!this.#hostAllowed(host)) return hostRefused(host);
    if (this.#hostsSeen.size < HOSTS_SEEN) this.#hostsSeen.add(host);
    return null;
  }

  #hostAllowed(host: string): boolean {
    const name = hostName(host);
    if (name === null) return false;
    if (net.isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost') || this.#hosts.has(name)) return true;
    return this.#domains.some((domain) => name.endsWith(domain) || name === domain.slice(1));
  }

  /**
   * Whether `origin` (an Origin header) may use the API: 'same' for the service's own page (the
   * origin's host is the Host header), 'cors' for a listed one, null for none sent; a 403 otherwise.
   */
  checkOrigin(origin: string, host: string): 'same' | 'cors' | null | TopTallyError {
    if (origin === '') return null;
    const lower = origin.toLowerCase();
    let url: URL | undefined;
    try {
      url = new URL(lower);
    } catch {
      // "null" (a sandboxed page, a file) or garbage: no origin we could list
    }
    if (url && (url.protocol === 'http:' || url.protocol === 'https:') && url.host === host.toLowerCase()) return 'same';
    if (this.#anyOrigin || this.#origins.has(lower)) return 'cors';
    return new TopTallyError(
      'TOPTALLY_ERR_ORIGIN_NOT_ALLOWED',
      `Requests from pages of ${JSON.stringify(origin)} are refused; list the origin in --allowed-origins to allow them`,
      { origin: origin.slice(0, 200) },
    );
  }

  /** The headers that let a browser give a listed origin the answer. */
  static corsHeaders(origin: string): Record<string, string> {
    return { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' };
  }

  /** The answer to a listed origin's preflight for a path allowing `methods`. */
  static preflightHeaders(origin: string, methods: string): Record<string, string> {
    return {
      ...OriginPolicy.corsHeaders(origin),
      'Access-Control-Allow-Methods': methods,
      'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS,
      'Access-Control-Max-Age': CORS_MAX_AGE,
    };
  }
}

/** The name of a Host header (`example.com:5000`, `[::1]:5000`), lower case, without the port; null if malformed. */
function hostName(host: string): string | null {
  const match = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9._-]+))(?::[0-9]{1,5})?$/i.exec(host);
  if (!match) return null;
  return (match[1] ?? match[2]).toLowerCase().replace(/\.$/, '');
}

function hostRefused(host: string): TopTallyError {
  return new TopTallyError(
    'TOPTALLY_ERR_HOST_NOT_ALLOWED',
    `This server does not answer for Host ${JSON.stringify(host.slice(0, 200))}; list the name in --allowed-hosts to allow it`,
    { host: host.slice(0, 200) },
  );
}
