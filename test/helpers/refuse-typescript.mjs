// Preloaded with --import (worker threads inherit it): any thread that tries to load tsx or a
// TypeScript file fails, so a test can show that a command runs only the build.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
export async function resolve(specifier, context, next) {
  if (specifier === 'tsx' || specifier.startsWith('tsx/') || /\\.[cm]?ts$/.test(specifier)) {
    throw new Error('this process may not load ' + specifier);
  }
  return next(specifier, context);
}`),
);
