import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';

const skip = needTool('sfdisk') || needTool('mkfs.vfat') || needTool('mcopy') || needTool('mkfs.ext4');

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('convert: a partitioned disk image with a vfat boot partition', { skip }, () => {
  it('takes the kernel and device tree from the boot partition and the rootfs from the ext4 partition', async (t) => {
    const dir = await tempDir(t);
    const root = join(dir, 'root');
    for (const d of ['sbin', 'etc/init.d', 'opt/panel/bin', 'lib/modules/5.15.0-board/kernel']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'sbin/init'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(root, 'opt/panel/bin/panel'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(root, 'etc/init.d/S50panel'), '#!/bin/sh\ncase "$1" in start) /opt/panel/bin/panel --kiosk & ;; esac\n', { mode: 0o755 });
    writeFileSync(join(root, 'lib/modules/5.15.0-board/kernel/x.ko'), 'module');
    sh('mkfs.ext4', ['-q', '-F', '-d', root, '-b', '4096', join(dir, 'root.ext4'), '8M']);

    const kernel = Buffer.concat([Buffer.alloc(0x24), Buffer.from([0x18, 0x28, 0x6f, 0x01]), Buffer.alloc(4000, 7)]); // zImage magic at 0x24
    writeFileSync(join(dir, 'zImage'), kernel);
    writeFileSync(join(dir, 'board.dtb'), Buffer.from('d00dfeed0000', 'hex'));
    sh('mkfs.vfat', ['-C', join(dir, 'boot.vfat'), '4096']);
    sh('mcopy', ['-i', join(dir, 'boot.vfat'), join(dir, 'zImage'), join(dir, 'board.dtb'), '::/']);

    // MBR: 1 MiB gap, 4 MiB FAT partition, 8 MiB Linux partition.
    const disk = join(dir, 'disk.img');
    sh('truncate', ['-s', '14M', disk]);
    sh('sfdisk', ['-q', disk], { input: Buffer.from('label: dos\nstart=2048, size=8192, type=c\nstart=10240, size=16384, type=83\n') });
    sh('dd', [`if=${join(dir, 'boot.vfat')}`, `of=${disk}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']);
    sh('dd', [`if=${join(dir, 'root.ext4')}`, `of=${disk}`, 'bs=512', 'seek=10240', 'conv=notrunc', 'status=none']);

    const planFile = join(dir, 'plan.json');
    const w = await runCli(['convert', disk, '--write-plan', planFile]);
    assert.equal(w.code, 0, w.stderr);
    const plan = JSON.parse(readFileSync(planFile, 'utf8')) as { bsp: Record<string, unknown>; containers: { name: string; init: string[] }[] };
    assert.equal(plan.bsp.kernel, 'boot:/zImage');
    assert.deepEqual(plan.bsp.dtbs, ['boot:/board.dtb']);
    assert.deepEqual(plan.bsp.modules, ['/lib/modules/5.15.0-board']);
    assert.deepEqual(plan.containers.map((c) => [c.name, c.init]), [['os', ['/sbin/init']], ['panel', ['/opt/panel/bin/panel', '--kiosk']]]);

    writeFileSync(join(dir, 'initrd'), 'initrd');
    const out = join(dir, 'repo');
    const r = await runCli(['convert', disk, '-o', out, '--plan', planFile, '--initrd', join(dir, 'initrd')]);
    assert.equal(r.code, 0, r.stderr);
    const st = JSON.parse(readFileSync(join(out, '.pvr/json'), 'utf8')) as Record<string, unknown>;
    assert.equal(st['bsp/kernel.img'], sha(kernel));
    assert.equal(st['bsp/board.dtb'], sha(Buffer.from('d00dfeed0000', 'hex')));
    assert.equal((st['pvmigrate/build.json'] as { format: string }).format, 'disk');
    const v = await runCli(['validate', out]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});
