import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERRORS } from '../../src/errors.ts';

test('every error code is documented in docs/errors.md, with its HTTP status', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const [code, { status }] of Object.entries(ERRORS)) {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
    assert.ok(row, `${code} is missing from docs/errors.md`);
    if (code !== 'TOPTALLY_ERR_DATA_CORRUPT') assert.match(row, new RegExp(`\\| ${status} \\|`), code);
  }
});
