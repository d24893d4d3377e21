// How request bodies are read, from the configuration: one budget and one buffer pool per server.

import type { Config } from '../config.ts';
import { BodyBudget } from './body-budget.ts';
import { BodyBuffers } from './body-buffers.ts';
import { BodyDeadlines } from './body-deadlines.ts';
import type { BodyReading } from './http.ts';

export function bodyReading(config: Pick<Config, 'bodyTimeout' | 'maxInflightBytes'>): BodyReading {
  return { deadlines: new BodyDeadlines(config.bodyTimeout), buffers: new BodyBuffers(), budget: new BodyBudget(config.maxInflightBytes) };
}
