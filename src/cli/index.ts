// The bin's subcommands; any other first argument is taken as a server option by main.ts.

type Command = () => Promise<{ run(argv: string[]): Promise<number> }>;

const COMMANDS = new Map<string, Command>([
  ['send', () => import('./send.ts')],
  ['watch', () => import('./watch.ts')],
]);

/** Runs the subcommand named by argv[0] and returns its exit code, or undefined when there is none. */
export async function runCommand(argv: readonly string[]): Promise<number | undefined> {
  const command = COMMANDS.get(argv[0] ?? '');
  if (!command) return undefined;
  const { run } = await command();
  return run(argv.slice(1));
}
