// toptally send: counters as NDJSON (a file or stdin) streamed to the server's WebSocket in
// MessagePack batches, with at most --inflight batches awaiting their ack; a progress line on stderr
// and the final count on stdout.

import { createReadStream } from 'node:fs';
import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import type { ErrorBody } from '../errors.ts';
import type { ServerMessage } from '../api/ws-protocol.ts';
import { CliError, connect, DEFAULT_URL, onServerMessage, tokenHelp, TOKEN_OPTIONS, tokenFrom, wsUrl } from './connection.ts';
import { FrameEncoder, NotJsonError } from './frame-encoder.ts';
import { lineChunks } from './lines.ts';
import { parseCommand } from './usage.ts';

const HELP = `Usage: toptally send [options] [FILE]

Streams counters, one JSON object a line (NDJSON), from FILE (or stdin when FILE is - or missing)
to the server over WebSocket, in MessagePack batches, and prints how many the server acknowledged.
Stops at the first line that is not JSON (after sending the lines before it) or that the server
refuses (its whole batch is refused), naming the line.

Options:
  --url URL        the server (default ${DEFAULT_URL}; env TOPTALLY_URL)
  --batch N        counters per message (default 1000)
  --inflight N     messages awaiting their ack at once (default 16; lowered to the server's limit)
  --quiet          no progress line
${tokenHelp(19)}
  --help           show this text`;

interface Batch {
  id: number;
  frame: Buffer;
  /** The input line of each event, for error messages. */
  lines: number[];
}

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand('send', HELP, argv, parseOptions);
  if (typeof options === 'number') return options;
  const started = performance.now();
  let sender: Sender | undefined;
  const progress = new Progress(options.quiet, () => sender?.accepted ?? 0, started);
  try {
    sender = new Sender(await connect(options.url, options.token), options.inflight);
    const input = options.file === '-' ? process.stdin : createReadStream(options.file);
    try {
      await stream(input, sender, options.batch);
    } catch (err) {
      // What was sent before the failure still counts: wait for its acks before reporting.
      await sender.drain().catch(() => {});
      throw err;
    }
    await sender.drain();
    return 0;
  } catch (err) {
    if (!(err instanceof CliError) && (err as NodeJS.ErrnoException).code === undefined) throw err;
    progress.clear();
    process.stderr.write(`toptally send: ${(err as Error).message}\n`);
    return 1;
  } finally {
    progress.stop();
    const seconds = (performance.now() - started) / 1000;
    const accepted = sender?.accepted ?? 0;
    process.stdout.write(
      `sent ${accepted} counters (${sender?.entries ?? 0} domain entries) in ${seconds.toFixed(2)} s, ` +
        `${Math.round(accepted / seconds)} counters/s\n`,
    );
    sender?.close();
  }
}

/** Sends the input's lines in batches of `batchSize` events, each line numbered for error messages. */
async function stream(input: AsyncIterable<Buffer | string>, sender: Sender, batchSize: number): Promise<void> {
  const encoder = new FrameEncoder();
  let lines: number[] = [];
  let id = 0;
  let line = 0;
  const flush = async (): Promise<void> => {
    if (encoder.count === 0) return;
    await sender.send({ id: ++id, frame: encoder.finish(id), lines });
    lines = [];
  };
  for await (const { bytes, ends } of lineChunks(input)) {
    for (let i = 0, start = 0; i < ends.length; start = ends[i++] + 1) {
      line++;
      try {
        if (!encoder.add(bytes, start, ends[i])) continue;
      } catch (err) {
        if (!(err instanceof NotJsonError)) throw err;
        // The lines before it still go, so a rerun can start right after this one.
        await flush();
        throw new CliError(`line ${line}: not JSON: ${err.message}`);
      }
      lines.push(line);
      if (encoder.count === batchSize) await flush();
    }
  }
  await flush();
}

function parseOptions(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string', default: process.env.TOPTALLY_URL ?? DEFAULT_URL },
      batch: { type: 'string', default: '1000' },
      inflight: { type: 'string', default: '16' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      ...TOKEN_OPTIONS,
    },
  });
  if (values.help) return undefined;
  if (positionals.length > 1) throw new CliError(`expected at most one FILE, got ${positionals.length}`);
  return {
    url: wsUrl(values.url),
    batch: positive('--batch', values.batch),
    inflight: positive('--inflight', values.inflight),
    quiet: values.quiet,
    token: tokenFrom(values),
    file: positionals[0] ?? '-',
  };
}

function positive(name: string, raw: string): number {
  const value = Number(raw);
  if (!/^[0-9]+$/.test(raw) || value < 1 || value > 1_000_000) throw new CliError(`${name}: expected a whole number from 1 to 1000000, got ${raw}`);
  return value;
}

/** The WebSocket side: numbered batches, a window of unacknowledged ones, and the acks' totals. */
class Sender {
  accepted = 0;
  entries = 0;
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, Batch>();
  /** Batches the server refused for being over its in-flight limit, sent again as acks come. */
  readonly #retry: Batch[] = [];
  #window: number;
  #failure: CliError | null = null;
  #wake: (() => void) | null = null;

  constructor(socket: WebSocket, window: number) {
    this.#socket = socket;
    this.#window = window;
    onServerMessage(socket, (message) => this.#onMessage(message));
    socket.on('close', (code, reason) => {
      this.#fail(new CliError(`the server closed the connection (${code}${reason.length ? ` ${reason}` : ''})`));
    });
    socket.on('error', (err) => this.#fail(new CliError(`connection error: ${err.message}`)));
  }

  /** Sends the batch once fewer than the window await their ack. */
  async send(batch: Batch): Promise<void> {
    while (!this.#failure && this.#pending.size + this.#retry.length >= this.#window) await this.#wait();
    if (this.#failure) throw this.#failure;
    this.#post(batch);
  }

  /** Resolves once every batch sent is acknowledged; throws what went wrong otherwise. */
  async drain(): Promise<void> {
    while (!this.#failure && this.#pending.size + this.#retry.length > 0) await this.#wait();
    if (this.#failure) throw this.#failure;
  }

  close(): void {
    this.#socket.removeAllListeners('close');
    this.#socket.close();
  }

  #post(batch: Batch): void {
    this.#pending.set(batch.id, batch);
    this.#socket.send(batch.frame);
  }

  #onMessage(message: ServerMessage): void {
    if (message.type !== 'ack' && message.type !== 'error') return;
    const batch = typeof message.id === 'number' ? this.#pending.get(message.id) : undefined;
    if (!batch) {
      if (message.type === 'error') this.#fail(new CliError(`${message.error.code}: ${message.error.message}`));
      return;
    }
    this.#pending.delete(message.id as number);
    if (message.type === 'ack') {
      this.accepted += message.accepted;
      this.entries += message.counters;
    } else if (message.error.code === 'TOPTALLY_ERR_TOO_MANY_IN_FLIGHT') {
      this.#window = Math.max(1, Math.min(this.#window, Number(message.error.limit) || 1));
      this.#retry.push(batch);
    } else {
      this.#fail(new CliError(describe(batch, message.error)));
    }
    while (this.#retry.length > 0 && this.#pending.size < this.#window && !this.#failure) this.#post(this.#retry.shift()!);
    this.#notify();
  }

  #fail(err: CliError): void {
    this.#failure ??= err;
    this.#notify();
  }

  #wait(): Promise<void> {
    return new Promise((resolve) => (this.#wake = resolve));
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

function describe(batch: Batch, error: ErrorBody): string {
  const where =
    typeof error.index === 'number' && batch.lines[error.index] !== undefined
      ? `line ${batch.lines[error.index]}`
      : `lines ${batch.lines[0]}-${batch.lines[batch.lines.length - 1]}`;
  return `${where}: ${error.code}: ${error.message}`;
}

/** At most one progress line a second on stderr, rewritten in place on a terminal. */
class Progress {
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #tty = process.stderr.isTTY === true;

  constructor(quiet: boolean, accepted: () => number, started: number) {
    if (quiet) return;
    this.#timer = setInterval(() => {
      const seconds = (performance.now() - started) / 1000;
      const line = `toptally send: ${accepted()} counters acknowledged, ${Math.round(accepted() / seconds)}/s`;
      process.stderr.write(this.#tty ? `\r${line}\x1b[K` : `${line}\n`);
    }, 1000);
    this.#timer.unref();
  }

  clear(): void {
    if (this.#tty && this.#timer) process.stderr.write('\r\x1b[K');
  }

  stop(): void {
    clearInterval(this.#timer);
    this.clear();
  }
}
