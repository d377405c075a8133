// A 5 GiB sparse file through mksquashfs → our reader, and through our writer → unsquashfs: sparse blocks
// must stay cheap (no storage, no per-block compression) and the file is hashed densely only once.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDirTree } from '../src/fs/dir-tree.ts';
import { FileSource } from '../src/fs/source.ts';
import { openSquashfs } from '../src/fs/squashfs/reader.ts';
import { writeSquashfs } from '../src/fs/squashfs/writer.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';

const FIVE_GIB = 5 * 1024 ** 3;
/** sha256 of 5 GiB of zeros, from `head -c 5368709120 /dev/zero | sha256sum`. */
const FIVE_GIB_ZEROS_SHA256 = '7f06c62352aebd8125b2a1841e2b9e1ffcbed602f381c3dcb3200200e383d1d5';

test('5 GiB sparse file: read from a mksquashfs image and written by us', { skip: needTool('mksquashfs'), timeout: 240_000 }, async (t) => {
  const dir = await tempDir(t, 'pvmigrate-sqfs-sparse-');
  const root = join(dir, 'root');
  await mkdir(root);
  await writeFile(join(root, 'huge'), '');
  await truncate(join(root, 'huge'), FIVE_GIB);
  await writeFile(join(root, 'note'), 'beside a hole\n');

  const theirs = join(dir, 'mk.sqfs');
  sh('mksquashfs', [root, theirs, '-comp', 'gzip', '-quiet', '-no-progress']);
  const src = await FileSource.open(theirs);
  try {
    const tree = await openSquashfs(src);
    for await (const e of tree.walk()) {
      if (e.path !== '/huge') continue;
      assert.equal(e.size, FIVE_GIB);
      const h = createHash('sha256');
      let n = 0;
      for await (const c of tree.open(e)) {
        h.update(c as Buffer);
        n += (c as Buffer).length;
      }
      assert.equal(n, FIVE_GIB);
      assert.equal(h.digest('hex'), FIVE_GIB_ZEROS_SHA256);
    }
  } finally {
    await src.close();
  }

  const ours = join(dir, 'ours.sqfs');
  await writeSquashfs(await openDirTree(root), ours, { comp: 'gzip' });
  // 40,960 sparse blocks cost 4 bytes each in the inode table, nothing in the data area.
  assert.ok((await stat(ours)).size < 64 * 1024, `image of ${(await stat(ours)).size} bytes: sparse blocks were stored`);
  const listing = sh('unsquashfs', ['-lln', '-d', '', ours]);
  assert.match(listing, /-rw-r--r-- \d+\/\d+\s+5368709120 .* \/huge\n/);
  assert.equal(sh('unsquashfs', ['-cat', ours, 'note']), 'beside a hole\n');
});
