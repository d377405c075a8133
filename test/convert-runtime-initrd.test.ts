// Without --initrd, a kernel for this machine's architecture gets the runtime's own initrd, so the converted
// revision validates and boots; a kernel for another architecture keeps the review item.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { kernelArch } from '../src/convert/runtime-initrd.ts';
import { repoRoot, runCli } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';

const skip = needTool('busybox') || needTool('cpio');

test('kernel architecture from the boot header: x86 bzImage, arm64 Image, ARM zImage', () => {
  const at = (size: number, offset: number, bytes: Buffer) => {
    const b = Buffer.alloc(size);
    bytes.copy(b, offset);
    return b;
  };
  assert.equal(kernelArch(at(4096, 0x202, Buffer.from('HdrS'))), 'x64');
  assert.equal(kernelArch(at(4096, 0x38, Buffer.from('ARM\x64', 'latin1'))), 'arm64');
  const zimage = Buffer.alloc(4096);
  zimage.writeUInt32LE(0x016f2818, 0x24);
  assert.equal(kernelArch(zimage), 'arm');
  assert.equal(kernelArch(Buffer.alloc(4096)), undefined);
});

test('convert without --initrd packs the runtime initrd (cpio lists /init and node) and the revision validates', { skip, timeout: 180_000 }, async (t) => {
  const dir = await tempDir(t);
  const repo = join(dir, 'repo');
  const r = await runCli(['convert', join(repoRoot, 'samples/artifacts/release-1.0.mender'), '-o', repo, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.ok(!doc.review.some((i: { item: string }) => i.item === 'bsp/pv-initrd.img'), 'no initrd left to review');
  const state = JSON.parse(await readFile(join(repo, '.pvr/json'), 'utf8')) as Record<string, unknown>;
  assert.equal((state['bsp/run.json'] as { initrd?: string }).initrd, 'pv-initrd.img');
  const initrd = join(repo, '.pvr/objects', state['bsp/pv-initrd.img'] as string);
  const members = sh('sh', ['-c', `gzip -dc '${initrd}' | cpio -t --quiet`]).split('\n');
  assert.ok(members.includes('init'), 'the initrd has /init');
  assert.ok(members.some((m) => /(^|\/)node$/.test(m)), 'the initrd carries node');
  const v = await runCli(['validate', repo]);
  assert.equal(v.code, 0, v.stderr);
});
