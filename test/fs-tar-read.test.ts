// The tar layer against archives made by GNU tar: every format it writes must read back as the directory it archived.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, readdir, readlink, symlink, truncate, writeFile, open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { PvError } from '../src/errors.ts';
import { compareNames, type Entry } from '../src/fs/file-tree.ts';
import { BufferSource, FileSource } from '../src/fs/source.ts';
import { openTar, scanTar } from '../src/fs/tar/reader.ts';
import { tarStream } from '../src/fs/tar/stream.ts';
import { isRoot, needTool, sh, tempDir } from './helpers/env.ts';

const BIG_UID = 3_000_000; // above 0o7777777: GNU writes base-256, pax a uid record

/** A directory exercising what tar formats differ on. `full` adds what plain ustar cannot hold. */
async function makeTree(dir: string, full: boolean): Promise<void> {
  await mkdir(join(dir, 'etc/deep'), { recursive: true });
  await writeFile(join(dir, 'etc/hostname'), 'box\n');
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'random.bin'), createHash('sha512').update('seed').digest().toString('hex').repeat(3000));
  await link(join(dir, 'etc/hostname'), join(dir, 'hostname.hard'));
  await symlink('etc/hostname', join(dir, 'hostname.sym'));
  await writeFile(join(dir, 'setuid'), '#!/bin/sh\n');
  await chmod(join(dir, 'setuid'), 0o4755);
  await mkdir(join(dir, 'private'), { mode: 0o700 });
  await chown(join(dir, 'private'), 1234, 5678);
  sh('mkfifo', [join(dir, 'fifo')]);
  if (isRoot) sh('mknod', [join(dir, 'ttyX'), 'c', '4', '64']);
  // ustar: 100-byte name plus 155-byte prefix, split at a slash.
  const prefixDir = join(dir, 'p'.repeat(90), 'q'.repeat(40));
  await mkdir(prefixDir, { recursive: true });
  await writeFile(join(prefixDir, 'n'.repeat(95)), 'prefixed');
  if (!full) return;
  const longDir = join(dir, 'l'.repeat(200), 'm'.repeat(200));
  await mkdir(longDir, { recursive: true });
  await writeFile(join(longDir, 'long-file-name-' + 'x'.repeat(150)), 'long names');
  await symlink('t'.repeat(180), join(dir, 'long-target.sym'));
  await writeFile(join(dir, 'biguid'), 'owned');
  await chown(join(dir, 'biguid'), BIG_UID, BIG_UID + 1);
  sh('setfattr', ['-n', 'user.comment', '-v', 'hello xattr', join(dir, 'etc/hostname')]);
  sh('setfattr', ['-n', 'user.binary', '-v', '0x00ff10', join(dir, 'random.bin')]);
  // Sparse: data at 1 MiB and at the end, holes elsewhere.
  const h = await openFile(join(dir, 'sparse.img'), 'w');
  await h.write(Buffer.alloc(5000, 0xab), 0, 5000, 1 << 20);
  await h.write(Buffer.from('tail'), 0, 4, (6 << 20) - 4);
  await h.close();
  await truncate(join(dir, 'sparse.img'), 6 << 20);
}

interface Expected extends Entry {
  sha256?: string;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The directory as lstat sees it, in walk order: the independent truth. */
async function expectedEntries(root: string, withXattrs: boolean): Promise<Expected[]> {
  const out: Expected[] = [];
  const visit = async (rel: string): Promise<void> => {
    const abs = join(root, rel);
    const st = await lstat(abs);
    const type: Entry['type'] = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chr' : 'file';
    const e: Expected = {
      path: rel === '' ? '/' : '/' + rel,
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: Math.floor(st.mtimeMs / 1000),
      size: type === 'file' ? st.size : 0,
      nlink: st.nlink,
      inode: st.ino,
    };
    if (type === 'symlink') e.target = await readlink(abs);
    if (type === 'chr') e.rdev = { major: Number((st.rdev >> 8) & 0xfff), minor: Number(st.rdev & 0xff) };
    if (type === 'file' && st.size < 1 << 24) e.sha256 = sha256(readFileSync(abs));
    if (withXattrs && type === 'file') {
      const dump = sh('getfattr', ['--absolute-names', '-d', '-m', '^user\\.', '-e', 'hex', abs]);
      for (const m of dump.matchAll(/^(user\.[^=]+)=0x([0-9a-f]*)$/gm)) (e.xattrs ??= {})[m[1]] = Buffer.from(m[2], 'hex');
    }
    out.push(e);
    if (type === 'dir') {
      const names = (await readdir(abs)).sort(compareNames);
      for (const n of names) await visit(rel ? `${rel}/${n}` : n);
    }
  };
  await visit('');
  return out;
}

async function streamSha(s: AsyncIterable<Buffer>): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c);
  return h.digest('hex');
}

/** Compare a FileTree read from `tarFile` with the directory it was made from. */
async function assertTreeMatches(tarFile: string, dir: string, opts: { xattrs: boolean }): Promise<void> {
  const want = await expectedEntries(dir, opts.xattrs);
  const src = await FileSource.open(tarFile);
  const tree = await openTar(src).catch(async (err) => {
    await src.close();
    throw err;
  });
  try {
    const got: Entry[] = [];
    for await (const e of tree.walk()) got.push(e);
    assert.deepEqual(got.map((e) => e.path), want.map((e) => e.path));
    // Hard links: same inode in the tree exactly where the filesystem has the same inode.
    const ourInodeOf = new Map(got.map((e) => [e.path, e.inode]));
    for (let i = 0; i < want.length; i++) {
      const w = want[i];
      const g = got[i];
      const { inode: _wi, sha256: wantSha, ...wantFacts } = w;
      const { inode: _gi, ...gotFacts } = g;
      if (!opts.xattrs) delete gotFacts.xattrs;
      assert.deepEqual(gotFacts, wantFacts, `entry ${w.path}`);
      for (const other of want) {
        if (other !== w && other.type !== 'dir' && other.inode === w.inode) assert.equal(ourInodeOf.get(other.path), g.inode, `${other.path} is a hard link of ${w.path}`);
      }
      if (wantSha) assert.equal(await streamSha(tree.open(g)), wantSha, `content of ${w.path}`);
    }
  } finally {
    await tree.close();
    await src.close();
  }
}

/** The streaming parser must see the same members with the same content. */
async function assertStreamMatches(tarFile: string, dir: string, chunk?: number): Promise<void> {
  const want = new Map((await expectedEntries(dir, false)).filter((e) => e.sha256).map((e) => [e.path, e.sha256]));
  const seen = new Map<string, string>();
  const input = chunk ? Readable.from(splitChunks(readFileSync(tarFile), chunk)) : createReadStream(tarFile);
  for await (const { member, body } of tarStream(input, tarFile)) {
    const norm = (x: string): string => '/' + x.replace(/^\.\/?/, '');
    const p = norm(member.path);
    if (member.type === 'file' && want.has(p)) seen.set(p, await streamSha(body()));
    // A hard link carries no content: it is the earlier member's.
    if (member.type === 'hardlink') seen.set(p, seen.get(norm(member.linkpath!))!);
  }
  assert.deepEqual(seen, want);
}

function* splitChunks(b: Buffer, n: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

const skipTar = needTool('tar') || needTool('setfattr');

for (const [label, args, full] of [
  ['ustar', ['--format=ustar'], false],
  ['pax', ['--format=pax', '--xattrs', '--xattrs-include=user.*'], true],
  ['gnu', ['--format=gnu'], true],
  ['gnu --sparse', ['--format=gnu', '--sparse'], true],
  ['pax --sparse 0.0', ['--format=pax', '--sparse', '--sparse-version=0.0'], true],
  ['pax --sparse 0.1', ['--format=pax', '--sparse', '--sparse-version=0.1'], true],
  ['pax --sparse 1.0', ['--format=pax', '--sparse', '--sparse-version=1.0', '--xattrs', '--xattrs-include=user.*'], true],
] as [string, string[], boolean][]) {
  test(`GNU tar ${label}: tree and stream read back the archived directory`, { skip: skipTar }, async (t) => {
    const work = await tempDir(t);
    const dir = join(work, 'root');
    await mkdir(dir);
    await makeTree(dir, full);
    const tarFile = join(work, 'a.tar');
    sh('tar', [...args, '-cf', tarFile, '-C', dir, '.']);
    await assertTreeMatches(tarFile, dir, { xattrs: args.includes('--xattrs') });
    await assertStreamMatches(tarFile, dir);
    if (label.includes('sparse')) {
      const sparse = [];
      const src = await FileSource.open(tarFile);
      for await (const m of scanTar(src)) if (m.path.endsWith('sparse.img')) sparse.push(m);
      await src.close();
      assert.equal(sparse.length, 1);
      assert.ok(sparse[0].sparse && sparse[0].dataSize < 20000, 'sparse.img is stored sparsely');
      assert.equal(sparse[0].size, 6 << 20);
    }
  });
}

test('stream parser copes with a stream cut into odd 7-byte chunks', { skip: skipTar }, async (t) => {
  const work = await tempDir(t);
  const dir = join(work, 'root');
  await mkdir(dir);
  await makeTree(dir, true);
  sh('rm', ['-f', join(dir, 'random.bin')]);
  const tarFile = join(work, 'a.tar');
  sh('tar', ['--format=pax', '--sparse', '--sparse-version=1.0', '-cf', tarFile, '-C', dir, '.']);
  await assertStreamMatches(tarFile, dir, 7);
});

test('GNU sparse file beyond 8 GiB: base-256 real size, holes read as zeros', { skip: skipTar }, async (t) => {
  const work = await tempDir(t);
  const dir = join(work, 'root');
  await mkdir(dir);
  const size = 9 * 2 ** 30;
  const h = await openFile(join(dir, 'huge.img'), 'w');
  await h.write(Buffer.from('middle'), 0, 6, 4096 * 1000);
  await h.close();
  await truncate(join(dir, 'huge.img'), size);
  const tarFile = join(work, 'a.tar');
  sh('tar', ['--format=gnu', '--sparse', '-cf', tarFile, '-C', dir, 'huge.img']);
  const raw = readFileSync(tarFile);
  assert.equal(raw[483] & 0x80, 0x80, 'GNU tar stored the real size in base-256');
  const src = await FileSource.open(tarFile);
  const tree = await openTar(src);
  const entries: Entry[] = [];
  for await (const e of tree.walk()) entries.push(e);
  assert.equal(entries[1].size, size);
  // Read just the first 4 MiB: zeros, then "middle" at 4096000.
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const c of tree.open(entries[1]) as AsyncIterable<Buffer>) {
    chunks.push(c);
    got += c.length;
    if (got >= 4 << 20) break;
  }
  const head = Buffer.concat(chunks);
  assert.equal(head.subarray(4096000, 4096006).toString(), 'middle');
  assert.equal(head.subarray(0, 4096000).every((b) => b === 0), true);
  await tree.close();
  await src.close();
});

for (const [kind, tool] of [
  ['gzip', 'gzip'],
  ['xz', 'xz'],
  ['zstd', 'zstd'],
] as const) {
  test(`compressed tar (${kind}) is detected by magic and read through one temp file`, { skip: skipTar || needTool(tool) }, async (t) => {
    const work = await tempDir(t);
    const dir = join(work, 'root');
    await mkdir(dir);
    await makeTree(dir, true);
    const plain = join(work, 'a.tar');
    sh('tar', ['--format=pax', '--xattrs', '--xattrs-include=user.*', '-cf', plain, '-C', dir, '.']);
    sh(tool, ['-q', '-k', plain]);
    const ext = { gzip: '.gz', xz: '.xz', zstd: '.zst' }[kind];
    await assertTreeMatches(plain + ext, dir, { xattrs: true });
  });
}

async function errorOf(p: Promise<unknown>): Promise<PvError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof PvError, `expected a PvError, got ${(err as Error)?.stack}`);
    return err;
  }
  assert.fail('expected an error');
}

async function drainStream(buf: Buffer): Promise<void> {
  for await (const { body } of tarStream(Readable.from([buf]), 'x.tar')) for await (const _ of body());
}

async function drainTree(buf: Buffer): Promise<void> {
  const tree = await openTar(new BufferSource(buf, 'x.tar'));
  for await (const e of tree.walk()) if (e.type === 'file') for await (const _ of tree.open(e));
}

test('corrupt and truncated archives fail with a clear error in both readers', { skip: skipTar }, async (t) => {
  const work = await tempDir(t);
  const dir = join(work, 'root');
  await mkdir(dir);
  await writeFile(join(dir, 'one'), 'x'.repeat(3000));
  await writeFile(join(dir, 'two'), 'y'.repeat(10));
  const tarFile = join(work, 'a.tar');
  sh('tar', ['--format=pax', '-cf', tarFile, '-C', dir, 'one', 'two']);
  const good = readFileSync(tarFile);

  const flipped = Buffer.from(good);
  flipped[0] ^= 0x20;
  for (const read of [drainStream, drainTree]) {
    const e = await errorOf(read(flipped));
    assert.equal(e.code, 'tar-checksum');
    assert.match(e.message, /offset 0 has a bad checksum/);
  }
  // Cut inside a header, inside content, on a block boundary and just before the end marker.
  for (const cut of [100, 512 * 3 + 7, 512 * 4, good.indexOf(Buffer.from('yyyy')) + 512]) {
    for (const read of [drainStream, drainTree]) {
      const e = await errorOf(read(good.subarray(0, cut)));
      assert.equal(e.code, 'truncated', `cut at ${cut}: ${e.message}`);
    }
  }
  // A pax record claiming more bytes than its header holds.
  const badPax = Buffer.from(good);
  badPax.write('99', 512, 'latin1');
  assert.equal((await errorOf(drainStream(badPax))).code, 'tar-pax');
  // A path escaping the root is refused by the tree.
  const escape = join(work, 'escape.tar');
  sh('tar', ['--format=pax', '-cf', escape, '-C', dir, '--transform=s,^,../,', 'one']);
  assert.equal((await errorOf(drainTree(readFileSync(escape)))).code, 'tar-path');
});
