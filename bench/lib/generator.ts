/**
 * Harness side of a load generator: spawns it on the generator core and brackets each measured phase
 * with readings of the server's CPU time.
 */
import { parseGeneratorLine, type LoadReport, type PhasePlan } from './load-protocol.js';
import { machineBusyMs, ManagedProcess, pinning, type ServerProcess } from './server-process.js';

export interface Measurement {
  report: LoadReport;
  /** Server CPU (all threads) between the phase's start and end messages. */
  serverCpuMs: number;
  /** Busy CPU of the whole machine over the same window: server, generator, and anything else. */
  machineBusyMs: number;
  /** What `probe` (see GeneratorHooks) moved by over the same window: NaN without one. */
  probed: number;
}

/** Read at the measured phase's start and end, so other figures cover exactly that phase. */
export interface GeneratorHooks {
  /** A cumulative reading (CPU ms of other processes, say): its difference lands in Measurement.probed. */
  probe?: () => number;
  /** Told when a measured phase starts and ends (for work that must run during it). */
  onPhase?: (kind: 'start' | 'end') => void;
}

export interface GeneratorSpec {
  name: string;
  /** Entry file relative to the repository root, run with `node --import tsx`. */
  entry: string;
  env: Record<string, string | number>;
}

/** Slack beyond the planned phases for start-up, pool building and drains before the generator is killed. */
const OVERRUN_MS = 30_000;

/** Runs the generator to completion and returns one measurement per measured phase. */
export async function runGenerator(spec: GeneratorSpec, server: ServerProcess, plan: PhasePlan, hooks: GeneratorHooks = {}): Promise<Measurement[]> {
  const env: Record<string, string> = {
    BENCH_PORT: String(server.port),
    BENCH_WARMUP_S: String(plan.warmupS),
    BENCH_DURATION_S: String(plan.durationS),
    BENCH_REPEATS: String(plan.repeats),
  };
  for (const [key, value] of Object.entries(spec.env)) env[key] = String(value);
  const generator = new ManagedProcess({
    name: spec.name,
    command: process.execPath,
    args: ['--import', 'tsx', spec.entry],
    env,
    ...(pinning === undefined ? {} : { cpu: pinning.generator }),
  });

  const measurements: Measurement[] = [];
  let atStart: { serverCpuMs: number; machineBusyMs: number; probed: number } | undefined;
  const probe = hooks.probe ?? (() => Number.NaN);
  let protocolError: Error | undefined;
  generator.onLine((line) => {
    try {
      const message = parseGeneratorLine(line);
      if (message === undefined || message.phase !== 'measure') return;
      if (message.kind === 'phase-start') {
        atStart = { serverCpuMs: server.cpuMs(), machineBusyMs: machineBusyMs(), probed: probe() };
        hooks.onPhase?.('start');
      } else {
        if (atStart === undefined) throw new Error(`phase-end without phase-start: ${line}`);
        measurements.push({
          report: message.report,
          serverCpuMs: server.cpuMs() - atStart.serverCpuMs,
          machineBusyMs: machineBusyMs() - atStart.machineBusyMs,
          probed: probe() - atStart.probed,
        });
        hooks.onPhase?.('end');
        atStart = undefined;
      }
    } catch (error) {
      protocolError ??= error as Error;
      void generator.stop();
    }
  });

  const budgetMs = (plan.warmupS + plan.durationS * plan.repeats) * 1000 + OVERRUN_MS;
  const watchdog = setTimeout(() => {
    protocolError ??= new Error(`${spec.name} still running after ${budgetMs} ms`);
    void generator.stop();
  }, budgetMs);
  const { code } = await generator.exited;
  clearTimeout(watchdog);

  if (protocolError !== undefined) throw protocolError;
  if (code !== 0) throw new Error(generator.describeExit());
  if (measurements.length !== plan.repeats) {
    throw new Error(`${spec.name} reported ${measurements.length} of ${plan.repeats} phases`);
  }
  return measurements;
}
