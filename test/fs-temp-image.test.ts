import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { InvalidInputError, type PvError } from '../src/errors.ts';
import { openTempCopy } from '../src/fs/temp-image.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';

const PREFIX = 'pvmigrate-temp-image-test-';

/** Run with TMPDIR pointed at a fresh directory, so what the copy leaves behind can be counted. */
async function withTmp<T>(dir: string, f: () => Promise<T>): Promise<T> {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    return await f();
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

const left = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith(PREFIX));

test('a GNU tar stream opens as the tree tar lists, named as given; close() removes the copy', { skip: needTool('tar') }, async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  await mkdir(join(src, 'etc'), { recursive: true });
  await writeFile(join(src, 'etc/hostname'), 'device\n');
  sh('tar', ['--format=gnu', '-cf', join(dir, 'rootfs.tar'), '-C', src, '.']);
  const tmp = join(dir, 'tmp');
  await mkdir(tmp);
  const tree = await withTmp(tmp, () => openTempCopy(() => Readable.from([readFileSync(join(dir, 'rootfs.tar'))]), 'bundle.raucb (rootfs.tar)', { prefix: PREFIX }));
  assert.equal(left(tmp).length, 1, 'the copy exists while the tree is open');
  const paths: string[] = [];
  let hostname = '';
  for await (const e of tree.walk()) {
    paths.push(e.path);
    if (e.path === '/etc/hostname') for await (const c of tree.open(e)) hostname += String(c);
  }
  const listed = sh('tar', ['-tf', join(dir, 'rootfs.tar')]).split('\n').filter((l) => l && l !== './').map((l) => `/${l.replace(/^\.\//, '').replace(/\/$/, '')}`);
  for (const p of listed) assert.ok(paths.includes(p), `${p} in ${paths.join(' ')}`);
  assert.equal(hostname, 'device\n');
  await tree.close();
  assert.deepEqual(left(tmp), []);
});

test('a stream that fails its own check: that error, and no copy left', async (t) => {
  const tmp = await tempDir(t);
  const bad = new InvalidInputError('sha256-mismatch', 'payload changed since it was verified', { file: 'a.swu' });
  const stream = () =>
    Readable.from(
      (async function* () {
        yield Buffer.alloc(4096);
        throw bad;
      })(),
    );
  await assert.rejects(withTmp(tmp, () => openTempCopy(stream, 'a.swu (rootfs)', { prefix: PREFIX })), (e) => e === bad);
  assert.deepEqual(left(tmp), []);
});

test('content no filesystem reader recognises: the reader error names the given name, and no copy left', async (t) => {
  const tmp = await tempDir(t);
  const stream = () => Readable.from([Buffer.alloc(64 * 1024, 0x5a)]);
  await assert.rejects(withTmp(tmp, () => openTempCopy(stream, 'a.mender:data/0000/junk.img', { prefix: PREFIX })), (e: PvError) => e.exitCode === 1 && /junk\.img/.test(e.toLine()));
  assert.deepEqual(left(tmp), []);
});

test('the open option is used instead of openImage, and its failure also removes the copy', async (t) => {
  const tmp = await tempDir(t);
  let seen = '';
  const open = async (s: { name: string; size: number }) => {
    seen = `${s.name} ${s.size}`;
    throw new InvalidInputError('x', 'refused', { file: s.name });
  };
  await assert.rejects(withTmp(tmp, () => openTempCopy(() => Readable.from([Buffer.from('abc')]), 'n', { prefix: PREFIX, open })), /refused/);
  assert.equal(seen, 'n 3');
  assert.deepEqual(left(tmp), []);
});
