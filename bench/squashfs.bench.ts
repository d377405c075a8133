// Squashfs writer and reader against squashfs-tools on a ~200 MB tree of real host files.
import { access, constants, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyHostTree, fastest, measure, measurePvmigrate, report, type Measurement } from './measure.ts';

const TARGET_BYTES = 200 * 1024 * 1024;

export async function bench(): Promise<void> {
  // tmpfs when available, so both sides measure compression and parsing rather than the disk.
  const base = (await access('/dev/shm', constants.W_OK).then(() => true, () => false)) ? '/dev/shm' : tmpdir();
  const work = await mkdtemp(join(base, 'pvmigrate-bench-sqfs-'));
  try {
    const tree = join(work, 'tree');
    const { bytes, files, sources } = await copyHostTree(tree, TARGET_BYTES);
    console.log(`tree: ${(bytes / 1048576).toFixed(0)} MiB in ${files} files (${sources})`);

    const theirs = join(work, 'mksquashfs.sqfs');
    const ours = join(work, 'ours.sqfs');
    const peerW = measure('mksquashfs', [tree, theirs, '-comp', 'gzip', '-processors', '2', '-noappend', '-quiet', '-no-progress']);
    const oursW = measurePvmigrate(['mksquashfs', tree, '-o', ours, '--workers', '2']);
    report('squashfs writer (gzip, 2 threads)', oursW, peerW, 'mksquashfs');
    const [a, b] = [(await stat(ours)).size, (await stat(theirs)).size];
    console.log(`squashfs image size: pvmigrate ${a} bytes vs mksquashfs ${b} bytes; size ratio ${(a / b).toFixed(4)}× (target ≤ 1.02×)`);

    const dest = join(work, 'unsquashfs-out');
    // Best of three, alternating, the machine being shared.
    const peerRuns: Measurement[] = [];
    const oursRuns: Measurement[] = [];
    for (let i = 0; i < 3; i++) {
      await rm(dest, { recursive: true, force: true });
      peerRuns.push(measure('unsquashfs', ['-q', '-n', '-processors', '2', '-d', dest, theirs]));
      oursRuns.push(measurePvmigrate(['ls', theirs, '--json']));
    }
    const [peerR, oursR] = [fastest(peerRuns), fastest(oursRuns)];
    report('squashfs reader (every file hashed vs unsquashfs extraction)', oursR, peerR, 'unsquashfs');
    // Part of every pvmigrate figure is starting Node and the TypeScript loader, which no native tool pays.
    const startup = measurePvmigrate(['--help']);
    console.log(`pvmigrate start-up (pvmigrate --help): ${startup.seconds.toFixed(2)} s, included in the pvmigrate times above`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
