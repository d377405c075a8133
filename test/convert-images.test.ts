import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';

const skip = needTool('tar') || needTool('unsquashfs') || needTool('python3');

/** Two layers written by GNU tar: the second deletes /app/old (whiteout), hides /var/cache's lower content (opaque) and replaces /etc/conf. */
function layers(dir: string): string[] {
  const l1 = join(dir, 'l1');
  const l2 = join(dir, 'l2');
  for (const d of ['bin', 'app/old', 'etc', 'var/cache']) mkdirSync(join(l1, d), { recursive: true });
  for (const d of ['app', 'etc', 'var/cache']) mkdirSync(join(l2, d), { recursive: true });
  writeFileSync(join(l1, 'bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  symlinkSync('tool', join(l1, 'bin/sh'));
  writeFileSync(join(l1, 'app/old/f'), 'old');
  writeFileSync(join(l1, 'etc/conf'), 'v1\n');
  writeFileSync(join(l1, 'etc/keep'), 'keep\n');
  writeFileSync(join(l1, 'var/cache/stale'), 'stale');
  writeFileSync(join(l2, 'app/.wh.old'), '');
  writeFileSync(join(l2, 'var/cache/.wh..wh..opq'), '');
  writeFileSync(join(l2, 'var/cache/fresh'), 'fresh');
  writeFileSync(join(l2, 'etc/conf'), 'v2\n');
  writeFileSync(join(l2, 'app/new'), 'new\n');
  sh('tar', ['--sort=name', '-C', l1, '-cf', join(dir, 'layer1.tar'), '.']);
  sh('tar', ['--sort=name', '-C', l2, '-cf', join(dir, 'layer2.tar'), '.']);
  return [join(dir, 'layer1.tar'), join(dir, 'layer2.tar')];
}

const CONFIG = {
  architecture: 'arm64',
  os: 'linux',
  config: { Entrypoint: ['/bin/tool', '--serve'], Cmd: ['--port', '8080'], Env: ['PATH=/bin', 'MODE=prod'], WorkingDir: '/app', Volumes: { '/data': {} } },
};

function listing(repo: string, key: string): string[] {
  const st = JSON.parse(readFileSync(join(repo, '.pvr/json'), 'utf8')) as Record<string, string>;
  return sh('unsquashfs', ['-l', join(repo, '.pvr/objects', st[key]!)]).trim().split('\n').map((l) => l.replace(/^squashfs-root/, '') || '/');
}

describe('convert: docker save and OCI image archives become a container', { skip }, () => {
  it('docker save layout: layers applied with whiteouts and opaque dirs; entrypoint, cmd, env, workdir and volumes kept', async (t) => {
    const dir = await tempDir(t);
    const [l1, l2] = layers(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['example.com/sensor-ui:2.1'], Layers: ['layer1.tar', 'layer2.tar'] }]));
    sh('tar', ['-C', dir, '-cf', join(dir, 'image.tar'), 'manifest.json', 'config.json', 'layer1.tar', 'layer2.tar']);
    assert.ok(l1 && l2);
    const out = join(dir, 'repo');
    const r = await runCli(['convert', join(dir, 'image.tar'), '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { containers: { name: string; group: string }[] }).containers.map((c) => [c.name, c.group]), [['sensor-ui', 'app']]);
    assert.deepEqual(listing(out, 'sensor-ui/root.squashfs'), [
      '/', '/app', '/app/new', '/bin', '/bin/sh', '/bin/tool', '/etc', '/etc/conf', '/etc/keep', '/var', '/var/cache', '/var/cache/fresh',
    ]);
    const st = JSON.parse(readFileSync(join(out, '.pvr/json'), 'utf8')) as Record<string, unknown>;
    const conf = readFileSync(join(out, '.pvr/objects', st['sensor-ui/lxc.container.conf'] as string), 'utf8');
    assert.match(conf, /^lxc\.init\.cmd = \/bin\/tool "--serve" "--port" "8080"$/m);
    assert.match(conf, /^lxc\.init\.cwd = \/app$/m);
    assert.match(conf, /^lxc\.environment = MODE=prod$/m);
    assert.match(conf, /^lxc\.mount\.entry = \/volumes\/sensor-ui\/docker--data data none bind,rw,create=dir 0 0$/m);
    assert.deepEqual((st['sensor-ui/run.json'] as { storage: unknown }).storage, { 'docker--data': { persistence: 'permanent' }, 'lxc-overlay': { persistence: 'boot' } });
    assert.deepEqual((st['pvmigrate/build.json'] as { compatible: string[] }).compatible, ['linux/arm64']);
  });

  it('OCI image layout with gzip layers: digests checked, a tampered blob refused', async (t) => {
    const dir = await tempDir(t);
    const oci = join(dir, 'oci');
    mkdirSync(join(oci, 'blobs/sha256'), { recursive: true });
    const blob = (content: Buffer) => {
      const digest = createHash('sha256').update(content).digest('hex');
      writeFileSync(join(oci, 'blobs/sha256', digest), content);
      return { digest: `sha256:${digest}`, size: content.length };
    };
    const layerDescs = layers(dir).map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(Buffer.from(sh('sh', ['-c', `gzip -n -c "${l}" | base64 -w0`]), 'base64')) }));
    const config = blob(Buffer.from(JSON.stringify(CONFIG)));
    const manifest = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: layerDescs })));
    writeFileSync(join(oci, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(oci, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'ui' } }] }));
    sh('tar', ['-C', oci, '-cf', join(dir, 'oci.tar'), '.']);
    const out = join(dir, 'repo');
    const r = await runCli(['convert', join(dir, 'oci.tar'), '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(listing(out, 'ui/root.squashfs').includes('/var/cache/fresh'));
    assert.ok(!listing(out, 'ui/root.squashfs').includes('/var/cache/stale'));

    // Tamper with the second layer's bytes: its digest no longer matches.
    const victim = join(oci, 'blobs/sha256', layerDescs[1]!.digest.slice(7));
    const bytes = readFileSync(victim);
    bytes[bytes.length - 9] = bytes[bytes.length - 9]! ^ 0xff;
    writeFileSync(victim, bytes);
    sh('tar', ['-C', oci, '-cf', join(dir, 'bad.tar'), '.']);
    const bad = await runCli(['convert', join(dir, 'bad.tar'), '-o', join(dir, 'bad-repo')]);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /bad\.tar: blob sha256:[0-9a-f]{64} does not match its content/);
    assert.equal(existsSync(join(dir, 'bad-repo')), false);
  });

  it('a layer member that climbs out with .. is refused, nothing written', async (t) => {
    const dir = await tempDir(t);
    sh('python3', ['-c', [
      'import tarfile, io',
      `t = tarfile.open(${JSON.stringify(join(dir, 'evil.tar'))}, "w", format=tarfile.USTAR_FORMAT)`,
      'data = b"pwned"',
      'i = tarfile.TarInfo("../../etc/evil"); i.size = len(data); t.addfile(i, io.BytesIO(data)); t.close()',
    ].join('\n')]);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: [], Layers: ['evil.tar'] }]));
    sh('tar', ['-C', dir, '-cf', join(dir, 'image.tar'), 'manifest.json', 'config.json', 'evil.tar']);
    const r = await runCli(['convert', join(dir, 'image.tar'), '-o', join(dir, 'repo')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /image\.tar \(layer 1\): member path '\.\.\/\.\.\/etc\/evil' contains '\.\.'/);
    assert.equal(existsSync(join(dir, 'repo')), false);
  });
});
