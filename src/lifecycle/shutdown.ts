// A stop as a list of named steps under one deadline. The steps run in order, each waiting for the
// one before, until the deadline; from then on the steps left are started without being waited
// for, so nothing that hangs (a client that never finishes, a shard that cannot restart, a stalled
// fsync) can hold the process past the deadline. What was still running is logged by name.

import type { Logger } from '../log.ts';

export interface StopStep {
  name: string;
  run: () => unknown;
}

export interface StopOutcome {
  /** Steps still running when the deadline passed, or started after it. */
  late: string[];
}

export async function runStopSteps(steps: readonly StopStep[], graceMs: number, log: Logger): Promise<StopOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(resolve, graceMs, 'expired')));
  const late: string[] = [];
  let failure: { err: unknown } | null = null;
  try {
    for (const step of steps) {
      const running = Promise.resolve().then(step.run);
      const settled = running.then(
        () => 'done' as const,
        (err: unknown) => {
          log.error({ step: step.name, err: err instanceof Error ? err.message : String(err) }, `stop step "${step.name}" failed`);
          failure ??= { err };
          return 'done' as const;
        },
      );
      if (late.length > 0 || (await Promise.race([settled, expired])) === 'expired') late.push(step.name);
    }
  } finally {
    clearTimeout(timer);
  }
  if (late.length > 0) {
    log.error({ late, graceMs }, `stop grace of ${graceMs} ms over; not waiting for: ${late.join(', ')}`);
  }
  if (failure) throw (failure as { err: unknown }).err;
  return { late };
}
