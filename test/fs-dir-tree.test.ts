import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, writeFile, symlink, link, chmod, chown } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDirTree, splitDev } from '../src/fs/dir-tree.ts';
import { modeString, type Entry } from '../src/fs/file-tree.ts';
import { isRoot, needTool, sh, tempDir } from './helpers/env.ts';

async function hashOf(stream: NodeJS.ReadableStream): Promise<string> {
  const h = createHash('sha256');
  for await (const c of stream) h.update(c as Buffer);
  return h.digest('hex');
}

test('splitDev matches the kernel dev_t encoding', () => {
  assert.deepEqual(splitDev(0x0801), { major: 8, minor: 1 });
  // major 259, minor 300000: high minor bits live above bit 20.
  const dev = (259n << 8n) | (300000n & 0xffn) | ((300000n & ~0xffn) << 12n);
  assert.deepEqual(splitDev(dev), { major: 259, minor: 300000 });
});

test('openDirTree reports what find/stat/getfattr report', { skip: needTool('getfattr') }, async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'root');
  await mkdir(join(root, 'sub dir', 'empty'), { recursive: true });
  await writeFile(join(root, 'a'), 'hello');
  await link(join(root, 'a'), join(root, 'sub dir', 'a-link'));
  await writeFile(join(root, 'suid'), '#!/bin/sh\n');
  await chmod(join(root, 'suid'), 0o4755);
  await chmod(join(root, 'sub dir'), 0o1777);
  await symlink('sub dir', join(root, 'to-dir'));
  await symlink('/nonexistent', join(root, 'dangling'));
  const odd = 'n\u00e9\nx \\y';
  await writeFile(join(root, odd), '');
  sh('mkfifo', [join(root, 'fifo')]);
  sh('setfattr', ['-n', 'user.comment', '-v', 'hi=there', join(root, 'a')]);
  sh('setfattr', ['-n', 'user.bin', '-v', '0sAAECAw==', join(root, odd)]);
  if (isRoot) {
    sh('mknod', [join(root, 'null'), 'c', '1', '3']);
    sh('mknod', [join(root, 'sda1'), 'b', '8', '1']);
    await chown(join(root, 'a'), 1000, 1001);
    sh('setfattr', ['-n', 'security.capability', '-v', '0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=', join(root, 'suid')]);
  }

  const tree = await openDirTree(root);
  const entries: Entry[] = [];
  for await (const e of tree.walk()) entries.push(e);

  // Independent truth: GNU find, in the same bytewise order.
  const truth = sh('find', [root, '-printf', '%P\\0%y\\0%m\\0%U\\0%G\\0%T@\\0%s\\0%n\\0%i\\0%l\\0'], { env: { LC_ALL: 'C' } })
    .split('\0');
  truth.pop();
  const rows = new Map<string, string[]>();
  for (let i = 0; i < truth.length; i += 10) rows.set(truth[i] === '' ? '/' : '/' + truth[i], truth.slice(i + 1, i + 10));
  assert.equal(entries.length, rows.size);
  const paths = entries.map((e) => e.path);
  // Depth-first with bytewise-sorted siblings = component-wise bytewise order.
  const components = (p: string) => (p === '/' ? [] : p.slice(1).split('/').map((c) => Buffer.from(c)));
  const depthFirst = (x: string, y: string) => {
    const a = components(x), b = components(y);
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = Buffer.compare(a[i]!, b[i]!);
      if (c) return c;
    }
    return a.length - b.length;
  };
  assert.deepEqual(paths, [...paths].sort(depthFirst));
  assert.equal(paths[0], '/');
  const types: Record<string, string> = { f: 'file', d: 'dir', l: 'symlink', c: 'chr', b: 'blk', p: 'fifo', s: 'sock' };
  for (const e of entries) {
    const r = rows.get(e.path);
    assert.ok(r, `find does not list ${e.path}`);
    const [y, m, u, g, ts, s, n, ino, l] = r;
    assert.equal(e.type, types[y!], e.path);
    assert.equal(modeString(e.mode), m!.padStart(4, '0'), e.path);
    assert.equal(e.uid, Number(u));
    assert.equal(e.gid, Number(g));
    assert.equal(e.mtime, Math.floor(Number(ts)));
    if (e.type === 'file') assert.equal(e.size, Number(s));
    assert.equal(e.nlink, Number(n));
    assert.equal(e.inode, Number(ino));
    if (e.type === 'symlink') assert.equal(e.target, l);
  }
  // Children come after their directory and siblings are bytewise sorted.
  const sub = entries.filter((e) => e.path.startsWith('/sub dir/')).map((e) => e.path);
  assert.deepEqual(sub, ['/sub dir/a-link', '/sub dir/empty']);
  const byPath = new Map(entries.map((e) => [e.path, e]));
  assert.equal(byPath.get('/a')!.inode, byPath.get('/sub dir/a-link')!.inode);
  assert.deepEqual(byPath.get('/a')!.xattrs, { 'user.comment': Buffer.from('hi=there') });
  assert.deepEqual(byPath.get('/' + odd)!.xattrs, { 'user.bin': Buffer.from([0, 1, 2, 3]) });
  assert.equal(await hashOf(tree.open(byPath.get('/a')!)), createHash('sha256').update('hello').digest('hex'));
  if (isRoot) {
    assert.deepEqual(byPath.get('/null')!.rdev, { major: 1, minor: 3 });
    assert.deepEqual(byPath.get('/sda1')!.rdev, { major: 8, minor: 1 });
    assert.equal(byPath.get('/a')!.uid, 1000);
    assert.equal(byPath.get('/suid')!.xattrs!['security.capability']!.toString('base64'), 'AQAAAgAgAAAAAAAAAAAAAAAAAAA=');
  }
  await tree.close();
});

test('openDirTree on a missing path is an environment error naming it', async () => {
  await assert.rejects(openDirTree('/nonexistent/pvmigrate-dir'), (e: Error & { exitCode?: number; file?: string }) => e.exitCode === 2 && e.file === '/nonexistent/pvmigrate-dir');
});

test('a file that vanished after the walk fails its stream with a typed error naming it', { skip: needTool('getfattr') }, async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'gone'), 'x');
  const tree = await openDirTree(dir);
  const entries: Entry[] = [];
  for await (const e of tree.walk()) entries.push(e);
  const { rm } = await import('node:fs/promises');
  await rm(join(dir, 'gone'));
  await assert.rejects(hashOf(tree.open(entries.find((e) => e.path === '/gone')!)), (e: Error & { code?: string; file?: string }) => e.code === 'not-found' && e.file === join(dir, 'gone'));
});
