// Structured JSON logs on stdout: one line per start, stop and failure, none per request at info.

import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'toptally' } }, destination);
}
