import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { ObjectStore } from '../src/revision/object-store.ts';
import { sh, tempDir } from './helpers/env.ts';

test('put hashes while writing; the name is what sha256sum says', async (t) => {
  const dir = await tempDir(t);
  const store = new ObjectStore(join(dir, 'objects'));
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const file = join(dir, 'blob');
  writeFileSync(file, data);
  const want = sh('sha256sum', [file]).split(' ')[0]!;
  const r = await store.put(Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
  assert.deepEqual(r, { sha256: want, size: data.length });
  assert.equal(await store.has(want), true);
  assert.equal(await store.size(want), data.length);
  assert.deepEqual(await store.verify(want), { status: 'ok', size: data.length });
  assert.deepEqual(await store.putFile(file), r);
  assert.deepEqual(await store.list(), [want]);
  assert.equal(sh('sha256sum', [store.path(want)]).split(' ')[0], want);
});

test('concurrent puts of the same object are safe and keep the first inode', async (t) => {
  const store = new ObjectStore(await tempDir(t));
  const data = randomBytes(256 * 1024);
  const first = await store.put(Readable.from([data]));
  const ino = statSync(store.path(first.sha256)).ino;
  const results = await Promise.all(Array.from({ length: 16 }, () => store.put(Readable.from([data]))));
  assert.ok(results.every((r) => r.sha256 === first.sha256));
  assert.equal(statSync(store.path(first.sha256)).ino, ino);
  assert.deepEqual(readdirSync(store.dir), [first.sha256], 'no temp files left behind');
});

test('putExpected refuses a wrong hash and keeps nothing', async (t) => {
  const store = new ObjectStore(await tempDir(t));
  const wrong = 'a'.repeat(64);
  await assert.rejects(store.putExpected(wrong, Readable.from([Buffer.from('hello')])), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'object-hash');
    assert.match(e.message, /hashes to 2cf24dba/);
    return true;
  });
  assert.deepEqual(readdirSync(store.dir), []);
  const ok = await store.putExpected('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', Readable.from([Buffer.from('hello')]));
  assert.equal(ok.size, 5);
  assert.throws(() => store.path('../etc/passwd'), /not a 64-character/);
});

test('a failing source stream leaves nothing behind', async (t) => {
  const store = new ObjectStore(await tempDir(t));
  const failing = new Readable({
    read() {
      this.push(Buffer.alloc(1000));
      this.destroy(new Error('disk read error'));
    },
  });
  await assert.rejects(store.put(failing));
  assert.deepEqual(readdirSync(store.dir), []);
});

test('verify finds a flipped byte and a missing object', async (t) => {
  const store = new ObjectStore(await tempDir(t));
  const { sha256 } = await store.put(Readable.from([Buffer.from('object content')]));
  const p = store.path(sha256);
  sh('chmod', ['u+w', p]);
  writeFileSync(p, Buffer.from('object contenT'));
  const v = await store.verify(sha256);
  assert.equal(v.status, 'mismatch');
  assert.deepEqual(await store.verify('b'.repeat(64)), { status: 'missing' });
  assert.equal(await store.has('b'.repeat(64)), false);
  assert.equal(await store.size('b'.repeat(64)), undefined);
});
