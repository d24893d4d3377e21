#!/usr/bin/env node
// The toptally command: runs the build in dist/, which `npm ci` makes (the `prepare` script).
const main = new URL('../dist/src/main.js', import.meta.url);
const loaded = await import(main.href).catch((err) => {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes(main.pathname)) throw err;
  process.stderr.write('toptally: not built yet: run `npm run build` (npm ci and npm install run it)\n');
  process.exit(1);
});
await loaded.main(process.argv.slice(2));
