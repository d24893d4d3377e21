// toptally watch: subscribes to the top of the last round minute or hour and redraws it at every
// push; with --live, also the running top of the open window.

import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import { MAX_LIMIT } from '../api/params.ts';
import type { TopFrame } from '../api/ws-protocol.ts';
import { CliError, connect, DEFAULT_URL, onServerMessage, TOKEN_OPTIONS, tokenFrom, tokenHelp, wsUrl } from './connection.ts';
import { parseCommand } from './usage.ts';

const HELP = `Usage: toptally watch [options]

A live view of the top domains: the last round window, redrawn each time a window closes (or a late
counter changes it), and with --live the running top of the open window.

Options:
  --url URL          the server (default ${DEFAULT_URL}; env TOPTALLY_URL)
  --window W         minute or hour (default minute)
  --limit N          how many domains (default 10)
  --live             also show the open window's running top
${tokenHelp(21)}
  --help             show this text

When the connection is lost (the server restarts), it reconnects, waiting 0.25 s, then twice as long
each time, up to 5 s; Ctrl-C ends it.`;

interface View {
  final?: TopFrame;
  live?: TopFrame;
}

/** Waits between reconnection attempts: doubling from 250 ms, at most 5 s. */
const RETRY_FIRST_MS = 250;
const RETRY_MOST_MS = 5000;

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand('watch', HELP, argv, parseOptions);
  if (typeof options === 'number') return options;
  let interrupt: () => void = () => {};
  const interrupted = new Promise<null>((resolve) => (interrupt = () => resolve(null)));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  let socket: WebSocket;
  try {
    socket = await connect(options.url, options.token);
  } catch (err) {
    process.stderr.write(`toptally watch: ${(err as Error).message}\n`);
    return 1;
  }
  const view: View = {};
  for (;;) {
    const closed = watch(socket, view, options);
    const outcome = await Promise.race([closed, interrupted]);
    if (outcome === null) {
      socket.terminate();
      return 0;
    }
    const [code, reason] = outcome;
    process.stderr.write(`toptally watch: the server closed the connection (${code}${reason ? ` ${reason}` : ''}); reconnecting\n`);
    // A server restarting refuses connections for a while: try again, waiting longer each time.
    for (let attempt = 0; ; attempt++) {
      const wait = Math.min(RETRY_FIRST_MS * 2 ** attempt, RETRY_MOST_MS);
      let timer: NodeJS.Timeout | undefined;
      const slept = await Promise.race([new Promise<true>((resolve) => (timer = setTimeout(() => resolve(true), wait))), interrupted]);
      clearTimeout(timer);
      if (slept === null) return 0;
      try {
        socket = await connect(options.url, options.token);
        process.stderr.write(`toptally watch: reconnected to ${options.url}\n`);
        break;
      } catch (err) {
        // Refused for its token: waiting will not change that.
        if (err instanceof CliError && (err.status === 401 || err.status === 403)) {
          process.stderr.write(`toptally watch: ${err.message}\n`);
          return 1;
        }
      }
    }
  }
}

/** Subscribes on `socket` and redraws `view` at each push; resolves with the close code and reason. */
function watch(socket: WebSocket, view: View, options: Options): Promise<[number, string]> {
  const tty = process.stdout.isTTY === true;
  onServerMessage(socket, (message) => {
    if (message.type === 'error') {
      process.stderr.write(`toptally watch: ${message.error.code}: ${message.error.message}\n`);
      return;
    }
    if (message.type !== 'top') return;
    if (message.final) {
      view.final = message;
      if (view.live && view.live.from <= message.from) view.live = undefined;
    } else if (!view.final || message.from > view.final.from) {
      view.live = message;
    }
    const text = render(view, options);
    process.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
  });
  socket.send(JSON.stringify({ type: 'subscribe', window: options.window, limit: options.limit, live: options.live }));
  socket.on('error', () => {}); // shows up as the close below
  return new Promise((resolve) => socket.on('close', (code, reason) => resolve([code, reason.toString()])));
}

type Options = Exclude<ReturnType<typeof parseOptions>, undefined>;

function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', default: process.env.TOPTALLY_URL ?? DEFAULT_URL },
      window: { type: 'string', default: 'minute' },
      limit: { type: 'string', default: '10' },
      live: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      ...TOKEN_OPTIONS,
    },
  });
  if (values.help) return undefined;
  const window = values.window;
  if (window !== 'minute' && window !== 'hour') throw new CliError(`--window: expected minute or hour, got ${window}`);
  const limit = Number(values.limit);
  if (!/^[0-9]+$/.test(values.limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new CliError(`--limit: expected a whole number from 1 to ${MAX_LIMIT}, got ${values.limit}`);
  }
  return { url: wsUrl(values.url), window, limit, live: values.live, token: tokenFrom(values) } as const;
}

function render(view: View, options: Options): string {
  const lines = [`toptally watch: top ${options.limit} by ${options.window}, ${options.url}`, ''];
  if (view.final) lines.push(`last round ${options.window} ${span(view.final)}`, ...table(view.final));
  if (options.live) {
    lines.push('', view.live ? `running ${options.window} ${span(view.live)} (live)` : `running ${options.window}: no counters yet`);
    if (view.live) lines.push(...table(view.live));
  }
  return lines.join('\n') + '\n';
}

function span(frame: TopFrame): string {
  const from = new Date(frame.from * 1000).toISOString();
  const to = new Date(frame.to * 1000).toISOString();
  return `${from.slice(0, 10)} ${from.slice(11, 16)}–${to.slice(11, 16)} UTC`;
}

function table(frame: TopFrame): string[] {
  if (frame.top.length === 0) return ['     (no counters)'];
  const width = Math.min(60, Math.max(...frame.top.map((e) => e.domain.length)));
  return frame.top.map((e, i) => `${String(i + 1).padStart(4)}  ${e.domain.padEnd(width)}  ${String(e.count).padStart(12)}`);
}
