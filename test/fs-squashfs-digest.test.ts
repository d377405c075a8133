// File hashes computed on the squashfs reader's worker threads (digest-pool.ts, used for zlib images of
// 8 MiB and more) against the source tree and against the reader's own stream, including an image that sits
// at an offset inside a larger file, and corrupt blocks: a typed error naming the file, never a hang.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PvError } from '../src/errors.ts';
import type { FileTree } from '../src/fs/file-tree.ts';
import { openImageFile } from '../src/fs/open-image.ts';
import { FileSource, SliceSource } from '../src/fs/source.ts';
import { openSquashfs } from '../src/fs/squashfs/reader.ts';
import { sha256Of } from '../src/crypto/sha256-stream.ts';
import { runCli } from './helpers/cli.ts';
import { needTool, sh } from './helpers/env.ts';
import { seededRandom } from './helpers/random.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** path → sha256 for every regular file, through the tree's digest (the worker pool) and through open(). */
async function hashes(tree: FileTree): Promise<{ digest: Map<string, string>; stream: Map<string, string> }> {
  assert.equal(typeof tree.digest, 'function', 'a zlib image of this size is hashed on workers');
  const digest = new Map<string, string>();
  const stream = new Map<string, string>();
  const files = [];
  for await (const e of tree.walk()) if (e.type === 'file') files.push(e);
  await Promise.all(files.map(async (e) => digest.set(e.path, await tree.digest!(e))));
  for (const e of files) stream.set(e.path, (await sha256Of(tree.open(e))).sha256);
  return { digest, stream };
}

describe('squashfs digests on worker threads', { skip: needTool('mksquashfs'), timeout: 120_000 }, () => {
  let dir: string;
  const truth = new Map<string, string>();
  after(() => rm(dir, { recursive: true, force: true }));
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pvmigrate-sqfs-digest-'));
    const root = join(dir, 'root');
    const rand = seededRandom(11);
    const put = async (path: string, data: Buffer) => {
      await mkdir(join(root, path, '..'), { recursive: true });
      await writeFile(join(root, path), data);
      truth.set(`/${path}`, sha(data));
    };
    // "a-text" sorts first, so its compressed blocks start right after the superblock (the corruption test).
    await put('a-text', Buffer.from('pantavisor revision object '.repeat(200_000)));
    for (let i = 0; i < 3; i++) await put(`bin/random${i}`, Buffer.from(Array.from({ length: 3 << 20 }, () => rand(256))));
    // Many small files: their tails share fragment blocks.
    for (let i = 0; i < 300; i++) await put(`etc/conf${i}`, Buffer.from(`key${i}=${'v'.repeat(rand(3000))}\n`));
    await put('empty', Buffer.alloc(0));
    // A hole of whole blocks (stored as sparse) between data.
    const sparse = Buffer.alloc(1 << 20);
    sparse.write('head');
    sparse.write('tail', sparse.length - 4);
    await put('sparse', sparse);
    sh('mksquashfs', [root, join(dir, 'img.sqfs'), '-quiet', '-no-progress']);
  });

  test('every file hash equals the source tree and the stream reader', async () => {
    const tree = await openImageFile(join(dir, 'img.sqfs'));
    try {
      const { digest, stream } = await hashes(tree);
      assert.deepEqual(new Map([...digest].sort()), new Map([...truth].sort()));
      assert.deepEqual(stream, digest);
    } finally {
      await tree.close();
    }
  });

  test('an image at an offset inside a larger file (as in a bundle) hashes the same', async () => {
    const image = await readFile(join(dir, 'img.sqfs'));
    const outer = join(dir, 'outer.bin');
    await writeFile(outer, Buffer.concat([Buffer.alloc(12_345, 0x5a), image, Buffer.alloc(777, 0xa5)]));
    const file = await FileSource.open(outer);
    try {
      const tree = await openSquashfs(file.slice(12_345, image.length, 'outer.bin:payload'));
      const { digest } = await hashes(tree);
      await tree.close();
      assert.deepEqual(new Map([...digest].sort()), new Map([...truth].sort()));
    } finally {
      await file.close();
    }
  });

  test('only zlib images of 8 MiB or more read from a plain file get worker digests', async () => {
    const small = join(dir, 'small.sqfs');
    const xz = join(dir, 'xz.sqfs');
    sh('mksquashfs', [join(dir, 'root', 'etc'), small, '-quiet', '-no-progress']);
    sh('mksquashfs', [join(dir, 'root'), xz, '-comp', 'xz', '-quiet', '-no-progress']);
    for (const image of [small, xz]) {
      const tree = await openImageFile(image);
      assert.equal(tree.digest, undefined, image);
      await tree.close();
    }
    // A source whose read() transforms or checks bytes (dm-verity, decryption) must never be read around.
    class Checked extends SliceSource {
      override read(position: number, length: number): Promise<Buffer> {
        return super.read(position, length);
      }
    }
    const file = await FileSource.open(join(dir, 'img.sqfs'));
    try {
      const plain = await openSquashfs(file.slice(0, file.size));
      const checked = await openSquashfs(new Checked(file, 0, file.size, 'checked'));
      assert.equal(typeof plain.digest, 'function');
      assert.equal(checked.digest, undefined);
      await plain.close();
      await checked.close();
    } finally {
      await file.close();
    }
  });

  test('the image file gone or replaced under the workers, or closed, is an environment error (exit 2), not corruption', async () => {
    const environmental = (re: RegExp, file: string) => (err: unknown) => err instanceof PvError && err.exitCode === 2 && re.test(err.message) && err.file === file;
    for (const swap of ['gone', 'replaced'] as const) {
      const moving = join(dir, `${swap}.sqfs`);
      await writeFile(moving, await readFile(join(dir, 'img.sqfs')));
      const tree = await openImageFile(moving);
      try {
        const files = [];
        for await (const e of tree.walk()) if (e.type === 'file') files.push(e);
        await rename(moving, `${moving}.away`);
        // Another file at the same path: the workers must not hash it in place of the image the tree reads.
        if (swap === 'replaced') await writeFile(moving, await readFile(`${moving}.away`));
        await assert.rejects(tree.digest!(files[0]!), environmental(swap === 'gone' ? /no such file/ : /replaced while it was being read/, moving));
      } finally {
        await tree.close();
      }
    }
    const tree = await openImageFile(join(dir, 'img.sqfs'));
    const files = [];
    for await (const e of tree.walk()) if (e.type === 'file') files.push(e);
    await tree.close();
    await assert.rejects(tree.digest!(files[0]!), environmental(/closed before its files were hashed/, join(dir, 'img.sqfs')));
  });

  test('ls --json lists the hashes of the source tree', async () => {
    const r = await runCli(['ls', join(dir, 'img.sqfs'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const listed = (JSON.parse(r.stdout) as { path: string; type: string; sha256?: string }[]).filter((e) => e.type === 'file');
    assert.deepEqual(new Map(listed.map((e) => [e.path, e.sha256])), new Map([...truth].sort()));
  });

  test('a corrupt compressed block or a block beyond the image is a typed error naming the file', async () => {
    const image = await readFile(join(dir, 'img.sqfs'));
    const flipped = Buffer.from(image);
    flipped[96 + 200] ^= 0x40; // inside a-text's first compressed block (zlib's adler32 catches any flip)
    await writeFile(join(dir, 'flipped.sqfs'), flipped);
    const r = await runCli(['ls', join(dir, 'flipped.sqfs'), '--json']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /flipped\.sqfs.*squashfs image is corrupt: data block at 96/);
    assert.equal(r.stdout, '');

    // The image cut short after its tables were read: blocks now lie past the end of the file.
    const cut = join(dir, 'cut.sqfs');
    await writeFile(cut, image);
    const tree = await openImageFile(cut);
    try {
      const files = [];
      for await (const e of tree.walk()) if (e.type === 'file') files.push(e);
      await truncate(cut, 1 << 20);
      const errors: unknown[] = [];
      for (const e of files) await tree.digest!(e).catch((err: unknown) => errors.push(err));
      assert.ok(errors.length > 0, 'reading past the cut fails');
      for (const err of errors) {
        assert.ok(err instanceof PvError && err.exitCode === 1, String(err));
        assert.match(err.message, /squashfs image is corrupt: .*(shrank|outside|data block)/);
        assert.equal(err.file, cut);
      }
    } finally {
      await tree.close();
    }
  });
});
