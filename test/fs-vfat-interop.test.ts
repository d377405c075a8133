// FAT12/16/32 volumes made by mkfs.vfat and filled by mtools; `pvmigrate ls --json` must list what mtools
// copies back out (names, sizes, hashes, mtimes), with the modes and link counts of a default Linux mount.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';
import { PvError } from '../src/errors.ts';
import { openVfat } from '../src/fs/vfat/reader.ts';
import { BufferSource } from '../src/fs/source.ts';
import type { Listed } from '../src/fs/listing.ts';
import { seededRandom } from './helpers/random.ts';

const skip = needTool('mkfs.vfat') || needTool('mcopy');
const UTC = { TZ: 'UTC', MTOOLS_SKIP_CHECK: '1' };


async function buildTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'boot/overlays'), { recursive: true });
  await mkdir(join(dir, 'EFI/BOOT'), { recursive: true });
  await mkdir(join(dir, 'empty dir'), { recursive: true });
  await writeFile(join(dir, 'boot/zImage'), createHash('sha512').update('kernel').digest().toString('hex').repeat(20000));
  await writeFile(join(dir, 'boot/bcm2711-rpi-4-b.dtb'), 'dtb\n');
  await writeFile(join(dir, 'boot/overlays/README'), 'overlays\n');
  await writeFile(join(dir, 'EFI/BOOT/BOOTAA64.EFI'), 'efi\n');
  await writeFile(join(dir, 'lower.txt'), 'short name stored upper case with the lower-case flags\n');
  await writeFile(join(dir, 'UPPER.TXT'), 'plain 8.3\n');
  await writeFile(join(dir, 'Mixed Case Long Name.txt'), 'long name\n');
  await writeFile(join(dir, 'ünïcødé – ファイル.txt'), 'utf-16 long name\n');
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'config.txt'), 'read-only\n');
  // Enough entries that the directory spans several clusters.
  await mkdir(join(dir, 'many'));
  for (let i = 0; i < 300; i++) await writeFile(join(dir, 'many', `file number ${i}.dat`), `${i}\n`);
}

async function hashFile(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Walk what mtools copied out: names, sizes, hashes and mtimes as the FAT holds them. */
async function truthOf(root: string): Promise<Listed[]> {
  const out: Listed[] = [];
  const visit = async (rel: string): Promise<number> => {
    const abs = rel === '/' ? root : root + rel;
    const st = await lstat(abs);
    const l: Listed = { path: rel, type: st.isDirectory() ? 'dir' : 'file', mode: '0755', uid: 0, gid: 0, size: st.isDirectory() ? 0 : st.size, nlink: 1, mtime: rel === '/' ? 0 : Math.floor(st.mtimeMs / 1000) };
    out.push(l);
    if (st.isDirectory()) {
      let subdirs = 0;
      for (const name of await readdir(abs)) subdirs += await visit((rel === '/' ? '/' : rel + '/') + name);
      l.nlink = 2 + subdirs;
      return 1;
    }
    l.sha256 = await hashFile(abs);
    return 0;
  };
  await visit('/');
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

for (const [fat, size, perCluster] of [
  ['12', '4M', '4'],
  ['16', '24M', '1'],
  ['32', '48M', '1'],
] as const) {
  test(`FAT${fat} with long names, nested and multi-cluster directories`, { skip }, async (t) => {
    const dir = await tempDir(t);
    const tree = join(dir, 'tree');
    await buildTree(tree);
    const img = join(dir, `fat${fat}.img`);
    sh('truncate', ['-s', size, img]);
    sh('mkfs.vfat', ['-F', fat, '-s', perCluster, img]);
    assert.match(sh('fsck.fat', ['-n', '-v', img]), new RegExp(`FATs, ${fat} bit entries`));
    for (const name of await readdir(tree)) sh('mcopy', ['-s', '-m', '-i', img, join(tree, name), '::/'], { env: UTC });
    sh('mattrib', ['-i', img, '+r', '::/config.txt'], { env: UTC });

    const back = join(dir, 'back');
    await mkdir(back);
    sh('mcopy', ['-s', '-m', '-n', '-i', img, '::/*', back], { env: UTC });
    const truth = await truthOf(back);
    truth.find((e) => e.path === '/config.txt')!.mode = '0555';

    const r = await runCli(['ls', '--json', img]);
    assert.equal(r.code, 0, r.stderr);
    const ours = JSON.parse(r.stdout) as Listed[];
    assert.deepEqual(ours.map((e) => e.path), truth.map((e) => e.path));
    for (let i = 0; i < ours.length; i++) assert.deepEqual(ours[i], truth[i]);
    assert.ok(ours.some((e) => e.path === '/ünïcødé – ファイル.txt'));
    assert.ok(ours.some((e) => e.path === '/lower.txt'));
  });
}

test('a FAT chain that loops and a truncated volume are reported, not followed forever', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = join(dir, 'fat16.img');
  sh('truncate', ['-s', '24M', img]);
  sh('mkfs.vfat', ['-F', '16', '-s', '1', img]);
  const file = join(dir, 'data.bin');
  await writeFile(file, Buffer.alloc(5000, 1));
  sh('mcopy', ['-i', img, file, '::/DATA.BIN'], { env: UTC });
  // mkfs.vfat: 512-byte sectors; the FAT starts after the reserved sectors. The file's first cluster is 3
  // (cluster 2... belongs to nothing: FAT16 root is fixed), so point its FAT entry back at itself.
  const boot = await readFile(img);
  const fatStart = boot.readUInt16LE(14) * boot.readUInt16LE(11);
  const rootStart = fatStart + boot[16]! * boot.readUInt16LE(22) * boot.readUInt16LE(11);
  const root = boot.subarray(rootStart, rootStart + 512);
  let first = -1;
  for (let p = 0; p < 512; p += 32) if (root.subarray(p, p + 8).toString('latin1') === 'DATA    ') first = root.readUInt16LE(p + 26);
  assert.ok(first >= 2, 'found DATA.BIN');
  const second = boot.readUInt16LE(fatStart + first * 2);
  const fh = await open(img, 'r+');
  const loop = Buffer.alloc(2);
  loop.writeUInt16LE(first);
  await fh.write(loop, 0, 2, fatStart + second * 2);
  await fh.close();
  const r = await runCli(['ls', '--json', img]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cluster chain/);

  const bytes = await readFile(img);
  await writeFile(img, bytes.subarray(0, 1 << 20));
  const r2 = await runCli(['ls', img]);
  assert.equal(r2.code, 1, r2.stderr);
  assert.match(r2.stderr, /truncated/);
});

test('random byte flips in the boot sector, FATs and root directory end in success or an InvalidInputError', { skip }, async (t) => {
  const dir = await tempDir(t);
  const tree = join(dir, 'tree');
  await buildTree(tree);
  const img = join(dir, 'fat16.img');
  sh('truncate', ['-s', '24M', img]);
  sh('mkfs.vfat', ['-F', '16', '-s', '1', img]);
  for (const name of ['boot', 'EFI', 'lower.txt', 'Mixed Case Long Name.txt']) sh('mcopy', ['-s', '-i', img, join(tree, name), '::/'], { env: UTC });
  const pristine = await readFile(img);
  const rand = seededRandom(0x2545f491); // replayable
  // Boot sector, both FATs and the fixed root directory lie in the first ~240 KiB.
  let failures = 0;
  for (let round = 0; round < 200; round++) {
    const bytes = Buffer.from(pristine);
    for (let k = 0; k < 6; k++) bytes[rand(240 * 1024)] ^= 1 << rand(8);
    const started = Date.now();
    try {
      const fat = await openVfat(new BufferSource(bytes, `round-${round}`));
      for await (const e of fat.walk()) if (e.type === 'file') for await (const _ of fat.open(e));
    } catch (err) {
      assert.ok(err instanceof PvError && err.exitCode === 1, `round ${round}: ${(err as Error).stack}`);
      failures++;
    }
    assert.ok(Date.now() - started < 5000, `round ${round} took ${Date.now() - started} ms`);
  }
  assert.ok(failures > 0, 'some flips are detected');
});
