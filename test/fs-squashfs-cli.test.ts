// `pvmigrate mksquashfs` as a user runs it.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';

test('mksquashfs: a directory and mksquashfs\'s image of it give the same bytes', { skip: needTool('mksquashfs') }, async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'root');
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'hostname'), 'device\n');
  await writeFile(join(root, 'big'), Buffer.alloc(400_000, 'pantavisor '));
  await symlink('etc/hostname', join(root, 'name'));
  sh('setfattr', ['-n', 'user.role', '-v', 'bsp', join(root, 'big')]);

  const fromDir = join(dir, 'from-dir.sqfs');
  const r = await runCli(['mksquashfs', root, '-o', fromDir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { output: string; size: number; inodes: number; comp: string };
  assert.equal(doc.size, (await stat(fromDir)).size);
  assert.equal(doc.inodes, 5);
  assert.equal(doc.comp, 'gzip');
  assert.match(sh('unsquashfs', ['-lln', fromDir]), /lrwxrwxrwx .* squashfs-root\/name -> etc\/hostname/);

  // The same tree read back out of an image (no mount, no extraction) writes the same image.
  const theirs = join(dir, 'theirs.sqfs');
  sh('mksquashfs', [root, theirs, '-comp', 'xz', '-quiet', '-no-progress']);
  const fromImage = join(dir, 'from-image.sqfs');
  const r2 = await runCli(['mksquashfs', theirs, '-o', fromImage]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(r2.stdout, /squashfs 4\.0 \(gzip\), \d+ bytes, 5 inodes/);
  assert.ok((await readFile(fromImage)).equals(await readFile(fromDir)), 'image input and directory input give identical bytes');
});

test('mksquashfs: usage and environment errors exit 2 and leave nothing behind', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'in'));
  const cases: [string[], RegExp][] = [
    [['mksquashfs', join(dir, 'in')], /-o OUT\.squashfs is required/],
    [['mksquashfs', join(dir, 'in'), '-o', join(dir, 'x.sqfs'), '--comp', 'lz4'], /--comp must be gzip or xz/],
    [['mksquashfs', join(dir, 'missing'), '-o', join(dir, 'x.sqfs')], /no such file or directory/],
    [['mksquashfs', join(dir, 'in'), '-o', join(dir, 'no-such-dir', 'x.sqfs')], /no such file or directory/],
    [['mksquashfs', join(dir, 'in'), '-o', join(dir, 'x.sqfs'), '--workers', '0'], /--workers needs an integer/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
  }
  assert.deepEqual(await readdir(dir), ['in']);
});

test('mksquashfs: a file that is no image is invalid input (exit 1)', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'junk'), Buffer.alloc(8192, 3));
  const r = await runCli(['mksquashfs', join(dir, 'junk'), '-o', join(dir, 'x.sqfs')]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /junk/);
  assert.deepEqual((await readdir(dir)).sort(), ['junk']);
});

test('mksquashfs --comp xz without the xz tool is an environment error (exit 2) naming the package', { skip: needTool('mksquashfs') }, async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'root'));
  await writeFile(join(dir, 'root', 'f'), 'data '.repeat(1000));
  sh('mksquashfs', [join(dir, 'root'), join(dir, 'in.sqfs'), '-quiet', '-no-progress']);
  // An image input needs no host tool to read; with PATH empty, only the xz encoder is missing.
  const r = await runCli(['mksquashfs', join(dir, 'in.sqfs'), '-o', join(dir, 'out.sqfs'), '--comp', 'xz'], { env: { PATH: join(dir, 'empty-path') } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /xz-utils/);
  assert.deepEqual((await readdir(dir)).sort(), ['in.sqfs', 'root']);
});
