// ext2/3/4 images built by mke2fs -d from a tree with every kind of entry; `pvmigrate ls --json` must equal
// what the kernel shows through a read-only loop mount (lstat, getfattr, file hashes), field for field.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, symlink, link, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { needTool, privileged, sh } from './helpers/env.ts';
import { truthOf } from './helpers/feature-tree.ts';
import { openImageFile } from '../src/fs/open-image.ts';
import type { Listed } from '../src/fs/listing.ts';

const skip = privileged('mknod, chown and loop mounts of ext2/3/4 images') || needTool('mke2fs') || needTool('getfattr');


/** A file of `pieces` 4 KiB random blocks separated by 4 KiB holes: one extent each, so the tree grows deep. */
async function writeFragmented(path: string, pieces: number): Promise<void> {
  const fh = await open(path, 'w');
  for (let i = 0; i < pieces; i++) await fh.write(createHash('sha256').update(String(i)).digest().toString('hex').repeat(64), i * 8192);
  await fh.close();
}

const FIVE_G = 5 * 2 ** 30;
const BEYOND_4G = 4.5 * 2 ** 30;

/**
 * sha256 of the sparse 5 GiB file (zeros, "beyond 4 GiB" at 4.5 GiB, "the end" as its last bytes), computed
 * once with sha256sum over a file made by truncate and dd, so the truth need not read 5 GiB of holes again.
 */
const SPARSE_5G_SHA256 = '62a2dd345f8cf4b2df30525315d47c48cf5498ff49601292089ded2bd34a930c';

/**
 * 'small': every kind of entry; 'many+5g' adds a 20,000-entry directory and a 5 GiB sparse file;
 * 'many+100m' the directory and a 100 MiB sparse file whose tail needs triple indirect blocks at 1 KiB.
 */
async function buildTree(dir: string, extra: 'small' | 'many+5g' | 'many+100m'): Promise<void> {
  for (const d of ['bin', 'etc', 'usr/lib/modules', 'dev', 'run', 'home/user', 'emptydir', 'tmp', 'shared', 'ünïcødé dir/ファイル', 'many']) await mkdir(join(dir, d), { recursive: true });
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n');
  await writeFile(join(dir, 'bin/busybox'), Buffer.alloc(70000, 7));
  await link(join(dir, 'bin/busybox'), join(dir, 'bin/sh'));
  await link(join(dir, 'bin/busybox'), join(dir, 'usr/lib/busybox-hard'));
  await writeFile(join(dir, 'bin/su'), 'setuid\n');
  sh('chmod', ['4755', join(dir, 'bin/su')]);
  sh('chmod', ['2775', join(dir, 'shared')]);
  sh('chmod', ['1777', join(dir, 'tmp')]);
  await writeFile(join(dir, 'bin/ping'), 'ping\n');
  sh('setfattr', ['-n', 'security.capability', '-v', '0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=', join(dir, 'bin/ping')]);
  sh('setfattr', ['-n', 'user.comment', '-v', 'hello', join(dir, 'etc/passwd')]);
  sh('setfattr', ['-n', 'user.dir', '-v', 'on a directory', join(dir, 'shared')]);
  sh('setfattr', ['-n', 'user.big', '-v', 'x'.repeat(800), join(dir, 'usr/lib/busybox-hard')]);
  // A POSIX ACL (user 1000 r-x): ext4 stores it in its compact on-disk form, the VFS shows the xattr form.
  const acl = Buffer.alloc(4 + 5 * 8);
  acl.writeUInt32LE(2, 0);
  [[1, 7, -1], [2, 5, 1000], [4, 5, -1], [0x10, 5, -1], [0x20, 4, -1]].forEach(([tag, perm, id], i) => {
    acl.writeUInt16LE(tag!, 4 + i * 8);
    acl.writeUInt16LE(perm!, 6 + i * 8);
    acl.writeUInt32LE(id! >>> 0, 8 + i * 8);
  });
  await writeFile(join(dir, 'bin/acl'), 'acl\n');
  sh('setfattr', ['-n', 'system.posix_acl_access', '-v', '0s' + acl.toString('base64'), join(dir, 'bin/acl')]);
  await symlink('usr/lib', join(dir, 'lib'));
  await symlink('/' + 'long-target/'.repeat(20), join(dir, 'usr/long-link'));
  sh('mkfifo', [join(dir, 'run/fifo')]);
  // A unix socket: a process that exits while listening leaves the socket file behind.
  sh(process.execPath, ['-e', `require('net').createServer().listen(process.argv[1], () => process.exit(0))`, join(dir, 'run/socket')]);
  await writeFile(join(dir, 'home/high-ids'), 'uid and gid above 65535 use the inode high halves\n');
  sh('mknod', [join(dir, 'dev/console'), 'c', '5', '1']);
  sh('mknod', [join(dir, 'dev/sda'), 'b', '8', '0']);
  sh('mknod', [join(dir, 'dev/wide'), 'c', '300', '70000']);
  await writeFile(join(dir, 'home/user/.profile'), 'export PS1=$\n');
  sh('chown', ['-R', '1000:1000', join(dir, 'home/user')]);
  sh('chown', ['100000:200000', join(dir, 'home/high-ids')]);
  await writeFile(join(dir, 'ünïcødé dir/ファイル/with space.txt'), 'ü\n');
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'usr/lib/modules/random.bin'), createHash('sha512').update('seed').digest().toString('hex').repeat(40000));
  sh('truncate', ['-s', '20M', join(dir, 'sparse-20m')]);
  const fh = await open(join(dir, 'sparse-20m'), 'r+');
  await fh.write('data in the middle', 10_000_000);
  await fh.close();
  await writeFragmented(join(dir, 'usr/lib/fragmented'), 1500);
  await writeFile(join(dir, 'future'), 'after 2038\n');
  await utimes(join(dir, 'future'), 2208988800, 2208988800);
  for (let i = 0; i < 300; i++) await writeFile(join(dir, 'usr/lib', `lib${i}.so.${i}`), `lib ${i}\n`);
  if (extra !== 'small') for (let i = 0; i < 20000; i++) await writeFile(join(dir, 'many', `entry-${i}`), '');
  if (extra === 'many+5g') {
    sh('truncate', ['-s', String(FIVE_G), join(dir, 'sparse-5g')]);
    const big = await open(join(dir, 'sparse-5g'), 'r+');
    await big.write('beyond 4 GiB', BEYOND_4G);
    await big.write('the end', FIVE_G - 7);
    await big.close();
  }
  if (extra === 'many+100m') {
    sh('truncate', ['-s', '100M', join(dir, 'sparse-100m')]);
    const f = await open(join(dir, 'sparse-100m'), 'r+');
    await f.write('past the double indirect reach', 90 << 20);
    await f.close();
  }
}

interface Variant {
  name: string;
  args: string[];
  tree: 'small' | 'many+5g' | 'many+100m';
  /** Extent-mapped: add an uninitialised (fallocated) extent over stale data with debugfs. */
  extents: boolean;
  /** Set a 20,000-byte xattr through the kernel, which stores it in an EA inode. */
  eaInode?: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'ext4 4 KiB blocks (64bit, metadata_csum, flex_bg, huge_file, extents)', args: ['-t', 'ext4', '-b', '4096'], tree: 'many+5g', extents: true },
  { name: 'ext2 with 1 KiB blocks (double and triple indirect)', args: ['-t', 'ext2', '-b', '1024'], tree: 'many+100m', extents: false },
  { name: 'ext3 4 KiB blocks (journal, indirect blocks)', args: ['-t', 'ext3', '-b', '4096'], tree: 'small', extents: false },
  { name: 'ext4 inline_data', args: ['-t', 'ext4', '-O', 'inline_data'], tree: 'small', extents: false },
  { name: 'ext4 without extents (block maps)', args: ['-t', 'ext4', '-O', '^extent,^64bit'], tree: 'small', extents: false },
  { name: 'ext4 1 KiB blocks (extent tree depth 2)', args: ['-t', 'ext4', '-b', '1024'], tree: 'small', extents: true },
  { name: 'ext4 128-byte inodes (xattrs in blocks only)', args: ['-t', 'ext4', '-I', '128'], tree: 'small', extents: true },
  { name: 'ext4 ea_inode (xattr value in its own inode)', args: ['-t', 'ext4', '-b', '4096', '-O', 'ea_inode'], tree: 'small', extents: true, eaInode: true },
  { name: 'ext4 meta_bg', args: ['-t', 'ext4', '-O', 'meta_bg,^resize_inode'], tree: 'small', extents: true },
];

describe('ext2/3/4 images read back as the kernel mounts them', { skip }, () => {
  let work: string;
  const trees = (name: string) => join(work, name);

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pvmigrate-ext4-'));
    for (const kind of ['small', 'many+5g', 'many+100m'] as const) await buildTree(trees(kind), kind);
  });
  after(() => rm(work, { recursive: true, force: true }));

  for (const v of VARIANTS) {
    test(v.name, async (t) => {
      const img = join(work, `${v.name.split(' ')[0]}-${VARIANTS.indexOf(v)}.img`);
      const mnt = join(work, 'mnt');
      await mkdir(mnt, { recursive: true });
      if (v.tree !== 'small') {
        // mke2fs -d links entries into unindexed directories one by one (quadratic for 20,000 names); the kernel
        // builds the htree itself, so the big tree is copied in through a read-write mount.
        sh('mke2fs', ['-q', '-F', ...v.args, '-N', '24000', '-E', 'root_owner=0:0', img, '160M']);
        sh('mount', ['-o', 'loop', img, mnt]);
        try {
          sh('cp', ['-a', '--sparse=always', trees(v.tree) + '/.', mnt]);
        } finally {
          sh('umount', [mnt]);
        }
        assert.doesNotMatch(sh('debugfs', ['-R', 'htree /many', img]), /is not a hash-indexed directory/);
      } else {
        sh('mke2fs', ['-q', '-F', ...v.args, '-N', '2000', '-E', 'root_owner=0:0', '-d', trees('small'), img, '48M']);
      }
      if (v.eaInode) {
        sh('mount', ['-o', 'loop', img, mnt]);
        try {
          sh('setfattr', ['-n', 'user.huge', '-v', createHash('sha512').update('ea').digest('hex').repeat(160).slice(0, 20000), join(mnt, 'etc/passwd')]);
        } finally {
          sh('umount', [mnt]);
        }
        assert.match(sh('debugfs', ['-R', 'stat /etc/passwd', img]), /File ACL: 0\b/, 'the big value is not in an xattr block');
      }
      if (v.extents) {
        // Stale random bytes in free blocks, then an unwritten extent over them: it must read as zeros.
        const cmds = join(work, 'cmds');
        await writeFile(cmds, `write ${join(trees('small'), 'usr/lib/modules/random.bin')} stale\nrm stale\nwrite /dev/null prealloc\nfallocate /prealloc 0 63\nsif /prealloc size 409600\n`);
        sh('debugfs', ['-w', '-f', cmds, img]);
        assert.match(sh('debugfs', ['-R', 'ex /prealloc', img]), /Uninit/);
      }
      if (v.tree === 'many+100m') assert.match(sh('debugfs', ['-R', 'stat /sparse-100m', img]), /\(TIND\)/, 'the 100 MiB file reaches triple indirect blocks');
      if (v.name.includes('inline')) assert.match(sh('debugfs', ['-R', 'stat /etc/passwd', img]), /Size of inline data/);
      if (v.name.includes('depth 2')) assert.match(sh('debugfs', ['-R', 'ex /usr/lib/fragmented', img]), /^\s*2\/\s*2\s/m, 'the fragmented file has a depth-2 extent tree');

      sh('mount', ['-o', 'loop,ro', img, mnt]);
      const inodes = new Map<string, number>();
      let listing: Listed[];
      try {
        listing = await truthOf(mnt, new Map([['/sparse-5g', SPARSE_5G_SHA256]]), undefined, inodes);
      } finally {
        sh('umount', [mnt]);
      }
      const r = await runCli(['ls', '--json', img]);
      assert.equal(r.code, 0, r.stderr);
      const ours = JSON.parse(r.stdout) as Listed[];
      assert.equal(ours.length, listing.length);
      for (let i = 0; i < ours.length; i++) assert.deepEqual(ours[i], listing[i]);
      assert.ok(ours.some((e) => e.path === '/usr/lib/busybox-hard' && e.nlink === 3 && e.xattrs?.['user.big']));
      assert.ok(ours.some((e) => e.path === '/run/socket' && e.type === 'sock'));
      assert.ok(ours.some((e) => e.path === '/home/high-ids' && e.uid === 100000 && e.gid === 200000));
      assert.ok(ours.find((e) => e.path === '/bin/acl')?.xattrs?.['system.posix_acl_access'], 'the ACL is listed');
      if (v.eaInode) assert.equal(Buffer.from(ours.find((e) => e.path === '/etc/passwd')!.xattrs!['user.huge']!, 'base64').length, 20000);

      // Hardlink identity: the reader's inode numbers are the kernel's.
      const tree = await openImageFile(img);
      t.after(() => tree.close());
      for await (const e of tree.walk()) assert.equal(e.inode, inodes.get(e.path), e.path);
    });
  }
});
