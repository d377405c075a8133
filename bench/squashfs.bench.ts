// Squashfs writer and reader against squashfs-tools on a ~200 MB tree of real host files.
import { spawnSync } from 'node:child_process';
import { access, constants, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measure, measurePvmigrate, report } from './measure.ts';

/** Host directories that together make a mixed ~200 MB tree (binaries, libraries, scripts, text). */
const SOURCES = ['/usr/lib/gcc', '/usr/lib/python3.11', '/usr/lib/python3', '/usr/share/perl', '/usr/share/doc', '/usr/bin'];
const TARGET_BYTES = 200 * 1024 * 1024;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.toString();
}

export async function bench(): Promise<void> {
  // tmpfs when available, so both sides measure compression and parsing rather than the disk.
  const base = (await access('/dev/shm', constants.W_OK).then(() => true, () => false)) ? '/dev/shm' : tmpdir();
  const work = await mkdtemp(join(base, 'pvmigrate-bench-sqfs-'));
  try {
    const tree = join(work, 'tree');
    run('mkdir', [tree]);
    let bytes = 0;
    for (const s of SOURCES) {
      if (bytes >= TARGET_BYTES) break;
      if (!(await access(s).then(() => true, () => false))) continue;
      run('cp', ['-a', s, join(tree, s.replaceAll('/', '_'))]);
      bytes = Number(run('du', ['-sb', tree]).split('\t')[0]);
    }
    const files = run('find', [tree, '-type', 'f']).split('\n').length - 1;
    console.log(`tree: ${(bytes / 1048576).toFixed(0)} MiB in ${files} files (${SOURCES.join(', ')})`);

    const theirs = join(work, 'mksquashfs.sqfs');
    const ours = join(work, 'ours.sqfs');
    const peerW = measure('mksquashfs', [tree, theirs, '-comp', 'gzip', '-processors', '2', '-noappend', '-quiet', '-no-progress']);
    const oursW = measurePvmigrate(['mksquashfs', tree, '-o', ours, '--workers', '2']);
    report('squashfs writer (gzip, 2 threads)', oursW, peerW, 'mksquashfs');
    const [a, b] = [(await stat(ours)).size, (await stat(theirs)).size];
    console.log(`squashfs image size: pvmigrate ${a} bytes vs mksquashfs ${b} bytes; size ratio ${(a / b).toFixed(4)}× (target ≤ 1.02×)`);

    const dest = join(work, 'unsquashfs-out');
    const peerR = measure('unsquashfs', ['-q', '-n', '-processors', '2', '-d', dest, theirs]);
    const oursR = measurePvmigrate(['ls', theirs, '--json']);
    report('squashfs reader (every file hashed vs unsquashfs extraction)', oursR, peerR, 'unsquashfs');
    // Part of every pvmigrate figure is starting Node and the TypeScript loader, which no native tool pays.
    const startup = measurePvmigrate(['--help']);
    console.log(`pvmigrate start-up (pvmigrate --help): ${startup.seconds.toFixed(2)} s, included in the pvmigrate times above`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
