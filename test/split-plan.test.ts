import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, before, after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { filterTree } from '../src/build/tree-filter.ts';
import { openDirTree } from '../src/fs/dir-tree.ts';
import type { Entry, FileTree } from '../src/fs/file-tree.ts';
import { Split } from '../src/split/assign.ts';
import { detectPlan } from '../src/split/detect.ts';
import { validatePlan, type Plan } from '../src/split/plan.ts';
import { TreeIndex } from '../src/split/tree-index.ts';
import { repoRoot } from './helpers/cli.ts';
import { needTool, privileged, sh } from './helpers/env.ts';

const skip = privileged('sample rootfs with device nodes and ownership') || needTool('mkfs.ext4') || needTool('setfattr');

async function collect(tree: FileTree): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const e of tree.walk()) out.push(e);
  return out;
}

describe('split plan on the sample rootfs', { skip }, () => {
  let dir: string;
  let rootfs: string;
  let index: TreeIndex;
  let plan: Plan;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pvmigrate-split-'));
    sh(join(repoRoot, 'samples/rootfs/build.sh'), [dir, '1.0', 'none']);
    rootfs = join(dir, 'rootfs');
    index = await TreeIndex.build(await openDirTree(rootfs), rootfs);
    plan = await detectPlan(index, undefined, { initrd: null });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('finds the BSP parts by their conventional paths', () => {
    assert.deepEqual(plan.bsp, {
      kernel: '/boot/vmlinuz-6.1.0-sample',
      fit: null,
      dtbs: ['/boot/dtbs/sample-board.dtb'],
      modules: ['/lib/modules/6.1.0-sample'],
      firmware: '/lib/firmware',
      initrd: null,
    });
  });

  it('makes the base OS run the image init and the /opt app a container started like its init script', () => {
    assert.equal(plan.containers.length, 2);
    const [os, app] = plan.containers;
    assert.deepEqual([os!.name, os!.kind, os!.group, os!.restart_policy, os!.init], ['os', 'base', 'root', 'system', ['/sbin/init']]);
    assert.deepEqual([app!.name, app!.kind, app!.group, app!.restart_policy], ['sensor', 'app', 'app', 'container']);
    assert.deepEqual(app!.init, ['/opt/sensor/bin/sensord', '--config', '/opt/sensor/etc/sensor.conf']);
    assert.deepEqual(app!.paths, ['/etc/init.d/S90sensor', '/opt/sensor']);
  });

  it('lists every updater leftover the sample was built with', () => {
    const removed = plan.removed.map((r) => `${r.updater}:${r.path}`);
    for (const want of [
      'mender:/usr/bin/mender-update', 'mender:/etc/mender', 'mender:/var/lib/mender', 'mender:/usr/share/mender',
      'mender:/lib/systemd/system/mender-updated.service', 'rauc:/usr/bin/rauc', 'rauc:/etc/rauc', 'rauc:/var/lib/rauc',
      'rauc:/lib/systemd/system/rauc.service', 'rauc:/usr/share/dbus-1/system.d/de.pengutronix.rauc.conf',
      'swupdate:/usr/bin/swupdate', 'swupdate:/etc/swupdate.cfg', 'swupdate:/etc/swupdate', 'swupdate:/usr/lib/swupdate',
      'swupdate:/lib/systemd/system/swupdate.service', 'swupdate:/www/swupdate',
      'mender:/usr/bin/fw_printenv', 'mender:/usr/bin/fw_setenv', 'mender:/etc/fw_env.config',
    ]) assert.ok(removed.includes(want), `${want} missing from ${removed.join(' ')}`);
    assert.ok(!removed.some((r) => r.includes('sensor') || r.includes('busybox')), 'nothing of the app or the OS is removed');
  });

  it('gives every entry of the source exactly one place (checked against find)', () => {
    const split = Split.apply(plan, index, undefined);
    const paths = sh('find', ['.'], { cwd: rootfs }).trim().split('\n').map((p) => (p === '.' ? '/' : p.slice(1)));
    const acc = split.account();
    assert.equal(acc.entries, paths.length);
    assert.equal(acc.base + acc.bsp + acc.removed + Object.values(acc.apps).reduce((a, b) => a + b, 0), paths.length);
    const where = (p: string) => JSON.stringify(split.destination(p));
    assert.equal(where('/opt/sensor/etc/sensor.conf'), '{"to":"app","name":"sensor"}');
    assert.equal(where('/etc/init.d/S90sensor'), '{"to":"app","name":"sensor"}');
    assert.equal(where('/etc/mender/mender.conf'), '{"to":"removed"}');
    assert.equal(where('/lib/firmware/brcm/brcmfmac43455-sdio.bin'), '{"to":"bsp","part":"firmware"}');
    assert.equal(where('/lib/modules/6.1.0-sample/modules.dep'), '{"to":"bsp","part":"modules"}');
    assert.equal(where('/lib/firmware'), '{"to":"base"}', 'the firmware mount point stays in the base');
    assert.equal(where('/dev/console'), '{"to":"base"}');
    assert.equal(acc.apps.sensor, paths.filter((p) => p.startsWith('/opt/sensor') || p === '/etc/init.d/S90sensor').length);
  });

  it('filters views with their ancestors, re-rooted, with link counts of the view', async () => {
    const split = Split.apply(plan, index, undefined);
    const tree = await openDirTree(rootfs);
    const app = await collect(filterTree(tree, { select: (p) => JSON.stringify(split.destination(p)).includes('"sensor"') }));
    assert.deepEqual(app.map((e) => e.path), [
      '/', '/etc', '/etc/init.d', '/etc/init.d/S90sensor', '/opt', '/opt/sensor', '/opt/sensor/bin', '/opt/sensor/bin/sensord',
      '/opt/sensor/etc', '/opt/sensor/etc/sensor.conf',
    ]);
    assert.equal(app.find((e) => e.path === '/opt/sensor/etc')!.uid, 100);
    assert.deepEqual(app.find((e) => e.path === '/opt/sensor/bin/sensord')!.xattrs?.['user.sensor.calibration'], Buffer.from([0x2a, 0, 0xff]));
    const fwView = filterTree(tree, {
      root: '/lib/firmware',
      select: (p) => split.destination(p).to === 'bsp',
      linkCounts: split.linkCounts((p) => split.destination(p).to === 'bsp'),
    });
    const fw = await collect(fwView);
    assert.deepEqual(fw.map((e) => e.path), ['/', '/brcm', '/brcm/brcmfmac43455-sdio.bin', '/brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.bin']);
    assert.equal(fw[2]!.inode, fw[3]!.inode);
    assert.equal(fw[2]!.nlink, 2);
    // The hardlink pair /etc/hostname{,.bak} stays whole in the base.
    const base = await collect(filterTree(tree, { select: (p) => split.destination(p).to === 'base', linkCounts: split.linkCounts((p) => split.destination(p).to === 'base') }));
    assert.equal(base.find((e) => e.path === '/etc/hostname')!.nlink, 2);
    assert.ok(!base.some((e) => e.path.startsWith('/etc/mender') || e.path.startsWith('/opt/sensor')));
    const chunks: Buffer[] = [];
    for await (const c of fwView.open(fw[2]!)) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).length, 4096);
    await tree.close();
  });

  it('refuses a plan naming paths the source lacks, and malformed plans, with the place of each problem', () => {
    const edited = structuredClone(plan);
    edited.containers[1]!.paths.push('/opt/missing');
    assert.throws(() => Split.apply(validatePlan(edited), index, undefined, 'plan.json'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'plan-missing-path');
      assert.match(err.message, /containers\.sensor\.paths \/opt\/missing/);
      return true;
    });
    const bad = structuredClone(plan) as unknown as Record<string, unknown>;
    (bad.containers as Record<string, unknown>[])[1]!.name = 'OS!';
    (bad.containers as Record<string, unknown>[])[0]!.kind = 'app';
    assert.throws(() => validatePlan(bad, 'plan.json'), /containers\[1\]\.name: must be .*containers\[0\]\.paths: an app container needs at least one path|containers\[0\]\.paths.*containers\[1\]\.name/s);
    assert.throws(() => validatePlan({ ...plan, removed: [{ path: '../etc', updater: 'mender', what: '' }] }), /removed\[0\]\.path/);
    assert.throws(() => validatePlan([]), /must be a JSON object/);
  });
});

describe('app detection from systemd units, /usr/local and inittab (a tree written in the test)', () => {
  it('finds each app with its command, environment and working directory, and keeps their starters with them', async (t) => {
    const { mkdir, writeFile, symlink } = await import('node:fs/promises');
    const root = await mkdtemp(join(tmpdir(), 'pvmigrate-apps-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const put = async (p: string, text: string, mode = 0o644) => {
      await mkdir(join(root, p, '..'), { recursive: true });
      await writeFile(join(root, p), text, { mode });
    };
    await put('sbin/init', '#!/bin/sh\n', 0o755);
    await put('boot/zImage', 'kernel');
    await put('opt/gateway/bin/gw', '#!/bin/sh\n', 0o755);
    await put('opt/gateway/share/ui.html', '<html/>');
    await put('etc/systemd/system/gateway.service', [
      '[Unit]', 'Description=gateway', '[Service]', 'Environment="GW_MODE=edge" GW_PORT=8443', 'WorkingDirectory=/opt/gateway',
      'ExecStart=-/opt/gateway/bin/gw --listen "0.0.0.0:8443"', 'Restart=always', '[Install]', 'WantedBy=multi-user.target', '',
    ].join('\n'));
    await mkdir(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
    await symlink('../gateway.service', join(root, 'etc/systemd/system/multi-user.target.wants/gateway.service'));
    await put('usr/local/bin/logshipper', '#!/bin/sh\n', 0o755);
    await put('usr/local/etc/logshipper/ship.conf', 'dest=x\n');
    await put('etc/inittab', '::sysinit:/etc/init.d/rcS\n::respawn:/usr/local/bin/logshipper -c /usr/local/etc/logshipper/ship.conf\n');
    await put('etc/systemd/system/mender-updated.service', '[Service]\nExecStart=/usr/bin/mender-update daemon\n');
    await put('usr/bin/mender-update', '#!/bin/sh\n', 0o755);
    const index = await TreeIndex.build(await openDirTree(root, { xattrs: false }), root);
    const plan = await detectPlan(index, undefined);
    const apps = plan.containers.filter((c) => c.kind === 'app');
    assert.deepEqual(apps.map((a) => [a.name, a.init, a.env, a.workdir, a.paths]), [
      ['gateway', ['/opt/gateway/bin/gw', '--listen', '0.0.0.0:8443'], { GW_MODE: 'edge', GW_PORT: '8443' }, '/opt/gateway',
        ['/etc/systemd/system/gateway.service', '/etc/systemd/system/multi-user.target.wants/gateway.service', '/opt/gateway']],
      ['logshipper', ['/usr/local/bin/logshipper', '-c', '/usr/local/etc/logshipper/ship.conf'], {}, null, ['/usr/local/bin/logshipper', '/usr/local/etc/logshipper']],
    ]);
    assert.equal(plan.bsp.kernel, '/boot/zImage');
    assert.deepEqual(plan.review.map((r) => [r.item, r.kind]), [['/etc/inittab', 'inittab']]);
    assert.deepEqual(plan.removed.map((r) => r.path), ['/etc/systemd/system/mender-updated.service', '/usr/bin/mender-update']);
    const split = Split.apply(plan, index, undefined);
    assert.deepEqual(split.destination('/usr/local/etc/logshipper/ship.conf'), { to: 'app', name: 'logshipper' });
    assert.deepEqual(split.destination('/etc/inittab'), { to: 'base' });
  });
});
