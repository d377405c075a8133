import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, makePki, noise } from '../samples/rauc/fixtures.ts';
import { measure, measurePvmigrate, report } from './measure.ts';

/**
 * A ~200 MB verity bundle made by `rauc bundle`: our signature check + full dm-verity payload check
 * (`inspect`) and our full extraction (`extract`, which also decompresses and hashes every image), each
 * against `rauc extract` (signature, verity check of the whole payload, unsquashfs).
 */
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
    const peer = measure('rauc', ['extract', `--keyring=${pki.rootCa}`, bundle, join(dir, 'rauc-out')], { env });
    const check = measurePvmigrate(['inspect', bundle, '--keyring', pki.rootCa, '--json']);
    report('verity bundle 200 MiB, verify + full payload check (inspect)', check, peer, 'rauc extract');
    const ours = measurePvmigrate(['extract', bundle, '-o', join(dir, 'ours-out'), '--keyring', pki.rootCa]);
    report('verity bundle 200 MiB, verify + extract all images', ours, peer, 'rauc extract');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
