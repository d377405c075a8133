// Issue 8, "A real kernel": the cpio newc writer against GNU cpio and our reader, `pvmigrate initrd`, and a full
// update cycle on Debian's kernel under qemu (software emulation): boot the factory revision from a virtio
// ext4 disk, install the update dropped in the disk's inbox, reboot through the kernel, try and commit it
// on the second boot, power off. The guest's console and the disk (read back with debugfs) are the truth.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { readCpioMembers } from '../src/archive/cpio.ts';
import { BufferSource } from '../src/fs/source.ts';
import { cpioNewc, type InitrdMember } from '../runtime/initrd/cpio-writer.ts';
import { modinfo, resolveModules } from '../runtime/initrd/kernel-modules.ts';
import { debianKernel } from '../runtime/initrd/qemu.ts';
import { qemuUpdateCycle } from '../bench/qemu.bench.ts';
import { runCli } from './helpers/cli.ts';
import { needTool, privileged, sh, tempDir } from './helpers/env.ts';

async function archive(members: InitrdMember[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of Readable.from(cpioNewc(members))) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('cpio writer: GNU cpio lists and extracts what it wrote, our reader agrees, output is sorted and repeatable', { skip: needTool('cpio') }, async (t) => {
  const dir = await tempDir(t);
  const big = join(dir, 'big.bin');
  const bytes = Buffer.alloc(300_001);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) & 0xff;
  writeFileSync(big, bytes);
  const members: InitrdMember[] = [
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'file', path: 'bin/big', mode: 0o755, from: big },
    { type: 'dir', path: 'bin', mode: 0o755 },
    { type: 'data', path: 'init', mode: 0o700, data: Buffer.from('#!/bin/sh\necho odd-length\n') },
    { type: 'data', path: 'empty', mode: 0o644, data: Buffer.alloc(0) },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'data', path: 'bin-x/é', mode: 0o600, data: Buffer.from('a') },
    { type: 'dir', path: 'bin-x', mode: 0o755 },
  ];
  const cpio = await archive(members);
  assert.deepEqual(await archive([...members].reverse()), cpio, 'the member order given does not matter');

  const listed = sh('cpio', ['-t', '--quiet'], { input: cpio }).trim().split('\n');
  // Bytewise: '-' (0x2d) sorts before '/' (0x2f); every parent still precedes its children.
  assert.deepEqual(listed, ['bin', 'bin-x', 'bin-x/é', 'bin/big', 'bin/sh', 'empty', 'init', 'tmp']);
  const out = join(dir, 'out');
  mkdirSync(out);
  sh('cpio', ['-i', '--quiet', '-d', '--no-absolute-filenames'], { cwd: out, input: cpio });
  assert.deepEqual(readFileSync(join(out, 'bin/big')), bytes);
  assert.equal(readFileSync(join(out, 'init'), 'utf8'), '#!/bin/sh\necho odd-length\n');
  assert.equal(readlinkSync(join(out, 'bin/sh')), 'busybox');
  assert.equal(statSync(join(out, 'init')).mode & 0o7777, 0o700);
  assert.equal(statSync(join(out, 'tmp')).mode & 0o7777, 0o1777);
  assert.equal(statSync(join(out, 'empty')).size, 0);

  const seen = [];
  for await (const m of readCpioMembers(new BufferSource(cpio, 'written.cpio'))) seen.push({ name: m.name, mode: m.mode.toString(8), size: m.size, mtime: m.mtime, uid: m.uid, ino: m.ino });
  assert.deepEqual(
    seen.map((m) => [m.name, m.mode, m.size]),
    [
      ['bin', '40755', 0],
      ['bin-x', '40755', 0],
      ['bin-x/é', '100600', 1],
      ['bin/big', '100755', 300_001],
      ['bin/sh', '120777', 7],
      ['empty', '100644', 0],
      ['init', '100700', 26],
      ['tmp', '41777', 0],
    ],
  );
  assert.ok(seen.every((m) => m.mtime === 0 && m.uid === 0));
  assert.equal(new Set(seen.map((m) => m.ino)).size, seen.length, 'distinct inode numbers (the kernel links equal ones)');
  await assert.rejects(archive([...members, { type: 'dir', path: 'bin/', mode: 0o755 }]), /listed twice|clean relative path/);
  await assert.rejects(archive([{ type: 'dir', path: 'a/../b', mode: 0o755 }]), /clean relative path/);
});

test('pvmigrate initrd: one architecture, /init, busybox applets, dash, util-linux with libraries; byte-identical twice', { skip: needTool('cpio') }, async (t) => {
  const dir = await tempDir(t);
  // A small stand-in for node keeps this fast: the builder copies the binary, it never runs it.
  const busybox = sh('sh', ['-c', 'readlink -f "$(command -v busybox)"']).trim();
  const a = await runCli(['initrd', '-o', join(dir, 'a.gz'), '--node', busybox, '--json']);
  assert.equal(a.code, 0, a.stderr);
  const r = JSON.parse(a.stdout);
  assert.equal(r.machine, process.arch === 'x64' ? 'x86-64' : r.machine);
  assert.deepEqual(r.modules, []);
  const b = await runCli(['initrd', '-o', join(dir, 'b.gz'), '--node', busybox]);
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(readFileSync(join(dir, 'a.gz')), readFileSync(join(dir, 'b.gz')), 'deterministic');
  const names = sh('cpio', ['-t', '--quiet'], { input: gunzipSync(readFileSync(join(dir, 'a.gz'))) }).trim().split('\n');
  for (const n of ['init', 'bin/busybox', 'bin/switch_root', 'bin/sh', 'usr/bin/node', 'usr/lib/pvmigrate/runtime.mjs', 'usr/sbin/unshare', 'usr/sbin/nsenter', 'usr/sbin/setpriv', 'usr/sbin/mount', 'dev/console', 'lib/modules/pv-load-order']) {
    assert.ok(names.includes(n), `${n} in the initrd`);
  }
  const lddLibs = sh('ldd', [sh('sh', ['-c', 'command -v unshare']).trim()]).match(/\/\S+(?= \(0x)/g)!;
  for (const lib of lddLibs) assert.ok(names.includes(lib.slice(1)), `unshare's ${lib} in the initrd`);
  assert.deepEqual([...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))), names, 'sorted');

  const bad = await runCli(['initrd', '-o', join(dir, 'c.gz'), '--node', join(dir, 'a.gz')]);
  assert.equal(bad.code, 1, 'a node that is not ELF is invalid input');
  assert.match(bad.stderr, /a\.gz is not an ELF executable/);
  const usage = await runCli(['initrd']);
  assert.equal(usage.code, 2);
});

test('kernel modules: a corrupt or foreign .ko is refused with its name, never read out of bounds', async (t) => {
  const dir = await tempDir(t);
  const elf = Buffer.alloc(64);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2;
  elf[5] = 1;
  elf.writeBigUInt64LE(1n << 40n, 0x28); // section headers far past the end
  elf.writeUInt16LE(64, 0x3a);
  elf.writeUInt16LE(3, 0x3c);
  assert.throws(() => modinfo(elf, 'bad.ko'), /bad\.ko: section headers out of bounds/);
  assert.throws(() => modinfo(Buffer.from('not elf at all, not elf at all, not elf at all, not elf at all!!'), 'text.ko'), /text\.ko: not an ELF file/);
  mkdirSync(join(dir, 'kernel/fs'), { recursive: true });
  writeFileSync(join(dir, 'kernel/fs/ext4.ko'), elf);
  assert.throws(() => resolveModules(dir, ['ext4']), /ext4\.ko: section headers out of bounds/);
  assert.throws(() => resolveModules(dir, ['overlay']), /kernel module 'overlay' .* is neither in .* nor built in/);
  writeFileSync(join(dir, 'modules.builtin'), 'kernel/fs/overlayfs/overlay.ko\n');
  assert.deepEqual(resolveModules(dir, ['overlay']), [], 'built-in modules need no file');
});

const qemuSkip = process.arch !== 'x64' ? 'qemu test boots x86-64 Debian kernels' : privileged('qemu boot with the namespace driver') || needTool('qemu-system-x86_64') || needTool('mksquashfs') || needTool('debugfs') || needTool('curl') || needTool('apt-get');

test('qemu: Debian kernel boots the initrd, runs the container, installs an update from the disk, reboots through the kernel, commits it on the second boot', { skip: qemuSkip, timeout: 300_000 }, async (t) => {
  const dir = await tempDir(t);
  // The console lines of both boots are awaited in order inside the cycle (it throws with the console tail).
  const r = await qemuUpdateCycle(dir, debianKernel());
  const p = r.phases;
  t.diagnostic(`initrd ${p.initrd} ms, prepare ${p.prepare} ms, boot 1 to STARTED ${p.bootToStarted} ms, update to reboot ${p.updateToReboot} ms, boot 2 to commit and poweroff ${p.tryToEnd} ms`);
  assert.match(r.consoles[0], /\[boot\]: booting revision 0\n/);
  assert.doesNotMatch(r.consoles[0] + r.consoles[1], /Kernel panic|insmod .* failed|ERROR/);

  // The disk as the guest left it, read without mounting.
  const debugfs = (request: string) => spawnSync('debugfs', ['-R', request, r.disk], { encoding: 'utf8' }).stdout;
  const env = debugfs('cat /boot/uboot.txt').replace(/\0+$/, '');
  assert.match(env, /(^|\0|\n)pv_rev=locals\/r1(\0|\n|$)/);
  assert.doesNotMatch(env, /pv_try=\S/);
  assert.equal(JSON.parse(debugfs('cat /trails/locals/r1/.pv/progress')).status, 'DONE');
  assert.match(debugfs('stat /trails/locals/r1/.pv/done'), /Type: regular/);
  assert.equal(JSON.parse(debugfs('cat /trails/0/.pv/progress')).status, 'DONE');
  const log = (rev: string) => debugfs(`cat /logs/${rev}/hello/lxc/console.log`);
  assert.match(log('0'), /hello-v1 from hello as pid 1\b/, 'the container had its own hostname and PID namespace on the real kernel');
  assert.match(log('locals/r1'), /hello-v2 saw \{[^\n]*"DONE"/);
  const inbox = debugfs('ls -p /inbox');
  assert.match(inbox, /\/r1\.tgz\.taken\//, 'the inbox file was taken');
  assert.doesNotMatch(inbox, /\/r1\.tgz\//, 'and is not installed again on the next boot');
});
