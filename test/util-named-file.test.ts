import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { PvError } from '../src/errors.ts';
import { readNamedFile } from '../src/util/named-file.ts';
import { tempDir } from './helpers/env.ts';

test('readNamedFile: content as is; a missing file is exit 2 naming it, and what it was meant to be when given', async (t) => {
  const dir = await tempDir(t);
  writeFileSync(join(dir, 'ca.pem'), 'pem\n');
  assert.equal((await readNamedFile(join(dir, 'ca.pem'), 'the keyring')).toString(), 'pem\n');
  const missing = join(dir, 'nope.pem');
  await assert.rejects(readNamedFile(missing, 'the keyring'), (e: PvError) => e.exitCode === 2 && e.code === 'not-found' && e.file === missing && e.message === 'cannot read the keyring: no such file or directory');
  await assert.rejects(readNamedFile(missing), (e: PvError) => e.exitCode === 2 && e.code === 'not-found' && e.message === 'no such file or directory');
  await assert.rejects(readNamedFile(dir, 'the key'), (e: PvError) => e.exitCode === 2 && e.code === 'is-directory');
});

