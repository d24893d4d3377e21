// Query-string parameters of the stats endpoints, checked strictly: a typo is a 400, not a default.

import { TopTallyError } from '../errors.ts';
import type { WindowKind } from '../window.ts';

export interface StatsParams {
  window: WindowKind;
  limit: number;
  /** Unix seconds; undefined means now. */
  at: number | undefined;
  /** The window still open at `at` (running counts) instead of the last round one. */
  open: boolean;
}

export const MAX_LIMIT = 1000;
export const DEFAULT_LIMIT = 10;

function invalid(name: string, message: string): never {
  throw new TopTallyError('TOPTALLY_ERR_INVALID_PARAMETER', message, { parameter: name });
}

function wholeNumber(name: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!/^[0-9]{1,16}$/.test(raw) || value < min || value > max) {
    invalid(name, `"${name}" must be a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}`);
  }
  return value;
}

/** Parses `query`; `window` is fixed by the path for the seed's endpoints. */
export function parseStatsParams(query: string, fixedWindow?: WindowKind): StatsParams {
  const params = new URLSearchParams(query);
  const allowed = fixedWindow ? ['limit', 'at'] : ['window', 'limit', 'at', 'open'];
  for (const name of params.keys()) {
    if (!allowed.includes(name)) invalid(name, `Unknown parameter "${name}"; known: ${allowed.join(', ')}`);
  }
  let window = fixedWindow ?? 'minute';
  const rawWindow = params.get('window');
  if (rawWindow !== null && !fixedWindow) {
    if (rawWindow !== 'minute' && rawWindow !== 'hour') {
      invalid('window', `"window" must be "minute" or "hour", not ${JSON.stringify(rawWindow)}`);
    }
    window = rawWindow;
  }
  const rawLimit = params.get('limit');
  const rawAt = params.get('at');
  const rawOpen = params.get('open');
  if (rawOpen !== null && rawOpen !== 'true' && rawOpen !== 'false') {
    invalid('open', `"open" must be "true" or "false", not ${JSON.stringify(rawOpen)}`);
  }
  return {
    window,
    limit: rawLimit === null ? DEFAULT_LIMIT : wholeNumber('limit', rawLimit, 1, MAX_LIMIT),
    at: rawAt === null ? undefined : wholeNumber('at', rawAt, 0, Number.MAX_SAFE_INTEGER),
    open: rawOpen === 'true',
  };
}
