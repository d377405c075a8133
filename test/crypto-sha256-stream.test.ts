import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { Sha256Meter, sha256Of } from '../src/crypto/sha256-stream.ts';
import { sh, tempDir } from './helpers/env.ts';

test('sha256Of and Sha256Meter.through agree with sha256sum and pass every byte on unchanged', async (t) => {
  const dir = await tempDir(t);
  const parts = [Buffer.alloc(0), Buffer.from('pantavisor '), Buffer.alloc(3 << 20, 7), Buffer.from('trail')];
  const whole = Buffer.concat(parts);
  writeFileSync(join(dir, 'f'), whole);
  const truth = sh('sha256sum', [join(dir, 'f')]).split(' ')[0];
  assert.deepEqual(await sha256Of(Readable.from(parts)), { sha256: truth, size: whole.length });
  const m = new Sha256Meter();
  const out: Buffer[] = [];
  for await (const c of m.through(Readable.from(parts))) out.push(c);
  assert.ok(Buffer.concat(out).equals(whole));
  assert.equal(m.size, whole.length);
  assert.equal(m.digest(), truth);
  assert.equal((await sha256Of(Readable.from([]))).sha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});
