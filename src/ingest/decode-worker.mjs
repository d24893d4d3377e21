// Piscina's entry for the decode pool: pool threads do not inherit tsx's loader, so register it
// here and hand piscina the TypeScript task.
import { register } from 'tsx/esm/api';

register();
const task = await import('./decode-worker.ts');
export default task.default;
