import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, makePki, noise } from '../samples/rauc/fixtures.ts';
import { measure, measurePvmigrate, median, report, type Measurement } from './measure.ts';

/**
 * A ~200 MB verity bundle made by `rauc bundle`: our signature check + full dm-verity payload check
 * (`inspect`) and our full extraction (`extract`, which also decompresses, hashes and fsyncs every image),
 * each against `rauc extract` (signature, verity check of the whole payload, unsquashfs). Runs are
 * interleaved and the median of three is reported, since the machine is shared.
 */
const RUNS = 3;

export async function bench(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-rauc-bench-'));
  try {
    const pki = makePki(join(dir, 'pki'));
    const mib = 1 << 20;
    // Half noise (stored as is), half text (compressed): both squashfs data paths are exercised.
    const text = Buffer.alloc(100 * mib, 'pantavisor revision object trail ');
    const bundle = buildBundle(dir, 'big', {
      files: { 'rootfs.ext4': noise(100 * mib, 5), 'appfs.img': text },
      manifest: '[update]\ncompatible=bench\nversion=1\n[bundle]\nformat=verity\n[image.rootfs]\nfilename=rootfs.ext4\n[image.appfs]\nfilename=appfs.img\n',
      signer: pki.rsa,
      intermediate: pki.intermediate,
    });
    const env = { ...process.env, TMPDIR: dir };
    const runs: Record<'peer' | 'check' | 'extract' | 'startup', Measurement[]> = { peer: [], check: [], extract: [], startup: [] };
    for (let i = 0; i < RUNS; i++) {
      runs.peer.push(measure('rauc', ['extract', `--keyring=${pki.rootCa}`, bundle, join(dir, `rauc-out-${i}`)], { env }));
      runs.check.push(measurePvmigrate(['inspect', bundle, '--keyring', pki.rootCa, '--json']));
      runs.extract.push(measurePvmigrate(['extract', bundle, '-o', join(dir, `ours-out-${i}`), '--keyring', pki.rootCa]));
      runs.startup.push(measurePvmigrate(['--help']));
      await rm(join(dir, `rauc-out-${i}`), { recursive: true });
      await rm(join(dir, `ours-out-${i}`), { recursive: true });
    }
    const peer = median(runs.peer);
    report('verity bundle 200 MiB, verify + full payload check (inspect)', median(runs.check), peer, 'rauc extract');
    report('verity bundle 200 MiB, verify + extract all images', median(runs.extract), peer, 'rauc extract');
    console.log(`pvmigrate start-up (--help), included in both: ${median(runs.startup).seconds.toFixed(2)} s`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
