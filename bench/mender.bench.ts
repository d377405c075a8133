// inspect + verify of a ~200 MB gzip rootfs artifact, against `mender-artifact validate` on the same file.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openArtifact } from '../importers/open.ts';
import { copyHostTree, fastest, measure, measurePvmigrate, report, writeRootfsLikeImage, type Measurement } from './measure.ts';

const TREE_BYTES = 200 << 20;

function writeArtifact(dir: string, image: string, out: string): void {
  const w = spawnSync('mender-artifact', ['write', 'rootfs-image', '-f', image, '-n', 'bench', '-t', 'dev', '-o', out], { cwd: dir });
  if (w.status !== 0) throw new Error(`mender-artifact write failed: ${w.stderr}`);
  // Warm the page cache so both tools read from memory.
  spawnSync('cat', [out], { stdio: 'ignore' });
}

/** Best of three for each side, alternating, the machine being shared. */
function compare(art: string): { ours: Measurement; peer: Measurement } {
  const peer: Measurement[] = [];
  const ours: Measurement[] = [];
  for (let i = 0; i < 3; i++) {
    peer.push(measure('mender-artifact', ['validate', art]));
    ours.push(measurePvmigrate(['inspect', art, '--json']));
  }
  return { ours: fastest(ours), peer: fastest(peer) };
}

export async function bench(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-bench-mender-'));
  try {
    // The target case: an ext4 root filesystem of real host files (binaries, libraries, text), as devices ship.
    const tree = await copyHostTree(join(dir, 'tree'), TREE_BYTES);
    const rootfs = join(dir, 'rootfs.ext4');
    const mk = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', join(dir, 'tree'), rootfs, `${Math.ceil((tree.bytes * 1.2) / 1048576)}M`]);
    if (mk.status !== 0) throw new Error(`mke2fs failed: ${mk.stderr}`);
    await rm(join(dir, 'tree'), { recursive: true });
    const art = join(dir, 'rootfs.mender');
    writeArtifact(dir, rootfs, art);
    const real = compare(art);
    report(`inspect+verify gzip rootfs artifact: ext4 of ${(tree.bytes / 1048576).toFixed(0)} MiB of host files (whole CLI run)`, real.ours, real.peer, 'mender-artifact validate');

    // A synthetic image, half incompressible and half zeros: decoding is nearly free for both tools, so this
    // measures sha256 (one core, ~2 GB/s either way) plus node's start-up, which the Go tool does not pay.
    const synthetic = join(dir, 'synthetic.ext4');
    await writeRootfsLikeImage(synthetic, 200, 'bench');
    const synArt = join(dir, 'synthetic.mender');
    writeArtifact(dir, synthetic, synArt);
    const syn = compare(synArt);
    report('inspect+verify 200 MiB synthetic image (half random, half zeros; whole CLI run)', syn.ours, syn.peer, 'mender-artifact validate');
    const tiny = fileURLToPath(new URL('../samples/mender/demo-1.0.mender', import.meta.url));
    const startup = fastest([1, 2, 3].map(() => measurePvmigrate(['inspect', tiny, '--json'])));
    let inProcess = Infinity;
    for (let i = 0; i < 3; i++) {
      const t0 = process.hrtime.bigint();
      const a = await openArtifact(synArt, {});
      await a.close();
      inProcess = Math.min(inProcess, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    console.log(
      `  synthetic, in this process (no start-up): ${inProcess.toFixed(2)} s = speed ${(syn.peer.seconds / inProcess).toFixed(2)}× of mender-artifact validate; ` +
        `CLI run on a 7 KB artifact (start-up cost): ${startup.seconds.toFixed(2)} s, ${startup.maxRssMiB.toFixed(0)} MiB`,
    );
    console.log('  targets (rootfs artifact): speed ≥ 0.80× of mender-artifact validate, peak RSS ≤ 150 MiB');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
