import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERRORS, TopTallyError, fromErrorBody, type ErrorBody } from '../../src/errors.ts';

test('every error code is documented in docs/errors.md with its HTTP status', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const [code, { status }] of Object.entries(ERRORS)) {
    assert.match(doc, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), code);
  }
});

test('errors cross threads and the wire as {code, message, ...details} and come back the same', () => {
  const err = new TopTallyError('TOPTALLY_ERR_INVALID_COUNTER', 'bad', { index: 2, key: 'A' });
  const body: ErrorBody = JSON.parse(JSON.stringify(err));
  assert.deepEqual(body, { code: 'TOPTALLY_ERR_INVALID_COUNTER', message: 'bad', index: 2, key: 'A' });
  const back = fromErrorBody(body);
  assert.deepEqual([back.code, back.message, back.details, back.status], [err.code, 'bad', { index: 2, key: 'A' }, 400]);
});
