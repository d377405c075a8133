// inspect + verify of a ~200 MB gzip rootfs artifact, against `mender-artifact validate` on the same file.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openArtifact } from '../importers/open.ts';
import { fastest, measure, measurePvmigrate, report, writeRootfsLikeImage } from './measure.ts';

const SIZE_MIB = 200;

export async function bench(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-bench-mender-'));
  try {
    await writeRootfsLikeImage(join(dir, 'rootfs.ext4'), SIZE_MIB, 'bench');
    const art = join(dir, 'big.mender');
    const w = spawnSync('mender-artifact', ['write', 'rootfs-image', '-f', 'rootfs.ext4', '-n', 'bench', '-t', 'dev', '-o', art], { cwd: dir });
    if (w.status !== 0) throw new Error(`mender-artifact write failed: ${w.stderr}`);
    // Warm the page cache so both tools read from memory.
    spawnSync('cat', [art], { stdio: 'ignore' });
    // Best of three for each, the machine being shared.
    const peer = fastest([1, 2, 3].map(() => measure('mender-artifact', ['validate', art])));
    const ours = fastest([1, 2, 3].map(() => measurePvmigrate(['inspect', art, '--json'])));
    report(`inspect+verify ${SIZE_MIB} MiB gzip rootfs artifact (whole CLI run)`, ours, peer, 'mender-artifact validate');
    // The same work in this process, without node + tsx start-up (which the CLI pays on every run).
    const tiny = fileURLToPath(new URL('../samples/mender/demo-1.0.mender', import.meta.url));
    const startup = fastest([1, 2, 3].map(() => measurePvmigrate(['inspect', tiny, '--json'])));
    let inProcess = Infinity;
    for (let i = 0; i < 3; i++) {
      const t0 = process.hrtime.bigint();
      const a = await openArtifact(art, {});
      await a.close();
      inProcess = Math.min(inProcess, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    console.log(
      `  in-process open+verify: ${inProcess.toFixed(2)} s = speed ${(peer.seconds / inProcess).toFixed(2)}× of mender-artifact validate; ` +
        `CLI run on a 7 KB artifact (start-up cost): ${startup.seconds.toFixed(2)} s, ${startup.maxRssMiB.toFixed(0)} MiB`,
    );
    console.log('  targets: speed ≥ 0.80× of mender-artifact validate, peak RSS ≤ 150 MiB');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
