// A rootfs-image payload as a FileTree: in place for a stored data tar, through one verified temp file when
// compressed; file contents must equal what debugfs (e2fsprogs) reads from the same image.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { openArtifact } from '../importers/open.ts';
import type { Entry } from '../src/fs/file-tree.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';

const samples = fileURLToPath(new URL('../samples/mender/', import.meta.url));
const skip = needTool('mender-artifact') || needTool('mke2fs') || needTool('debugfs');

async function content(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** What our code leaves in the temp directory (this test file's own TMPDIR, so parallel tests cannot interfere). */
async function pvTempFiles(): Promise<string[]> {
  return (await readdir(tmpdir())).sort();
}

for (const compression of ['none', 'gzip', 'lzma']) {
  test(`rootfs-image (${compression}) payload opens as the ext4 tree debugfs sees`, { skip }, async (t) => {
    const dir = await tempDir(t);
    const privateTmp = join(dir, 'tmp');
    await mkdir(privateTmp);
    const savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = privateTmp;
    t.after(() => {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
    });
    const root = join(dir, 'root');
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(root, 'etc/app.conf'), 'greeting=hello\n'.repeat(500));
    await writeFile(join(root, 'etc/hostname'), 'box\n');
    sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', '-d', root, join(dir, 'rootfs.ext4'), '1024']);
    const art = join(dir, 'a.mender');
    sh('mender-artifact', ['write', 'rootfs-image', '-f', 'rootfs.ext4', '-n', 'r', '-t', 'd', '--compression', compression, '-o', art], { cwd: dir });
    const before = await pvTempFiles();
    const a = await openArtifact(art, {});
    try {
      const p = a.payloads[0];
      assert.equal(p.kind, 'image');
      const tree = await p.tree!();
      const entries: Entry[] = [];
      for await (const e of tree.walk()) entries.push(e);
      assert.deepEqual(entries.map((e) => e.path).filter((x) => x.startsWith('/etc')), ['/etc', '/etc/app.conf', '/etc/hostname']);
      const conf = entries.find((e) => e.path === '/etc/app.conf')!;
      const ours = await content(tree.open(conf));
      const truth = Buffer.from(sh('debugfs', ['-R', 'cat /etc/app.conf', join(dir, 'rootfs.ext4')]));
      assert.equal(createHash('sha256').update(ours).digest('hex'), createHash('sha256').update(truth).digest('hex'));
      // Stored: no copy at all; compressed: exactly one temp file, removed when the tree closes.
      const during = await pvTempFiles();
      assert.equal(during.length - before.length, compression === 'none' ? 0 : 1);
      await tree.close();
      assert.deepEqual(await pvTempFiles(), before);
    } finally {
      await a.close();
    }
  });
}

test('samples/mender demo artifacts (made by make.sh) are valid ext4 rootfs releases 1.0 and 1.1', { skip: skip || !existsSync(join(samples, 'demo-1.0.mender')) }, async () => {
  for (const v of ['1.0', '1.1']) {
    const a = await openArtifact(join(samples, `demo-${v}.mender`), {});
    try {
      assert.equal(a.source.name, `demo-${v}`);
      assert.deepEqual(a.source.compatible, ['pvmigrate-demo']);
      const tree = await a.payloads[0].tree!();
      let release = '';
      for await (const e of tree.walk()) if (e.path === '/etc/os-release') release = (await content(tree.open(e))).toString();
      await tree.close();
      assert.match(release, new RegExp(`VERSION_ID=${v.replace('.', '\\.')}`));
    } finally {
      await a.close();
    }
  }
});

test('payloads say what they hold: a partitioned disk gets no tree (the caller picks a partition), raw bytes none', { skip: skip || needTool('sfdisk') }, async (t) => {
  const dir = await tempDir(t);
  sh('truncate', ['-s', '4M', join(dir, 'disk.img')]);
  sh('sfdisk', ['-q', join(dir, 'disk.img')], { input: Buffer.from('label: dos\nstart=2048, size=4096, type=83\n') });
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', '-E', 'offset=1048576', join(dir, 'disk.img'), '2048']);
  await writeFile(join(dir, 'blob.bin'), createHash('sha512').update('x').digest());
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', join(dir, 'plain.ext4'), '1024']);
  sh('tar', ['-cf', join(dir, 'bundle.tar'), '-C', dir, 'blob.bin']);
  const art = join(dir, 'a.mender');
  sh('mender-artifact', ['write', 'module-image', '-T', 'custom', '-f', 'disk.img', '-f', 'blob.bin', '-f', 'plain.ext4', '-f', 'bundle.tar', '-n', 'r', '-t', 'd', '-o', art], { cwd: dir });
  const a = await openArtifact(art, {});
  try {
    const facts = a.payloads.map((p) => [p.attributes.fileName, p.kind, p.attributes.imageKind ?? null, typeof p.tree]);
    assert.deepEqual(facts, [
      ['disk.img', 'module', 'disk', 'undefined'],
      ['blob.bin', 'module', null, 'undefined'],
      ['plain.ext4', 'module', 'ext4', 'function'],
      ['bundle.tar', 'archive', 'tar', 'function'],
    ]);
  } finally {
    await a.close();
  }
});
