// The package version, read once from package.json: what --version prints, /openapi.json,
// /asyncapi.json and toptally_build_info state.

import { readFileSync } from 'node:fs';
import { packageFile } from './runtime.ts';

export const { version } = JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string };
