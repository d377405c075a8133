// A release carrying Debian's real kernel and a subset of its modules (the ethernet drivers) converts into a
// BSP whose kernel is that vmlinuz byte for byte and whose modules.squashfs holds exactly those module files.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { debianKernel } from '../runtime/initrd/qemu.ts';
import { repoRoot, runCli } from './helpers/cli.ts';
import { needTool, privileged, sh, tempDir } from './helpers/env.ts';

const skip = privileged('building the sample release (device nodes)') || needTool('mender-artifact') || needTool('unsquashfs') || needTool('apt-get');
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort();
}

test('Debian kernel release as .mender, .raucb and .swu: bsp/kernel.img is the package vmlinuz, modules.squashfs holds its ethernet modules', { skip, timeout: 300_000 }, async (t) => {
  const kernel = debianKernel();
  const kernelRoot = dirname(dirname(kernel.vmlinuz));
  const version = kernel.modulesDir.split('/').pop()!;
  const dir = await tempDir(t);
  sh('bash', [join(repoRoot, 'samples/rootfs/build.sh'), join(dir, 'rel'), '1.0', 'mender rauc swu'], { env: { KERNEL_ROOT: kernelRoot } });
  const ca = join(dir, 'rel/keys/ca.pem');
  const kernels: string[] = [];
  for (const [file, trust] of [['release.raucb', ['--keyring', ca]], ['release.swu', ['--ca', ca]]] as const) {
    const other = join(dir, `repo-${file}`);
    const c = await runCli(['convert', join(dir, 'rel', file), ...trust, '--initrd', join(dir, 'rel/initrd.img'), '-o', other]);
    assert.equal(c.code, 0, c.stderr);
    kernels.push(JSON.parse(await readFile(join(other, '.pvr/json'), 'utf8'))['bsp/kernel.img']);
  }
  const repo = join(dir, 'repo');
  const r = await runCli(['convert', join(dir, 'rel/release.mender'), '--initrd', join(dir, 'rel/initrd.img'), '-o', repo, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const state = JSON.parse(await readFile(join(repo, '.pvr/json'), 'utf8')) as Record<string, unknown>;
  assert.equal(state['bsp/kernel.img'], sha256(kernel.vmlinuz), 'the kernel object is the package vmlinuz');
  assert.deepEqual(kernels, [state['bsp/kernel.img'], state['bsp/kernel.img']], 'the RAUC and SWUpdate releases give the same kernel object');

  const modulesObject = join(repo, '.pvr/objects', state['bsp/modules.squashfs'] as string);
  const listed = sh('unsquashfs', ['-lc', '-d', '', modulesObject])
    .split('\n')
    .map((l) => l.trim().replace(/^\//, ''))
    .filter((l) => l.endsWith('.ko') || l.endsWith('.ko.xz') || l.startsWith(`${version}/modules.`))
    .sort();
  const ethernet = filesUnder(join(kernel.modulesDir, 'kernel/drivers/net/ethernet')).map((f) => `${version}/kernel/drivers/net/ethernet/${f}`);
  const metadata = readdirSync(kernel.modulesDir).filter((f) => f.startsWith('modules.')).map((f) => `${version}/${f}`);
  assert.deepEqual(listed, [...ethernet, ...metadata].sort());

  // One module extracted by unsquashfs equals the package's file.
  const ko = ethernet.find((f) => f.includes('/intel/e1000/'))!;
  const out = join(dir, 'ko');
  sh('unsquashfs', ['-q', '-d', out, modulesObject, ko]);
  assert.equal(sha256(join(out, ko)), sha256(join(kernel.modulesDir, '..', ko)));

  const v = await runCli(['validate', repo]);
  assert.equal(v.code, 0, v.stderr);
});
