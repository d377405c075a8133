import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { writeFileAtomically, writeStreamAtomically } from '../src/fs/atomic.ts';
import { sh, tempDir } from './helpers/env.ts';

test('writeStreamAtomically: the sha256 and size it returns are those sha256sum and stat see; mode 0644; no temp left', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'image');
  const parts = [Buffer.alloc(3 << 20, 1), Buffer.from('tail')];
  const r = await writeStreamAtomically(out, Readable.from(parts));
  assert.equal(r.sha256, sh('sha256sum', [out]).split(' ')[0]);
  assert.equal(r.size, statSync(out).size);
  assert.equal(statSync(out).mode & 0o777, 0o644);
  assert.deepEqual(readdirSync(dir), ['image']);
});

test('writeStreamAtomically: a failing stream leaves the old file as it was and no temp file', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'image');
  await writeFileAtomically(out, 'old');
  const failing = Readable.from(
    (async function* () {
      yield Buffer.from('new');
      throw new Error('source failed');
    })(),
  );
  await assert.rejects(writeStreamAtomically(out, failing), /source failed/);
  assert.equal(readFileSync(out, 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir), ['image']);
});

test('writeFileAtomically: replaces the content, applies the mode, leaves only the file', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'state.json');
  await writeFileAtomically(out, '{"a":1}');
  await writeFileAtomically(out, Buffer.from('{"a":2}'), { mode: 0o600 });
  assert.equal(readFileSync(out, 'utf8'), '{"a":2}');
  assert.equal(statSync(out).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['state.json']);
});
