/**
 * Benchmark: every scenario against toptally and the baselines, each server and each load generator
 * in its own process (pinned to cores 0 and 1 when taskset is available), loopback only.
 *
 *   node --import tsx bench/run.ts [--quick] [--only S,B,WS,Q,C] [--targets toptally,naive-uws]
 *
 * Prints Markdown tables to stdout (progress goes to stderr) and writes bench/results/<time>.json.
 * Environment: TOPTALLY_CMD (see lib/targets.ts), BENCH_SEED, BENCH_UNIVERSE, BENCH_S_GENERATOR
 * (auto, wrk or autocannon; see scenarios/http-ingest.ts).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { numberEnv, type PhasePlan } from './lib/load-protocol.js';
import { comparisonTable, CONTENDED_PCT, detailsTable, GENERATOR_BOUND_PCT, okCell, resultsTable, type CellResult } from './lib/report.js';
import { freePort, pinning, repoRoot, ServerProcess } from './lib/server-process.js';
import { allTargets, type Target } from './lib/targets.js';
import { WRK_PATH } from './lib/wrk-load.js';
import { S_GENERATOR } from './scenarios/http-ingest.js';
import { scenarios } from './scenarios/index.js';
import type { Scenario } from './scenarios/types.js';

// Full: about 7 minutes for the 16 cells (15 without redis-server); quick: about 2 (Q and C fill a million domains either way).
const PLANS: Record<'full' | 'quick', PhasePlan> = {
  full: { warmupS: 2, durationS: 8, repeats: 3 },
  quick: { warmupS: 1, durationS: 4, repeats: 1 },
};

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    targets: { type: 'string' },
  },
});

function listFlag(value: string | undefined, known: readonly string[], what: string): Set<string> | undefined {
  if (value === undefined) return undefined;
  const wanted = new Set(value.split(',').map((s) => s.trim()).filter((s) => s !== ''));
  for (const name of wanted) {
    if (!known.includes(name)) throw new Error(`unknown ${what} ${JSON.stringify(name)}; known: ${known.join(', ')}`);
  }
  return wanted;
}

const plan = flags.quick ? PLANS.quick : PLANS.full;
const seed = numberEnv('BENCH_SEED', 42);
const universe = numberEnv('BENCH_UNIVERSE', 10_000);
const targets = allTargets();
const onlyScenarios = listFlag(flags.only, scenarios.map((s) => s.id), 'scenario');
const onlyTargets = listFlag(flags.targets, targets.map((t) => t.name), 'target');
const selectedScenarios = scenarios.filter((s) => onlyScenarios?.has(s.id) ?? true);
const selectedTargets = targets.filter((t) => onlyTargets?.has(t.name) ?? true);

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** A target that failed to start is not retried for later scenarios; the reason is reused. */
const startFailures = new Map<string, string>();

async function runCell(scenario: Scenario, target: Target): Promise<CellResult> {
  const label = `${scenario.id} × ${target.name}`;
  const cell = (status: 'skipped' | 'failed', note: string): CellResult => ({
    scenario: scenario.id,
    target: target.name,
    subject: target.subject,
    status,
    note,
  });

  const earlier = startFailures.get(target.name);
  if (earlier !== undefined) return cell('skipped', earlier);

  const port = await freePort();
  // An empty data directory for every cell: toptally would otherwise recover the previous cell's counters.
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'toptally-bench-'));
  const removeDataDir = () => rmSync(dataDir, { recursive: true, force: true });
  let server: ServerProcess;
  try {
    const spec = target.spec(port, dataDir);
    if (scenario.serverCores === 'all') delete spec.cpu;
    server = await ServerProcess.start(spec, { port });
  } catch (error) {
    const reason = `failed to start (${target.command}): ${(error as Error).message}`;
    startFailures.set(target.name, reason);
    log(`${label}: SKIPPED — ${reason}`);
    removeDataDir();
    return cell('skipped', reason);
  }

  try {
    log(`${label}: running on 127.0.0.1:${port}`);
    const { measurements, details } = await scenario.run({ server, plan, seed, universe, ...(target.generator === undefined ? {} : { generator: target.generator }) });
    const result = okCell(scenario.id, target.name, target.subject, measurements, details);
    const m = result.median!;
    log(
      `${label}: ${Math.round(m.requestsPerS)} req/s, ${Math.round(m.countersPerS)} counters/s, ` +
        `gen CPU ${Math.round(m.generatorCpuPct)}%, other CPU ${Math.round(m.otherCpuPct)}%` +
        `${m.errors > 0 ? `, ${m.errors} errors` : ''}` +
        (result.details === undefined
          ? ''
          : `; ${Object.entries(result.details).map(([key, value]) => `${key} ${Number(value.toPrecision(3))}`).join(', ')}`),
    );
    return result;
  } catch (error) {
    const reason = (error as Error).message;
    log(`${label}: FAILED — ${reason}`);
    if (server.hasExited) log(server.tail());
    return cell('failed', reason);
  } finally {
    await server.stop();
    removeDataDir();
  }
}

const wrkHint =
  S_GENERATOR.missingWrk && selectedScenarios.some((s) => s.id === 'S')
    ? `${WRK_PATH} is missing, so S runs on autocannon, which saturates its own core before the servers do ` +
      '(S rows then compare generators, not servers). Install wrk for S figures that measure the servers: ' +
      '`apt-get install wrk` (Debian/Ubuntu).'
    : undefined;

const startedAt = new Date();
if (wrkHint !== undefined) log(`bench: ${wrkHint}`);
log(
  `bench: ${flags.quick ? 'quick' : 'full'} plan ${JSON.stringify(plan)}, ` +
    `pinning ${pinning === undefined ? 'off (no taskset or one core)' : `server→cpu${pinning.server}, generator→cpu${pinning.generator}`}`,
);
const cells: CellResult[] = [];
for (const scenario of selectedScenarios) {
  for (const target of selectedTargets) {
    const speaks = target.transports.includes(scenario.transport) && (target.scenarios?.includes(scenario.id) ?? true);
    if (speaks && (scenario.targets?.includes(target.name) ?? true)) cells.push(await runCell(scenario, target));
  }
}

const subject = targets.find((t) => t.subject)!;
const output = {
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  node: process.version,
  cpus: os.availableParallelism(),
  cpuModel: os.cpus()[0]?.model,
  pinning: pinning ?? null,
  plan,
  seed,
  universe,
  generatorBoundAbovePct: GENERATOR_BOUND_PCT,
  contendedAbovePct: CONTENDED_PCT,
  scenarios: selectedScenarios.map(({ id, title, transport, generator }) => ({ id, title, transport, generator })),
  targets: selectedTargets.map(({ name, subject, command, transports }) => ({ name, subject, command, transports })),
  cells,
};
const resultsDir = path.join(repoRoot, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
const resultsFile = path.join(resultsDir, `${startedAt.toISOString().slice(0, 19).replaceAll(':', '-')}Z.json`);
writeFileSync(resultsFile, `${JSON.stringify(output, null, 2)}\n`);

const detailSections = selectedScenarios.flatMap((s) => {
  const own = cells.filter((c) => c.scenario === s.id);
  if (s.details === undefined || own.length === 0) return [];
  return [`### ${s.details.title}`, '', detailsTable(s.details.columns, own), '', ...(s.details.notes ?? []).map((n) => `- ${n}`), ''];
});
const compared = new Set(selectedScenarios.filter((s) => s.compare !== false).map((s) => s.id));
const comparedCells = cells.filter((c) => compared.has(c.scenario));

const lines = [
  `## toptally benchmark (${flags.quick ? 'quick' : 'full'}: ${plan.repeats} × ${plan.durationS} s per cell after ${plan.warmupS} s warm-up${plan.repeats > 1 ? ', medians' : ''})`,
  '',
  ...selectedScenarios.map((s) => `- **${s.id}** (generator: ${s.generator}): ${s.title}`),
  ...(wrkHint === undefined ? [] : [`- **Note**: ${wrkHint}`]),
  `- ${subject.name}: \`${subject.command}\`, durability ${process.env['DURABILITY'] ?? 'fsync (the default)'}, a fresh data directory per cell${startFailures.has(subject.name) ? ` — **skipped**: ${startFailures.get(subject.name)}` : ''}`,
  ...selectedTargets
    .filter((t) => t.generator !== undefined && selectedScenarios.some((s) => t.scenarios?.includes(s.id) ?? true))
    .map((t) => `- ${t.name} (${t.scenarios?.join(', ') ?? 'every scenario'}): \`${t.command}\`, load from its own generator \`${t.generator}\``),
  `- Node ${process.version}, ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model ?? 'unknown model'}), ` +
    (pinning === undefined
      ? 'no pinning'
      : `generator pinned to cpu${pinning.generator}; server pinned to cpu${pinning.server} in ${scenarios.filter((s) => s.serverCores === 'one').map((s) => s.id).join(', ')}, on all cores elsewhere`) +
    `; CPU = server user+sys time from /proc; generator-bound = generator above ${GENERATOR_BOUND_PCT}% of its core; ` +
    `contended = other processes above ${CONTENDED_PCT}% of a core during the cell`,
  '',
  resultsTable(cells),
  '',
  ...(comparedCells.length === 0 ? [] : [`### ${subject.name} / baseline`, '', comparisonTable(comparedCells), '']),
  ...detailSections,
  `JSON: ${path.relative(repoRoot, resultsFile)}`,
];
process.stdout.write(`${lines.join('\n')}\n`);
