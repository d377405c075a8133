// convert of a ~128 MB Mender rootfs artifact (busybox, a Debian kernel with part of its modules, firmware, an app,
// updater leftovers, filler) against the native manual pipeline doing the least comparable
// work (mender-artifact validate, payload out of the artifact with tar, files out of ext4 with debugfs rdump,
// mksquashfs, sha256sum),
// then the same conversion of a ~1 GB artifact to show peak RSS stays flat as the image grows.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measure, measurePvmigrate, report, type Measurement } from './measure.ts';

const build = fileURLToPath(new URL('../samples/rootfs/build.sh', import.meta.url));

/** The manual pipeline a migration script would run; one shell so GNU time sees every stage. */
const NATIVE = [
  'set -e',
  // pvmigrate verifies the artifact while converting; the manual pipeline checks it with the peer tool.
  'mender-artifact validate "$1" > /dev/null',
  'tar -xOf "$1" data/0000.tar.gz | tar -xzO > "$2/rootfs.ext4"',
  'mkdir "$2/root"',
  'debugfs -R "rdump / $2/root" "$2/rootfs.ext4" > /dev/null 2>&1',
  'mksquashfs "$2/root" "$2/root.squashfs" -comp gzip -noappend -quiet > /dev/null',
  'sha256sum "$2/root.squashfs" > /dev/null',
].join('\n');

/**
 * A real Debian kernel package for the sample (PVMIGRATE_KERNEL_DEB, or `apt-get download` of what
 * linux-image-amd64 depends on); undefined when neither works, and the sample keeps its kernel-like file.
 */
function kernelDeb(dir: string): string | undefined {
  if (process.env.PVMIGRATE_KERNEL_DEB) return process.env.PVMIGRATE_KERNEL_DEB;
  const dep = spawnSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
  const pkg = /Depends: (linux-image-\S+)/.exec(dep.stdout ?? '')?.[1];
  if (!pkg) return undefined;
  const dl = spawnSync('apt-get', ['download', pkg], { cwd: dir, stdio: 'ignore', timeout: 300_000 });
  const deb = spawnSync('sh', ['-c', 'ls *.deb'], { cwd: dir, encoding: 'utf8' }).stdout.trim().split('\n')[0];
  return dl.status === 0 && deb ? join(dir, deb) : undefined;
}

function sample(dir: string, extraMiB: number, deb: string | undefined): string {
  const env = { ...process.env, EXTRA_MB: String(extraMiB), ...(deb ? { KERNEL_DEB: deb } : {}) };
  const r = spawnSync(build, [dir, '1.0', 'mender'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`samples/rootfs/build.sh failed: ${r.stderr}`);
  spawnSync('cat', [join(dir, 'release.mender')], { stdio: 'ignore' });
  return join(dir, 'release.mender');
}

async function ours(dir: string, artifact: string, n: number): Promise<Measurement> {
  const runs: Measurement[] = [];
  for (let i = 0; i < n; i++) {
    const out = join(dir, `repo-${i}`);
    runs.push(measurePvmigrate(['convert', artifact, '-o', out, '--initrd', join(dir, 'initrd.img'), '--json']));
    await rm(out, { recursive: true, force: true });
  }
  return runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
}

export async function bench(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('convert: skipped (the sample rootfs has device nodes and owners: run as root)');
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-bench-convert-'));
  try {
    const debDir = join(dir, 'deb');
    await mkdir(debDir);
    const deb = kernelDeb(debDir);
    console.log(`  kernel: ${deb ? `Debian package ${deb.split('/').pop()} (vmlinuz + drivers/net/ethernet modules)` : 'kernel-like sample file (no Debian kernel package available)'}`);
    const small = join(dir, 'small');
    const artifact = sample(small, 100, deb);
    const mib = (statSync(artifact).size / 1048576).toFixed(0);
    const natives: Measurement[] = [];
    for (let i = 0; i < 2; i++) {
      const w = join(small, `native-${i}`);
      await mkdir(w);
      natives.push(measure('bash', ['-c', NATIVE, 'native', artifact, w]));
      await rm(w, { recursive: true, force: true });
    }
    const peer = natives.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const mine = await ours(small, artifact, 2);
    report(`convert ${mib} MiB Mender rootfs artifact (whole split revision vs one squashfs)`, mine, peer, 'mender-artifact+tar+debugfs+mksquashfs+sha256sum');
    await rm(small, { recursive: true, force: true });

    const big = join(dir, 'big');
    const bigArtifact = sample(big, 980, deb);
    const large = await ours(big, bigArtifact, 1);
    console.log(
      `  ${(statSync(bigArtifact).size / 1048576).toFixed(0)} MiB artifact: pvmigrate ${large.seconds.toFixed(2)} s, peak RSS ${large.maxRssMiB.toFixed(0)} MiB ` +
        `(${mib} MiB: ${mine.maxRssMiB.toFixed(0)} MiB)`,
    );
    console.log('  targets: time ≤ 1.0× the native pipeline, peak RSS ≤ 300 MiB and flat from 128 MiB to 1 GiB');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
