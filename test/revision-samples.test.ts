import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { needTool, sh, tempDir } from './helpers/env.ts';

const samples = fileURLToPath(new URL('../samples/revision/', import.meta.url));

test('samples/revision/make.sh rebuilds the committed root.squashfs images byte for byte (real mksquashfs)', { skip: needTool('mksquashfs') }, async (t) => {
  const dir = await tempDir(t);
  copyFileSync(join(samples, 'make.sh'), join(dir, 'make.sh'));
  for (const tree of ['a', 'b']) mkdirSync(join(dir, tree, 'app'), { recursive: true });
  sh('sh', [join(dir, 'make.sh')]);
  for (const tree of ['a', 'b']) {
    const rebuilt = readFileSync(join(dir, tree, 'app/root.squashfs'));
    assert.deepEqual(rebuilt, readFileSync(join(samples, tree, 'app/root.squashfs')), tree);
    // And it is a squashfs holding the demo app of that version.
    const listing = sh('unsquashfs', ['-lls', join(dir, tree, 'app/root.squashfs')]);
    assert.match(listing, /squashfs-root\/usr\/bin\/app/);
    assert.match(sh('unsquashfs', ['-cat', join(dir, tree, 'app/root.squashfs'), 'etc/os-release']), new RegExp(`VERSION_ID=${tree === 'a' ? '1\\.0' : '1\\.1'}`));
  }
});
