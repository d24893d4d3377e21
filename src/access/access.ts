// Who may do what. Two scopes: `ingest` (post counters) and `read` (stats, metrics, subscriptions).
// A scope with no tokens configured is open; a token grants the scopes it is listed under (list it
// under both for both). Tokens are compared as SHA-256 digests with timingSafeEqual, against every
// configured token without stopping at a match, so the time taken says nothing about any token.

import { createHash, timingSafeEqual } from 'node:crypto';
import { TopTallyError } from '../errors.ts';

export type Scope = 'ingest' | 'read';

export interface AccessTokens {
  ingest: readonly string[];
  read: readonly string[];
}

/** What a request or connection may do: its scopes, and whether it presented a token at all. */
export interface Grant {
  scopes: ReadonlySet<Scope>;
  presented: boolean;
}

const digest = (token: string): Buffer => createHash('sha256').update(token).digest();

export class AccessControl {
  readonly #tokens: { digest: Buffer; scope: Scope }[];
  readonly #open: ReadonlySet<Scope>;

  constructor(tokens: AccessTokens) {
    this.#tokens = [
      ...tokens.ingest.map((token) => ({ digest: digest(token), scope: 'ingest' as const })),
      ...tokens.read.map((token) => ({ digest: digest(token), scope: 'read' as const })),
    ];
    this.#open = new Set((['ingest', 'read'] as const).filter((scope) => tokens[scope].length === 0));
  }

  /** Scopes anyone has, without a token. */
  get open(): ReadonlySet<Scope> {
    return this.#open;
  }

  /**
   * The grant of a presented token (undefined: none presented): the open scopes plus the token's.
   * A token that matches no configured one is refused outright (401), even where a scope is open.
   */
  grant(token: string | undefined): Grant {
    if (token === undefined) return { scopes: this.#open, presented: false };
    const presented = digest(token);
    const scopes = new Set(this.#open);
    let known = false;
    for (const entry of this.#tokens) {
      if (timingSafeEqual(presented, entry.digest)) {
        scopes.add(entry.scope);
        known = true;
      }
    }
    if (!known && this.#tokens.length > 0) {
      throw new TopTallyError('TOPTALLY_ERR_UNAUTHORIZED', 'The token is not valid', { reason: 'invalid_token' });
    }
    return { scopes, presented: true };
  }

  /** Throws 401 (no token) or 403 (a token without the scope) unless the grant holds `scope`. */
  static require(grant: Grant, scope: Scope): void {
    if (grant.scopes.has(scope)) return;
    if (!grant.presented) {
      throw new TopTallyError('TOPTALLY_ERR_UNAUTHORIZED', `A token with the ${scope} scope is required (Authorization: Bearer <token>)`, {
        scope,
      });
    }
    throw new TopTallyError('TOPTALLY_ERR_FORBIDDEN', `The token does not have the ${scope} scope`, { scope });
  }
}

/**
 * The token of an `Authorization: Bearer <token>` header; undefined when the header is absent.
 * Any other scheme, or a malformed header, is a 401: a client that sends credentials we cannot
 * read must hear so, not be treated as anonymous.
 */
export function bearerToken(header: string): string | undefined {
  if (header === '') return undefined;
  const match = /^bearer +(\S+) *$/i.exec(header);
  if (!match) {
    throw new TopTallyError('TOPTALLY_ERR_UNAUTHORIZED', 'The Authorization header must be "Bearer <token>"', {
      reason: 'invalid_request',
    });
  }
  return match[1];
}

/** Headers of a 401 or 403 (RFC 6750 section 3); none for other errors. */
export function challenge(err: TopTallyError): Record<string, string> {
  if (err.code !== 'TOPTALLY_ERR_UNAUTHORIZED' && err.code !== 'TOPTALLY_ERR_FORBIDDEN') return {};
  const reason = err.code === 'TOPTALLY_ERR_FORBIDDEN' ? 'insufficient_scope' : err.details.reason;
  const scope = err.details.scope === undefined ? '' : `, scope="${String(err.details.scope)}"`;
  return { 'WWW-Authenticate': `Bearer realm="toptally"${reason ? `, error="${String(reason)}"` : ''}${scope}` };
}

/** Paths anyone may GET: probes, the API description and the dashboard's own files (no data). */
const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/openapi.json', '/asyncapi.json', '/']);

/**
 * The scope an HTTP route needs; null for public ones. Anything not listed needs a scope (read for
 * GET, ingest for POST), so a route added later is protected until someone decides otherwise.
 */
export function routeScope(method: string, path: string): Scope | null {
  if (method === 'POST') return 'ingest';
  if (PUBLIC_PATHS.has(path) || path.startsWith('/dashboard/')) return null;
  return 'read';
}
