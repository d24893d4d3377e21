// A command's options: parsed, or its help printed (exit 0), or a usage error printed (exit 2).

export function parseCommand<O>(
  name: string,
  help: string,
  argv: string[],
  parse: (argv: string[]) => O | undefined,
): O | number {
  let options: O | undefined;
  try {
    options = parse(argv);
  } catch (err) {
    process.stderr.write(`toptally ${name}: ${(err as Error).message}\n`);
    return 2;
  }
  if (options !== undefined) return options;
  process.stdout.write(help + '\n');
  return 0;
}
