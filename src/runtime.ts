// Whether this process runs the build (dist/, what `npm start` runs) or the TypeScript sources
// through tsx (the tests), and where the package's own files are in either case. Worker
// threads run the same form as the thread that starts them; under tsx they do not inherit its
// loader, so they start through a small .mjs file that registers it first.

/** True in the build: this file is dist/src/runtime.js there, src/runtime.ts under tsx. */
export const built = import.meta.url.endsWith('.js');

const ROOT = new URL(built ? '../../' : '../', import.meta.url);

/** A file of the package, by its path from the package root (package.json's folder). */
export function packageFile(path: string): URL {
  return new URL(path, ROOT);
}

/** The file a worker thread should load for a module given by its source path (no extension). */
export function threadModule(source: string, tsxEntry: string): URL {
  return built ? packageFile(`dist/${source}.js`) : packageFile(tsxEntry);
}
