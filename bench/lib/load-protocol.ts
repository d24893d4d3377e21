/**
 * What a load generator process tells the harness, one JSON object per stdout line. The harness reads
 * the server's CPU time at `phase-start` and `phase-end` of each measured phase, so the window covers the
 * load and nothing else (not process start-up, not pool building, not the drain after the deadline).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ownCpuMsWithChildren } from './proc.js';

export type Phase = 'warmup' | 'measure';

/** What one phase of load achieved, as seen by the generator. */
export interface LoadReport {
  /** Wall time of the load itself. */
  durationS: number;
  /** Completed requests: HTTP responses, or acked WebSocket frames. */
  requests: number;
  /** Counter objects the server accepted (2xx responses or acks). */
  counters: number;
  /** Non-2xx responses, socket errors, timeouts, error frames. */
  errors: number;
  firstError?: string;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Generator's own CPU during the phase, all threads (and its child processes, such as wrk). */
  generatorCpuMs: number;
  /** Scenario-specific figures (Q's query latencies, say), shown in that scenario's own table. */
  extra?: Record<string, number>;
}

export type GeneratorMessage =
  | { kind: 'phase-start'; phase: Phase; index: number }
  | { kind: 'phase-end'; phase: Phase; index: number; report: LoadReport };

export function assertNever(value: never, what: string): never {
  throw new Error(`unknown ${what}: ${JSON.stringify(value)}`);
}

/** Parses one stdout line; non-JSON lines (stray logs) give undefined, unknown kinds throw. */
export function parseGeneratorLine(line: string): GeneratorMessage | undefined {
  if (!line.startsWith('{')) return undefined;
  const message = JSON.parse(line) as GeneratorMessage;
  switch (message.kind) {
    case 'phase-start':
    case 'phase-end':
      return message;
    default:
      return assertNever(message, 'generator message kind');
  }
}

// ---------------------------------------------------------------------------------------------------
// Generator side

/**
 * The counts a driver measures; the phase runner adds CPU, and the wall time unless the driver knows
 * the load's duration better itself (wrk reports its own).
 */
export type LoadCounts = Omit<LoadReport, 'durationS' | 'generatorCpuMs'> & { durationS?: number };

export interface LoadDriver {
  /**
   * Builds the body pool once, before the first phase. Its timestamps are the current second then, so
   * they are at most one cell's length (under 30 s) old by the last phase: well inside any window.
   */
  prepare(): void | Promise<void>;
  /**
   * Applies load for `durationS` and returns what completed by the deadline. Calls `started()` once
   * connections are set up and the first request is about to go, which is where the window opens.
   */
  run(durationS: number, started: () => void, phase: Phase): Promise<LoadCounts>;
  /** Lets in-flight work finish after the deadline, outside the measured window. */
  settle?(): Promise<void>;
}

export interface PhasePlan {
  warmupS: number;
  durationS: number;
  repeats: number;
}

/** Reads the phase plan from BENCH_WARMUP_S, BENCH_DURATION_S and BENCH_REPEATS. */
export function phasePlanFromEnv(): PhasePlan {
  return {
    warmupS: numberEnv('BENCH_WARMUP_S', 1),
    durationS: numberEnv('BENCH_DURATION_S', 5),
    repeats: numberEnv('BENCH_REPEATS', 1),
  };
}

export function numberEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got ${JSON.stringify(raw)}`);
  return value;
}

function send(message: GeneratorMessage): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** Runs an optional warm-up and then `repeats` measured phases, reporting each on stdout. */
export async function runPhases(driver: LoadDriver, plan: PhasePlan): Promise<void> {
  const phases: Array<{ phase: Phase; index: number; durationS: number }> = [];
  if (plan.warmupS > 0) phases.push({ phase: 'warmup', index: 0, durationS: plan.warmupS });
  for (let i = 0; i < plan.repeats; i++) phases.push({ phase: 'measure', index: i, durationS: plan.durationS });

  await driver.prepare();
  for (const { phase, index, durationS } of phases) {
    let cpuBefore: number | undefined;
    let startedAt = 0;
    const counts = await driver.run(
      durationS,
      () => {
        send({ kind: 'phase-start', phase, index });
        cpuBefore = ownCpuMsWithChildren();
        startedAt = performance.now();
      },
      phase,
    );
    const wallMs = performance.now() - startedAt;
    if (cpuBefore === undefined) throw new Error(`${phase} phase ${index} finished without starting`);
    send({
      kind: 'phase-end',
      phase,
      index,
      report: { durationS: wallMs / 1000, ...counts, generatorCpuMs: ownCpuMsWithChildren() - cpuBefore },
    });
    await driver.settle?.();
  }
}

/**
 * Entry-point wrapper for generator processes: a failure becomes one `fatal:` line on stderr (which the
 * harness quotes in the report) and exit code 1, instead of a stack trace and lingering sockets.
 */
export async function generatorMain(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    process.stderr.write(`fatal: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}

/** True when this module's importer is the process entry point (`node --import tsx file.ts`). */
export function isMain(importMetaUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && fileURLToPath(importMetaUrl) === path.resolve(entry);
}
