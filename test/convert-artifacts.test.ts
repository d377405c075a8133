import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot, runCli } from './helpers/cli.ts';
import { needTool, privileged, sh } from './helpers/env.ts';

const skip = privileged('sample rootfs with device nodes and ownership') || needTool('mender-artifact') || needTool('rauc') || needTool('unsquashfs');

interface Listing {
  /** path → "type mode uid gid size mtime target-or-rdev" */
  meta: Map<string, string>;
  /** path → sha256 of regular files */
  sha: Map<string, string>;
}

/** `find -printf` + sha256sum of a directory: the independent view of a tree's metadata and content. */
function listDir(dir: string, prefix = ''): Listing {
  const meta = new Map<string, string>();
  const out = sh('sh', ['-c', `cd "${dir}" && find . -printf '%P\\0%y %m %U %G %s %T@ %l\\0'`]);
  const parts = out.split('\0');
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const p = parts[i] === '' ? prefix || '/' : `${prefix}/${parts[i]}`;
    const fields = parts[i + 1]!.split(' ');
    const [type, mode, uid, gid, size, mtime, target] = fields;
    const shown = type === 'd' ? '' : size;
    meta.set(p, `${type} ${mode} ${uid} ${gid} ${shown} ${Math.floor(Number(mtime))} ${target}`);
  }
  const sha = new Map<string, string>();
  const sums = sh('sh', ['-c', `cd "${dir}" && find . -type f -print0 | xargs -0 -r sha256sum`]);
  for (const line of sums.trim().split('\n').filter(Boolean)) {
    const [h, p] = [line.slice(0, 64), line.slice(66)];
    sha.set(`${prefix}${p.slice(1)}`, h);
  }
  return { meta, sha };
}

function state(repo: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(repo, '.pvr/json'), 'utf8')) as Record<string, unknown>;
}

function unsquash(repo: string, sha: string, into: string): string {
  mkdirSync(dirname(into), { recursive: true });
  sh('unsquashfs', ['-q', '-n', '-d', into, join(repo, '.pvr/objects', sha)]);
  return into;
}

describe('convert: sample releases made by the real mender-artifact, rauc and a CMS-signed swu', { skip }, () => {
  let dir: string;
  const rel = (v: string, f: string) => join(dir, v, f);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pvmigrate-convert-'));
    sh(join(repoRoot, 'samples/rootfs/build.sh'), [join(dir, '1.0'), '1.0']);
    sh(join(repoRoot, 'samples/rootfs/build.sh'), [join(dir, '1.1'), '1.1', 'mender']);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const trustFor: Record<string, (d: string) => string[]> = {
    'release.mender': () => [],
    'release.raucb': (d) => ['--keyring', join(d, 'keys/ca.pem')],
    'release.swu': (d) => ['--ca', join(d, 'keys/ca.pem')],
  };

  for (const artifact of Object.keys(trustFor)) {
    it(`converts ${artifact}; every source file lands in exactly one place with its metadata`, async () => {
      const out = join(dir, `repo-${artifact}`);
      const r = await runCli(['convert', rel('1.0', artifact), '-o', out, '--json', '--initrd', rel('1.0', 'initrd.img'), ...trustFor[artifact]!(join(dir, '1.0'))]);
      assert.equal(r.code, 0, r.stderr);
      const v = await runCli(['validate', out]);
      assert.equal(v.code, 0, `validate: ${v.stdout}${v.stderr}`);
      const doc = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.deepEqual(Object.keys(doc), ['revision', 'bsp', 'containers', 'removed', 'review', 'objects', 'bytes']);
      assert.deepEqual((doc.containers as { name: string; group: string }[]).map((c) => [c.name, c.group]), [['os', 'root'], ['sensor', 'app']]);

      const st = state(out);
      const src = listDir(join(dir, '1.0/rootfs'));
      assert.equal(st['sensor/root.squashfs'], st['os/root.squashfs'], 'the app root is the base object itself');
      const x = join(dir, `x-${artifact}`);
      const base = listDir(unsquash(out, st['os/root.squashfs'] as string, join(x, 'base')));
      const app = listDir(unsquash(out, st['sensor/root.ovl.squashfs'] as string, join(x, 'app')));
      const mods = listDir(unsquash(out, st['bsp/modules.squashfs'] as string, join(x, 'modules')), '/lib/modules');
      const fw = listDir(unsquash(out, st['bsp/firmware.squashfs'] as string, join(x, 'firmware')), '/lib/firmware');
      const objectSha = (key: string) => st[key] as string;
      const removed = (doc.removed as { path: string }[]).map((r) => r.path);

      for (const [path, meta] of src.meta) {
        const places: string[] = [];
        const isDir = meta.startsWith('d ');
        for (const [name, view] of [['base', base], ['app', app], ['modules', mods], ['firmware', fw]] as const) {
          if (!view.meta.has(path)) continue;
          places.push(name);
          assert.equal(view.meta.get(path), meta, `${path} metadata in ${name}`);
          if (src.sha.has(path)) assert.equal(view.sha.get(path), src.sha.get(path), `${path} content in ${name}`);
        }
        if (path === '/boot/vmlinuz-6.1.0-sample') assert.equal(objectSha('bsp/kernel.img'), src.sha.get(path)), places.push('kernel');
        if (path === '/boot/dtbs/sample-board.dtb') assert.equal(objectSha('bsp/sample-board.dtb'), src.sha.get(path)), places.push('dtb');
        if (removed.some((r) => path === r || path.startsWith(`${r}/`))) places.push('removed');
        if (isDir) assert.ok(places.length >= 1, `directory ${path} is somewhere`);
        else assert.equal(places.length, 1, `${path} is in exactly one place, found in [${places.join(', ')}]`);
      }
      // Nothing invented: every output entry comes from the source (lost+found is ext4's own).
      for (const view of [base, app]) for (const p of view.meta.keys()) assert.ok(src.meta.has(p) || p.startsWith('/lost+found'), `${p} has a source`);

      // Hardlinks, xattrs and the sparse file survive in the base and app layers.
      const b = join(x, 'base');
      assert.equal(sh('stat', ['-c', '%i', join(b, 'etc/hostname')]), sh('stat', ['-c', '%i', join(b, 'etc/hostname.bak')]));
      assert.match(sh('getfattr', ['-n', 'security.capability', '-e', 'hex', join(b, 'usr/bin/su-helper')]), /0x0100000200200000/);
      assert.match(sh('getfattr', ['-n', 'user.sensor.calibration', '-e', 'hex', join(x, 'app/opt/sensor/bin/sensord')]), /0x2a00ff/);
      assert.equal(sh('stat', ['-c', '%s', join(b, 'var/lib/sparse.img')]).trim(), String(8 * 1024 * 1024));

      const conf = readFileSync(join(out, '.pvr/objects', st['sensor/lxc.container.conf'] as string), 'utf8');
      assert.match(conf, /^lxc\.init\.cmd = \/opt\/sensor\/bin\/sensord "--config" "\/opt\/sensor\/etc\/sensor\.conf"$/m);
      assert.match(readFileSync(join(out, '.pvr/objects', st['os/lxc.container.conf'] as string), 'utf8'), /^lxc\.init\.cmd = \/sbin\/init$/m);
      assert.deepEqual(st['bsp/run.json'], {
        addons: [], fdt: 'sample-board.dtb', firmware: 'firmware.squashfs', initrd: 'pv-initrd.img', initrd_config: '', linux: 'kernel.img', modules: 'modules.squashfs',
      });
      assert.equal(st['bsp/pv-initrd.img'], sh('sha256sum', [rel('1.0', 'initrd.img')]).slice(0, 64));
      const source = st['pvmigrate/build.json'] as Record<string, unknown>;
      assert.equal(source.sha256, sh('sha256sum', [rel('1.0', artifact)]).slice(0, 64));
      assert.equal(source.version, '1.0');
      if (artifact === 'release.swu') {
        // The update's `files` entry lands in the app owning its path; its script is extracted for review.
        assert.equal(st['_config/sensor/opt/sensor/etc/sensor.env'], createHash('sha256').update('SENSOR_LEVEL=debug\n').digest('hex'));
        const review = doc.review as { item: string; kind: string; extracted: string }[];
        assert.deepEqual(review.map((r) => [r.item, r.kind]), [['migrate.sh', 'script']]);
        assert.equal(review[0]!.extracted, `${out}.pvmigrate/review/migrate.sh`);
        assert.match(readFileSync(review[0]!.extracted, 'utf8'), /^#!\/bin\/sh\n# migrate sensor calibration\n/);
        assert.ok(!readdirSync(out).includes('.pvmigrate'), 'nothing but the repo inside the repo directory');
      } else {
        assert.deepEqual(Object.keys(st).filter((k) => k.startsWith('_config/')), []);
      }
      if (artifact === 'release.mender') {
        // The Mender state script is a review item with its content beside the repo.
        const review = doc.review as { item: string; kind: string; extracted: string }[];
        assert.deepEqual(review.map((r) => [r.item, r.kind]), [['scripts/ArtifactInstall_Leave_50_sensor', 'script']]);
        assert.match(readFileSync(review[0]!.extracted, 'utf8'), /# keep sensor calibration across the update/);
      }
      // Every object is named by its content.
      for (const name of readdirSync(join(out, '.pvr/objects'))) assert.equal(sh('sha256sum', [join(out, '.pvr/objects', name)]).slice(0, 64), name);
    });
  }

  it('signs with --sign-key/--x5c and exports: validate --mode strict accepts repo and tarball against the CA', async () => {
    const out = join(dir, 'signed');
    const tgz = join(dir, 'signed.tgz');
    const keys = join(dir, '1.0/keys');
    const r = await runCli(['convert', rel('1.0', 'release.mender'), '-o', out, '--initrd', rel('1.0', 'initrd.img'), '--sign-key', join(keys, 'signer.key'), '--x5c', join(keys, 'signer.pem'), '--export', tgz]);
    assert.equal(r.code, 0, r.stderr);
    for (const target of [out, tgz]) {
      const v = await runCli(['validate', target, '--mode', 'strict', '--truststore', join(keys, 'ca.pem')]);
      assert.equal(v.code, 0, `validate ${target}: ${v.stdout}${v.stderr}`);
    }
    assert.deepEqual(sh('tar', ['tzf', tgz]).trim().split('\n').sort(), ['json', ...readdirSync(join(out, '.pvr/objects')).map((o) => `objects/${o}`)].sort());
  });

  it('a rootfs tarball (GNU tar, gzip) of the same tree gives the same app layer, modules and firmware as the ext4 artifact', async () => {
    const tgz = join(dir, 'rootfs.tgz');
    sh('tar', ['--sort=name', '--xattrs', '--xattrs-include=*', '-C', join(dir, '1.0/rootfs'), '-czf', tgz, '.']);
    const fromTar = join(dir, 'from-tar');
    const fromMender = join(dir, 'repo-release.mender');
    assert.equal((await runCli(['convert', tgz, '-o', fromTar])).code, 0);
    const a = state(fromTar);
    const b = state(fromMender);
    for (const key of ['sensor/root.ovl.squashfs', 'bsp/modules.squashfs', 'bsp/firmware.squashfs', 'bsp/kernel.img', 'sensor/lxc.container.conf']) assert.equal(a[key], b[key], key);
    assert.equal((a['pvmigrate/build.json'] as { format: string }).format, 'tar');
  });

  it('converting the same release twice gives byte-identical state and objects', async () => {
    // The first conversion is the one the per-format test made.
    const a = join(dir, 'repo-release.mender');
    const b = join(dir, 'twice');
    assert.equal((await runCli(['convert', rel('1.0', 'release.mender'), '-o', b, '--initrd', rel('1.0', 'initrd.img')])).code, 0);
    assert.deepEqual(readFileSync(join(a, '.pvr/json')), readFileSync(join(b, '.pvr/json')));
    assert.deepEqual(readdirSync(join(a, '.pvr/objects')).sort(), readdirSync(join(b, '.pvr/objects')).sort());
  });

  it('fleet 1.0 → 1.1 (one app line): ≤ 1% of the artifact to ship, only the app layer changes, no reboot', async () => {
    const out = join(dir, 'fleet');
    const r = await runCli(['fleet', rel('1.0', 'release.mender'), rel('1.1', 'release.mender'), '-o', out, '--json', '--initrd', rel('1.0', 'initrd.img')]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { steps: { revision: string; artifactBytes: number; bytesToShip: number; ratio: number; reboot: boolean; changedObjects: string[]; changedKeys: string[] }[] };
    const [first, second] = doc.steps;
    assert.equal(first!.reboot, true);
    assert.equal(second!.artifactBytes, readFileSync(rel('1.1', 'release.mender')).length);
    assert.ok(second!.bytesToShip <= second!.artifactBytes / 100, `ship ${second!.bytesToShip} of ${second!.artifactBytes}`);
    assert.deepEqual(second!.changedObjects, ['sensor/root.ovl.squashfs']);
    assert.deepEqual(second!.changedKeys, ['sensor/root.ovl.squashfs']);
    assert.equal(second!.reboot, false);
    const s1 = state(join(out, first!.revision));
    const s2 = state(join(out, second!.revision));
    assert.equal(s1['os/root.squashfs'], s2['os/root.squashfs']);
    assert.equal(readFileSync(join(out, second!.revision, '.pvr/config'), 'utf8'), '{"ObjectsDir":"../objects"}');
    for (const step of [first!, second!]) assert.equal((await runCli(['validate', join(out, step.revision)])).code, 0, `validate ${step.revision}`);
    // The device-side cost is the new object's size, measured on disk.
    const ovl = s2['sensor/root.ovl.squashfs'] as string;
    assert.equal(second!.bytesToShip, readFileSync(join(out, 'objects', ovl)).length);
  });

  it('fleet takes a zip of releases in version order (1.10 after 1.9) and reports the same steps', async () => {
    const zip = join(dir, 'ci.zip');
    const py = [
      'import zipfile',
      `z = zipfile.ZipFile(${JSON.stringify(zip)}, "w", zipfile.ZIP_STORED)`,
      `z.write(${JSON.stringify(rel('1.1', 'release.mender'))}, "releases/1.10/release.mender")`,
      `z.write(${JSON.stringify(rel('1.0', 'release.mender'))}, "releases/1.9/release.mender")`,
      'z.close()',
    ].join('\n');
    sh('python3', ['-c', py]);
    const r = await runCli(['fleet', zip, '-o', join(dir, 'fleet-zip'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { steps: { source: { member?: string; file: string; version: string }; changedObjects: string[]; reboot: boolean }[] };
    assert.deepEqual(doc.steps.map((s) => [s.source.file, s.source.version]), [['ci.zip:releases/1.9/release.mender', '1.0'], ['ci.zip:releases/1.10/release.mender', '1.1']]);
    assert.deepEqual(doc.steps[1]!.changedObjects, ['sensor/root.ovl.squashfs']);
    assert.equal(doc.steps[1]!.reboot, false);
  });

  it('a zip of a CI job (artifact + docker save archive) gives one revision: the split rootfs plus the image as a container', async () => {
    const img = join(dir, 'img');
    mkdirSync(join(img, 'layer/usr/bin'), { recursive: true });
    writeFileSync(join(img, 'layer/usr/bin/ui'), '#!/bin/sh\n', { mode: 0o755 });
    sh('tar', ['-C', join(img, 'layer'), '-cf', join(img, 'layer.tar'), '.']);
    writeFileSync(join(img, 'config.json'), JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/usr/bin/ui'] } }));
    writeFileSync(join(img, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['ui:1'], Layers: ['layer.tar'] }]));
    sh('tar', ['-C', img, '-cf', join(img, 'ui.tar'), 'manifest.json', 'config.json', 'layer.tar']);
    const zip = join(dir, 'job.zip');
    sh('python3', ['-c', `import zipfile\nz = zipfile.ZipFile(${JSON.stringify(zip)}, "w")\nz.write(${JSON.stringify(rel('1.0', 'release.mender'))}, "release.mender")\nz.write(${JSON.stringify(join(img, 'ui.tar'))}, "ui.tar")\nz.close()`]);
    const out = join(dir, 'job');
    const r = await runCli(['convert', zip, '-o', out, '--initrd', rel('1.0', 'initrd.img'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { containers: { name: string; group: string }[] }).containers.map((c) => [c.name, c.group]), [['os', 'root'], ['sensor', 'app'], ['ui', 'app']]);
    const st = state(out);
    const source = st['pvmigrate/build.json'] as { file: string; images: { file: string; sha256: string; ref: string }[] };
    assert.equal(source.file, 'job.zip:release.mender');
    assert.deepEqual(source.images, [{ file: 'job.zip:ui.tar', sha256: sh('sha256sum', [join(img, 'ui.tar')]).slice(0, 64), ref: 'ui:1' }]);
    assert.match(sh('unsquashfs', ['-l', join(out, '.pvr/objects', st['ui/root.squashfs'] as string)]), /^squashfs-root\/usr\/bin\/ui$/m);
    assert.equal((await runCli(['validate', out])).code, 0);
  });

  it('fleet takes a directory of releases in version order', async () => {
    const series = join(dir, 'series');
    mkdirSync(series);
    symlinkSync(rel('1.1', 'release.mender'), join(series, 'release-1.10.mender'));
    symlinkSync(rel('1.0', 'release.mender'), join(series, 'release-1.9.mender'));
    const r = await runCli(['fleet', series, '-o', join(dir, 'fleet-dir'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { steps: { revision: string; source: { file: string }; reboot: boolean }[] };
    assert.deepEqual(doc.steps.map((s) => [s.revision, s.source.file, s.reboot]), [['001-1.0', 'release-1.9.mender', true], ['002-1.1', 'release-1.10.mender', false]]);
    assert.deepEqual(readdirSync(join(dir, 'fleet-dir')).sort(), ['001-1.0', '001-1.0.pvmigrate', '002-1.1', '002-1.1.pvmigrate', 'objects']);
  });

  it('--write-plan then --plan with an edit: dropping the app container puts its files back in the base', async () => {
    const planFile = join(dir, 'plan.json');
    assert.equal((await runCli(['convert', rel('1.0', 'release.mender'), '--write-plan', planFile])).code, 0);
    const plan = JSON.parse(readFileSync(planFile, 'utf8')) as { containers: { name: string }[] };
    plan.containers = plan.containers.filter((c) => c.name !== 'sensor');
    writeFileSync(planFile, JSON.stringify(plan));
    const out = join(dir, 'edited');
    const r = await runCli(['convert', rel('1.0', 'release.mender'), '-o', out, '--plan', planFile, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { containers: { name: string }[] }).containers.map((c) => c.name), ['os']);
    const st = state(out);
    assert.equal(st['sensor/run.json'], undefined);
    const listing = sh('unsquashfs', ['-l', join(out, '.pvr/objects', st['os/root.squashfs'] as string)]);
    assert.match(listing, /^squashfs-root\/opt\/sensor\/etc\/sensor\.conf$/m);
    assert.match(listing, /^squashfs-root\/etc\/init\.d\/S90sensor$/m);
  });

  it('fleet refuses a series that mixes device types, leaving nothing behind', async () => {
    const out = join(dir, 'mixed');
    const r = await runCli(['fleet', rel('1.0', 'release.mender'), rel('1.0', 'release.swu'), '-o', out, '--ca', join(dir, '1.0/keys/ca.pem')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /release\.swu: device types \[1\.0\] differ from \[sample-device\] of release\.mender/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.mixed')), []);
  });
});
