import { C } from './cardinality.js';
import { B, S } from './http-ingest.js';
import { Q } from './queries.js';
import type { Scenario } from './types.js';
import { WS } from './ws-ingest.js';

/** Every scenario, in report order. */
export const scenarios: readonly Scenario[] = [S, B, WS, Q, C];
