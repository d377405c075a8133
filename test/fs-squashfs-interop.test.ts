// Our squashfs reader and writer against squashfs-tools on one tree holding every kind of entry.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, chown, link, mkdir, readFile, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openDirTree } from '../src/fs/dir-tree.ts';
import type { Entry, FileTree } from '../src/fs/file-tree.ts';
import { FileSource } from '../src/fs/source.ts';
import { openSquashfs } from '../src/fs/squashfs/reader.ts';
import { writeSquashfs } from '../src/fs/squashfs/writer.ts';
import { isRoot, needTool, privileged, sh } from './helpers/env.ts';
import { unsquashfsList, utcMinute, type UnsquashfsEntry } from './helpers/unsquashfs.ts';
import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';

/** tmpfs when there is one: creating and extracting 20,000 files on the VM disk costs more than the test. */
async function fastTempDir(prefix: string): Promise<string> {
  const shm = await access('/dev/shm', constants.W_OK).then(() => true, () => false);
  return mkdtemp(join(shm ? '/dev/shm' : tmpdir(), prefix));
}

const tools = needTool('mksquashfs') || needTool('unsquashfs') || needTool('getfattr');

interface Seen {
  entry: Entry;
  sha256?: string;
}

async function hashStream(s: NodeJS.ReadableStream): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return h.digest('hex');
}

/** Every entry of a tree with the hash of every regular file. */
async function collect(tree: FileTree, skipHash: (e: Entry) => boolean = () => false): Promise<Map<string, Seen>> {
  const out = new Map<string, Seen>();
  for await (const entry of tree.walk()) {
    const seen: Seen = { entry };
    if (entry.type === 'file' && !skipHash(entry)) seen.sha256 = await hashStream(tree.open(entry));
    out.set(entry.path, seen);
  }
  return out;
}

/** Our reader's view equals unsquashfs's listing, every entry and field it shows. */
function assertMatchesListing(ours: Map<string, Seen>, listing: Map<string, UnsquashfsEntry>, what: string, options: { dirSizes?: boolean } = {}): void {
  assert.deepEqual([...ours.keys()].sort(), [...listing.keys()].sort(), `${what}: same paths`);
  for (const [path, { entry }] of ours) {
    const l = listing.get(path)!;
    assert.equal(entry.type, l.type, `${what} ${path} type`);
    assert.equal(entry.mode, l.mode, `${what} ${path} mode`);
    assert.equal(entry.uid, l.uid, `${what} ${path} uid`);
    assert.equal(entry.gid, l.gid, `${what} ${path} gid`);
    assert.equal(utcMinute(entry.mtime), l.mtime, `${what} ${path} mtime`);
    if (entry.type === 'file') assert.equal(String(entry.size), l.size, `${what} ${path} size`);
    // unsquashfs 4.5.1 prints minors above 255 wrongly; those are checked against the kernel mount instead.
    if ((entry.type === 'chr' || entry.type === 'blk') && entry.rdev!.minor < 256) assert.equal(`${entry.rdev!.major}:${entry.rdev!.minor}`, l.size, `${what} ${path} rdev`);
    if (entry.type === 'symlink') assert.equal(entry.target, l.target, `${what} ${path} target`);
  }
}

/** Two views agree on content, xattrs and hardlink grouping (the truth side comes from a real extraction). */
function assertSameContent(ours: Map<string, Seen>, truth: Map<string, Seen>, what: string): void {
  assert.deepEqual([...ours.keys()], [...truth.keys()], `${what}: same walk order`);
  const groupsOf = (m: Map<string, Seen>) => {
    const g = new Map<number, string[]>();
    for (const [p, s] of m) if (s.entry.type !== 'dir') g.set(s.entry.inode, [...(g.get(s.entry.inode) ?? []), p]);
    return [...g.values()].filter((v) => v.length > 1).map((v) => v.join('|')).sort();
  };
  assert.deepEqual(groupsOf(ours), groupsOf(truth), `${what}: hardlink groups`);
  for (const [path, s] of ours) {
    const t = truth.get(path)!;
    assert.equal(s.sha256, t.sha256, `${what} ${path} sha256`);
    assert.deepEqual(s.entry.xattrs ?? {}, t.entry.xattrs ?? {}, `${what} ${path} xattrs`);
    if (s.entry.type !== 'dir') assert.equal(s.entry.nlink, t.entry.nlink, `${what} ${path} nlink`);
    if (s.entry.type === 'file') assert.equal(s.entry.mtime, t.entry.mtime, `${what} ${path} mtime`);
  }
}

let work: string;
let src: string;
/** The source directory as the host sees it: the truth every image must reproduce. */
let sourceView: Map<string, Seen>;

async function buildTree(root: string): Promise<void> {
  await mkdir(join(root, 'etc', 'empty.d'), { recursive: true });
  await mkdir(join(root, 'usr', 'lib'), { recursive: true });
  await mkdir(join(root, 'many'));
  await mkdir(join(root, 'empty'));
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await link(join(root, 'etc', 'passwd'), join(root, 'usr', 'passwd-hardlink'));
  await link(join(root, 'etc', 'passwd'), join(root, 'usr', 'lib', 'passwd-second'));
  await writeFile(join(root, 'empty-file'), '');
  await symlink('usr/lib', join(root, 'lib'));
  await symlink('/nonexistent/target', join(root, 'dangling'));
  sh('mkfifo', [join(root, 'fifo')]);
  // A unix socket: Node unlinks its listening path on close, so keep a second link to the inode.
  const server = createServer();
  await new Promise<void>((res) => server.listen(join(root, '.listening'), res));
  await link(join(root, '.listening'), join(root, 'socket'));
  await new Promise<void>((res) => server.close(() => res()));
  // Content: random (incompressible), text (compressible), block-boundary sizes and duplicates.
  let seed = 12345;
  const random = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      b[i] = seed >> 16;
    }
    return b;
  };
  const text = (n: number) => Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n'.repeat(Math.ceil(n / 55)).slice(0, n));
  const r300k = random(300_000);
  await writeFile(join(root, 'usr', 'lib', 'random-300k'), r300k);
  await writeFile(join(root, 'usr', 'lib', 'random-300k-copy'), r300k);
  await writeFile(join(root, 'usr', 'lib', 'text-1m'), text(1 << 20));
  await writeFile(join(root, 'usr', 'lib', 'exactly-128k'), text(131072));
  await writeFile(join(root, 'usr', 'lib', 'block-plus-one'), text(131073));
  await writeFile(join(root, 'usr', 'lib', 'small-dup-a'), 'same small content\n');
  await writeFile(join(root, 'usr', 'lib', 'small-dup-b'), 'same small content\n');
  await writeFile(join(root, 'usr', 'bin-suid'), random(5000));
  await chmod(join(root, 'usr', 'bin-suid'), 0o4755);
  await writeFile(join(root, 'usr', 'sgid-sticky'), 'x');
  await chmod(join(root, 'usr', 'sgid-sticky'), 0o3711);
  await writeFile(join(root, 'h\u00e9llo w\u00f6rld \u2603.txt'), 'utf-8 and spaces\n');
  await mkdir(join(root, 'dir with spaces'));
  await writeFile(join(root, 'dir with spaces', 'file'), 'x\n');
  await writeFile(join(root, 'sparse-20m'), '');
  await truncate(join(root, 'sparse-20m'), 20 << 20);
  // Data at 10 MiB inside the sparse file, so it is not all holes.
  sh('sh', ['-c', `printf 'middle' | dd of='${join(root, 'sparse-20m')}' bs=1 seek=10485760 conv=notrunc status=none`]);
  sh('setfattr', ['-n', 'user.comment', '-v', 'hello world', join(root, 'etc', 'passwd')]);
  sh('setfattr', ['-n', 'user.binary', '-v', '0sAAECAwQ=', join(root, 'usr', 'lib', 'text-1m')]);
  sh('setfattr', ['-n', 'user.dir', '-v', 'on a dir', join(root, 'usr')]);
  // One value in two different xattr sets: mksquashfs stores it once, out of line.
  const shared = '0s' + random(300).toString('base64');
  for (const [f, x] of [['exactly-128k', '1'], ['block-plus-one', '2']]) {
    sh('setfattr', ['-n', 'user.shared', '-v', shared, join(root, 'usr', 'lib', f!)]);
    sh('setfattr', ['-n', 'user.x', '-v', x!, join(root, 'usr', 'lib', f!)]);
  }
  // 20,000 entries in one directory.
  const many = join(root, 'many');
  for (let i = 0; i < 20_000; i += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, k) => writeFile(join(many, `f${String(i + k).padStart(5, '0')}`), (i + k) % 7 === 0 ? '' : `${i + k}\n`)));
  }
  if (isRoot) {
    sh('mknod', [join(root, 'null'), 'c', '1', '3']);
    sh('mknod', [join(root, 'sda1'), 'b', '8', '1']);
    sh('mknod', [join(root, 'big-minor'), 'c', '240', '300000']);
    await chown(join(root, 'usr', 'lib', 'text-1m'), 1000, 1000);
    await chown(join(root, 'dir with spaces'), 1000, 100);
    sh('setfattr', ['-n', 'security.capability', '-v', '0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=', join(root, 'usr', 'bin-suid')]);
    // trusted.* can sit on any inode: gives extended symlink, device and fifo inodes.
    for (const p of ['lib', 'fifo', 'null']) sh('setfattr', ['-h', '-n', 'trusted.label', '-v', `on ${p}`, join(root, p)]);
  }
  // Fixed times so listings compare to the minute without racing the clock.
  sh('find', [root, '-exec', 'touch', '-h', '-d', '2024-02-29 12:34:56 UTC', '{}', '+']);
}

describe('squashfs interop with squashfs-tools', { skip: tools, timeout: 400_000 }, () => {
  before(async () => {
    work = await fastTempDir('pvmigrate-sqfs-');
    src = join(work, 'src');
    await mkdir(src);
    await buildTree(src);
    sourceView = await collect(await openDirTree(src));
  });
  after(() => rm(work, { recursive: true, force: true }));

  let truthView: Map<string, Seen>;
  const extracted = async (image: string, name: string): Promise<Map<string, Seen>> => {
    const dir = join(work, name);
    try {
      sh('unsquashfs', ['-q', '-n', '-d', dir, image]);
      return await collect(await openDirTree(dir));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  for (const comp of ['gzip', 'xz', 'zstd', 'lz4', 'lzo'] as const) {
    test(`reader: mksquashfs -comp ${comp} image matches unsquashfs -lln and extraction`, async () => {
      const image = join(work, `mk-${comp}.sqfs`);
      const extra = comp === 'lz4' ? ['-Xhc'] : [];
      sh('mksquashfs', [src, image, '-comp', comp, ...extra, '-quiet', '-no-progress', '-processors', '2']);
      const source = await FileSource.open(image);
      try {
        const ours = await collect(await openSquashfs(source));
        assertMatchesListing(ours, unsquashfsList(image), comp);
        truthView ??= await extracted(image, 'extract-truth');
        assertSameContent(ours, truthView, comp);
        assert.equal(ours.get('/sparse-20m')!.entry.size, 20 << 20);
        if (isRoot) assert.deepEqual(ours.get('/big-minor')!.entry.rdev, { major: 240, minor: 300000 });
      } finally {
        await source.close();
      }
    });
  }

  test('writer: our image lists like the source under unsquashfs, extracts to the same content, and is deterministic', async () => {
    const one = join(work, 'ours-1.sqfs');
    const two = join(work, 'ours-2.sqfs');
    const r1 = await writeSquashfs(await openDirTree(src), one, { comp: 'gzip', workers: 1 });
    await writeSquashfs(await openDirTree(src), two, { comp: 'gzip', workers: 2 });
    assert.ok((await readFile(one)).equals(await readFile(two)), '1 vs 2 workers: identical bytes');
    assert.equal((await stat(one)).size, r1.size);
    // The source tree as the truth: unsquashfs on mksquashfs's image of the same directory.
    const reference = join(work, 'mk-ref.sqfs');
    sh('mksquashfs', [src, reference, '-comp', 'gzip', '-quiet', '-no-progress']);
    const theirs = unsquashfsList(reference);
    const mine = unsquashfsList(one);
    for (const [p, l] of theirs) {
      const m = mine.get(p);
      assert.ok(m, `our image lacks ${p}`);
      // Directory "sizes" are listing byte counts, which depend on how entries are grouped.
      assert.deepEqual(l.type === 'dir' ? { ...m, size: '' } : m, l.type === 'dir' ? { ...l, size: '' } : l, p);
    }
    assert.equal(mine.size, theirs.size);
    const back = await extracted(one, 'extract-ours');
    assertSameContent(back, sourceView, 'unsquashfs of our image vs source');
    // And our own reader agrees with the source.
    const s = await FileSource.open(one);
    try {
      assertSameContent(await collect(await openSquashfs(s)), sourceView, 'our reader on our image');
    } finally {
      await s.close();
    }
    const size = (await stat(one)).size;
    const ref = (await stat(reference)).size;
    assert.ok(size <= ref * 1.02, `our image ${size} bytes vs mksquashfs ${ref}: more than 2% larger`);
  });

  test('writer: xz image lists like the source and reads back the same content', async () => {
    const image = join(work, 'ours-xz.sqfs');
    await writeSquashfs(await openDirTree(src), image, { comp: 'xz', workers: 2 });
    assert.match(sh('unsquashfs', ['-s', image]), /Compression xz/);
    const s = await FileSource.open(image);
    try {
      const ours = await collect(await openSquashfs(s));
      assertMatchesListing(ours, unsquashfsList(image), 'xz');
      assertSameContent(ours, sourceView, 'xz');
    } finally {
      await s.close();
    }
  });

  for (const name of ['ours-1.sqfs', 'ours-xz.sqfs']) {
    test(`writer: loop-mounted ${name} reads back every file, hash and attribute`, { skip: privileged('loop mount') }, async () => {
      const image = join(work, name);
      const mnt = join(work, 'mnt');
      await mkdir(mnt, { recursive: true });
      sh('mount', ['-t', 'squashfs', '-o', 'loop,ro', image, mnt]);
      try {
        // Every path lookup in /many goes through the directory index the writer made.
        const mounted = await collect(await openDirTree(mnt));
        assertSameContent(mounted, sourceView, 'kernel mount');
        for (const [p, s] of mounted) {
          const t = sourceView.get(p)!.entry;
          assert.deepEqual([s.entry.type, s.entry.mode, s.entry.uid, s.entry.gid, s.entry.size, s.entry.target, s.entry.rdev], [t.type, t.mode, t.uid, t.gid, t.size, t.target, t.rdev], p);
        }
      } finally {
        sh('umount', [mnt]);
      }
    });
  }
});
