// Corrupt ext4 images end in a clear InvalidInputError (exit 1 from the CLI), never a hang or a crash.
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir, open, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';
import { PvError } from '../src/errors.ts';
import { openExt4 } from '../src/fs/ext4/reader.ts';
import { BufferSource } from '../src/fs/source.ts';
import { seededRandom } from './helpers/random.ts';

const skip = needTool('mke2fs') || needTool('debugfs');

/** A small ext4 image (1 KiB blocks) with a directory, a symlink and a fragmented file (depth-1 extent tree). */
async function smallImage(dir: string, extra: string[] = []): Promise<string> {
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'dir/sub'), { recursive: true });
  await writeFile(join(tree, 'dir/file'), 'content\n');
  await symlink('dir/file', join(tree, 'link'));
  const fh = await open(join(tree, 'frag'), 'w');
  for (let i = 0; i < 40; i++) await fh.write(Buffer.alloc(1024, i + 1), 0, 1024, i * 2048);
  await fh.close();
  const img = join(dir, 'img.ext4');
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', ...extra, '-d', tree, img, '4M']);
  return img;
}

async function lsFails(img: string, pattern: RegExp): Promise<void> {
  const r = await runCli(['ls', '--json', img]);
  assert.equal(r.code, 1, `exit 1 expected, got ${r.code}: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, pattern);
  assert.ok(r.stderr.includes(img), 'the error names the image');
  assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
}

test('a truncated image is reported as truncated', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await smallImage(dir);
  const bytes = await readFile(img);
  await writeFile(img, bytes.subarray(0, bytes.length / 2));
  await lsFails(img, /truncated/);
});

test('a superblock with an absurd geometry is refused', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await smallImage(dir, ['-O', '^metadata_csum']);
  const fh = await open(img, 'r+');
  await fh.write(Buffer.from([0, 0, 0, 0]), 0, 4, 1024 + 0x28); // s_inodes_per_group = 0
  await fh.close();
  await lsFails(img, /inodes per group 0/);
});

test('with metadata_csum, a changed superblock fails its checksum', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await smallImage(dir);
  const fh = await open(img, 'r+');
  await fh.write(Buffer.from('tampered'), 0, 8, 1024 + 0x78); // s_volume_name
  await fh.close();
  await lsFails(img, /superblock fails its metadata_csum checksum/);
});

test('a directory linked into its own subdirectory (a loop) is detected', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await smallImage(dir);
  sh('debugfs', ['-w', '-R', 'ln /dir /dir/sub/back', img]);
  await lsFails(img, /loops/);
});

test('an extent tree whose leaf claims to be an index is refused (by checksum, and by structure without one)', { skip }, async (t) => {
  for (const [features, expected] of [
    [[], /extent block \d+ fails its metadata_csum checksum/],
    [['-O', '^metadata_csum'], /extent tree depth 1 is invalid/],
  ] as const) {
    const dir = await tempDir(t);
    const img = await smallImage(dir, [...features]);
    const ex = sh('debugfs', ['-R', 'ex /frag', img]);
    // "0/ 1   1/  1     0 -    79  1234           80": the index entry's physical block is the leaf.
    const m = /^\s*0\/\s*1\s+\d+\/\s*\d+\s+\d+\s*-\s*\d+\s+(\d+)/m.exec(ex);
    assert.ok(m, `frag has a depth-1 extent tree:\n${ex}`);
    const leaf = Number(m[1]);
    const fh = await open(img, 'r+');
    const depth = Buffer.alloc(2);
    depth.writeUInt16LE(1);
    await fh.write(depth, 0, 2, leaf * 1024 + 6);
    await fh.close();
    await lsFails(img, expected);
  }
});

test('a file size beyond what the block map can address is refused', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await smallImage(dir);
  sh('debugfs', ['-w', '-R', 'sif /dir/file size 0x100000000000000', img]);
  await lsFails(img, /beyond what its block map can address/);
});

// i_block words: 0-2 the extent header, 3 ee_block, 4 ee_len and start_hi, 5 start_lo of the first extent.
test('an extent pointing outside the filesystem is refused', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await smallImage(dir);
  sh('debugfs', ['-w', '-R', 'sif /dir/file block[5] 99999999', img]);
  await lsFails(img, /lie outside the \d+-block filesystem/);
});

test('random byte flips in metadata end in success or an InvalidInputError, never a crash or hang', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await smallImage(dir, ['-O', '^metadata_csum']);
  const pristine = await readFile(img);
  const rand = seededRandom(0x9e3779b9); // replayable
  // Metadata lives in the first groups' tables and the inode table: flip bytes in the first 300 KiB.
  let failures = 0;
  for (let round = 0; round < 300; round++) {
    const bytes = Buffer.from(pristine);
    for (let k = 0; k < 8; k++) bytes[1024 + rand(300 * 1024)] ^= 1 << rand(8);
    const started = Date.now();
    try {
      const tree = await openExt4(new BufferSource(bytes, `round-${round}`));
      let entries = 0;
      for await (const e of tree.walk()) {
        if (++entries > 10_000) break;
        if (e.type !== 'file') continue;
        // A flipped size can legitimately describe a sparse file of terabytes: read a bounded prefix.
        let read = 0;
        for await (const c of tree.open(e)) if ((read += (c as Buffer).length) > 8 << 20) break;
      }
    } catch (err) {
      assert.ok(err instanceof PvError, `round ${round}: ${(err as Error).stack}`);
      assert.equal(err.exitCode, 1, `round ${round}: ${err.message}`);
      failures++;
    }
    assert.ok(Date.now() - started < 5000, `round ${round} took ${Date.now() - started} ms`);
  }
  assert.ok(failures > 0, 'some flips are detected');
});

test('with metadata_csum, an inode whose bytes changed fails its checksum', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await smallImage(dir);
  // "Inode 13 is part of block group 0\n\tlocated at block 37, offset 0x0c00"
  const m = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(sh('debugfs', ['-R', 'imap /dir/file', img]));
  assert.ok(m);
  const at = Number(m[1]) * 1024 + Number(m[2]) + 4; // i_size_lo
  const fh = await open(img, 'r+');
  await fh.write(Buffer.from([0x40]), 0, 1, at + 3);
  await fh.close();
  await lsFails(img, /inode \d+ fails its metadata_csum checksum/);
});

test('extents that map the same blocks again and again are refused once they exceed the filesystem', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await smallImage(dir);
  // A root node with 4 extents of 3000 blocks, all at physical block 1 (the 4 MiB filesystem has 4096).
  const words = [0x0004f30a, 4, 0];
  for (let i = 0; i < 4; i++) words.push(i * 3000, 3000, 1);
  const cmds = words.map((w, i) => `sif /dir/file block[${i}] ${w}`);
  cmds.push(`sif /dir/file size ${12000 * 1024}`);
  await writeFile(join(dir, 'cmds'), cmds.join('\n') + '\n');
  sh('debugfs', ['-w', '-f', join(dir, 'cmds'), img]);
  await lsFails(img, /covers more blocks than the 4096-block filesystem has/);
});

test('with metadata_csum, a changed group descriptor fails its checksum', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await smallImage(dir);
  // 1 KiB blocks: the descriptors start at block 2; flip a bit of group 0's free-blocks count (0x0c).
  const fh = await open(img, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, 2048 + 0x0c);
  b[0]! ^= 1;
  await fh.write(b, 0, 1, 2048 + 0x0c);
  await fh.close();
  await lsFails(img, /group 0's descriptor fails its metadata_csum checksum/);
});

test('with metadata_csum, a changed directory block or xattr block fails its checksum', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await smallImage(dir);
  const flip = async (at: number) => {
    const fh = await open(img, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0]! ^= 0x20;
    await fh.write(b, 0, 1, at);
    await fh.close();
  };
  const pristine = await readFile(img);
  // /dir holds "file" and "sub": its one block starts with ".", ".." and then "file" at byte 24.
  const dirBlock = Number(sh('debugfs', ['-R', 'blocks /dir', img]).trim());
  await flip(dirBlock * 1024 + 24 + 8);
  await lsFails(img, /directory \/dir \(inode \d+\): a directory block fails its metadata_csum checksum/);

  await writeFile(img, pristine);
  await writeFile(join(dir, 'value'), 'v'.repeat(400));
  sh('debugfs', ['-w', '-R', `ea_set -f ${join(dir, 'value')} /dir/file user.large`, img]);
  const acl = Number(/File ACL: (\d+)/.exec(sh('debugfs', ['-R', 'stat /dir/file', img]))![1]);
  assert.ok(acl > 0, 'the 400-byte value went to an xattr block');
  await flip(acl * 1024 + 1000);
  await lsFails(img, new RegExp(`xattr block ${acl} fails its metadata_csum checksum`));
});
