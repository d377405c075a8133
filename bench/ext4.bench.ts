// ext4 reader: `pvmigrate ls --json` (walk + sha256 of every file) vs `debugfs -R 'rdump / out'` on a ~200 MB tree.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { measure, measurePvmigrate, report } from './measure.ts';

async function buildTree(root: string): Promise<number> {
  let bytes = 0;
  // A rootfs-like mix: a few large blobs, some medium libraries, many small config and script files.
  for (let i = 0; i < 8; i++) {
    await mkdir(join(root, 'opt/app', String(i)), { recursive: true });
    const b = randomBytes(16 << 20);
    await writeFile(join(root, 'opt/app', String(i), 'blob.bin'), b);
    bytes += b.length;
  }
  await mkdir(join(root, 'usr/lib'), { recursive: true });
  for (let i = 0; i < 300; i++) {
    const b = randomBytes(200_000 + ((i * 7919) % 100_000));
    await writeFile(join(root, 'usr/lib', `lib${i}.so`), b);
    bytes += b.length;
  }
  await mkdir(join(root, 'etc/conf.d'), { recursive: true });
  for (let i = 0; i < 3000; i++) {
    const b = randomBytes(100 + (i % 4000));
    await writeFile(join(root, 'etc/conf.d', `file${i}.conf`), b);
    bytes += b.length;
  }
  return bytes;
}

export async function bench(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-bench-ext4-'));
  try {
    const tree = join(dir, 'tree');
    const bytes = await buildTree(tree);
    const img = join(dir, 'root.ext4');
    const mk = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-d', tree, img, '320M']);
    if (mk.status !== 0) throw new Error(`mke2fs failed: ${mk.stderr}`);
    await rm(tree, { recursive: true });
    console.log(`tree: ${(bytes / 2 ** 20).toFixed(0)} MiB in ${8 + 300 + 3000} files, ext4 image ${img}`);
    // Warm the page cache for both sides alike.
    spawnSync('cat', [img], { stdio: 'ignore' });
    const out = join(dir, 'out');
    await mkdir(out);
    const peer = measure('debugfs', ['-R', `rdump / ${out}`, img]);
    const ours = measurePvmigrate(['ls', '--json', img]);
    const entries = (JSON.parse(ours.stdout) as unknown[]).length;
    report(`ext4 read (${entries} entries, every file hashed)`, ours, peer, 'debugfs rdump');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
