// The bin's entry point: a subcommand (send, watch), or the service: configuration, start, and a
// graceful stop on SIGINT/SIGTERM.

import { startToptally, type Toptally } from './app.ts';
import { runCommand } from './cli/index.ts';
import { tuneCollector } from './collector.ts';
import { ConfigError, helpText, loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { version } from './version.ts';

export async function main(argv: readonly string[]): Promise<void> {
  const exitCode = await runCommand(argv);
  if (exitCode !== undefined) {
    process.exitCode = exitCode;
    return;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText() + '\n');
    return;
  }
  if (argv.includes('--version')) {
    process.stdout.write(`${version}\n`);
    return;
  }
  let config;
  try {
    config = loadConfig(argv);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`toptally: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  tuneCollector();
  const log = createLogger(config.logLevel);
  // Listened for before start-up: a signal that arrives while it runs, or just after the start
  // line, would otherwise end the process at once instead of stopping it once it has started.
  let server: Toptally | undefined;
  let signalled: string | undefined;
  const shutdown = (signal: string): void => {
    signalled = signal;
    if (!server) return;
    log.info({ signal }, 'stopping: no new requests, answering those in flight');
    server.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  try {
    server = await startToptally(config, { log });
  } catch (err) {
    process.stderr.write(`toptally: ${(err as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  if (signalled) shutdown(signalled);
}

if (import.meta.url === `file://${process.argv[1]}`) await main(process.argv.slice(2));
