// Artifacts written by the real mender-artifact must inspect to what `mender-artifact read` prints,
// and our signature verdicts must agree with `mender-artifact validate -k`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { openArtifact } from '../importers/open.ts';
import { runCli } from './helpers/cli.ts';
import { needTool, sh } from './helpers/env.ts';
import type { MenderJson } from './helpers/mender.ts';

const skip = needTool('mender-artifact') || needTool('openssl');

interface ReadFile {
  name: string;
  size: number;
  checksum: string;
}
interface ReadUpdate {
  type: string;
  provides: Record<string, string>;
  depends: Record<string, string>;
  clears: string[];
  metadata: unknown;
  files: ReadFile[];
}
interface ReadOutput {
  name: string;
  version: number;
  signature: string;
  devices: string[];
  providesGroup: string;
  dependsArtifacts: string[];
  dependsGroups: string[];
  scripts: string[];
  updates: ReadUpdate[];
}

/** Parse what mender-artifact 3.9 `read` prints (the independent truth of these tests). */
function parseRead(text: string): ReadOutput {
  const lines = text.split('\n');
  const field = (name: string): string => lines.find((l) => l.startsWith(`  ${name}:`))?.slice(name.length + 3).trim() ?? '';
  const list = (s: string): string[] => s.replace(/^'?\[|\]'?$/g, '').split(' ').filter(Boolean);
  const out: ReadOutput = {
    name: field('Name'),
    version: Number(field('Version')),
    signature: field('Signature'),
    devices: list(field('Compatible devices')),
    providesGroup: field('Provides group'),
    dependsArtifacts: list(field('Depends on one of artifact(s)')),
    dependsGroups: list(field('Depends on one of group(s)')),
    scripts: [],
    updates: [],
  };
  let i = lines.findIndex((l) => l.startsWith('  State scripts:')) + 1;
  while (i > 0 && lines[i]?.startsWith('    ')) out.scripts.push(lines[i++].trim());
  let u: ReadUpdate | undefined;
  let section = '';
  let metaText = '';
  for (const line of lines.slice(lines.indexOf('Updates:') + 1)) {
    if (/^ {4}\d+:$/.test(line)) {
      u = { type: '', provides: {}, depends: {}, clears: [], metadata: null, files: [] };
      out.updates.push(u);
      continue;
    }
    if (!u) continue;
    const m = /^ {4}(Type|Provides|Depends|Clears Provides|Metadata|Files):\s*(.*)$/.exec(line);
    if (m) {
      section = m[1];
      if (section === 'Type') u.type = m[2];
      if (section === 'Clears Provides') u.clears = JSON.parse(m[2]) as string[];
      continue;
    }
    if (section === 'Metadata' && line.startsWith('\t')) {
      metaText += line.slice(1);
      u.metadata = (() => {
        try {
          return JSON.parse(metaText);
        } catch {
          return null;
        }
      })();
    } else if ((section === 'Provides' || section === 'Depends') && line.startsWith('\t')) {
      const [k, ...v] = line.slice(1).split(': ');
      (section === 'Provides' ? u.provides : u.depends)[k] = v.join(': ');
    } else if (section === 'Files') {
      const f = /^ {6}(name|size|checksum):\s+(.*)$/.exec(line);
      if (f?.[1] === 'name') u.files.push({ name: f[2], size: -1, checksum: '' });
      else if (f?.[1] === 'size') u.files[u.files.length - 1].size = Number(f[2]);
      else if (f?.[1] === 'checksum') u.files[u.files.length - 1].checksum = f[2];
    }
  }
  return out;
}

function maRead(file: string, key?: string): ReadOutput {
  return parseRead(sh('mender-artifact', ['read', ...(key ? ['-k', key] : []), file]));
}

function maValidate(file: string, key?: string): boolean {
  return spawnSync('mender-artifact', ['validate', ...(key ? ['-k', key] : []), file]).status === 0;
}

let work: string;
const art = (n: string): string => join(work, `${n}.mender`);

interface Case {
  name: string;
  args: string[];
  key?: 'rsa' | 'ec';
}

// Everything is written once, up front; the tests then compare. Inputs are small so the suite stays fast.
const cases: Case[] = [
  { name: 'rootfs-none', args: ['rootfs-image', '-f', 'rootfs.ext4', '-n', 'rel-1', '-t', 'dev1', '-t', 'dev2', '--compression', 'none', '-g', 'grp', '-G', 'old', '-N', 'rel-0'] },
  { name: 'rootfs-gzip', args: ['rootfs-image', '-f', 'rootfs.ext4', '-n', 'rel-2', '-t', 'dev1', '-p', 'extra:1', '-d', 'needs:2', '-s', 'ArtifactInstall_Enter_01_check'] },
  { name: 'rootfs-lzma', args: ['rootfs-image', '-f', 'rootfs.ext4', '-n', 'rel-3', '-t', 'dev1', '--compression', 'lzma'] },
  { name: 'rootfs-v2', args: ['rootfs-image', '-f', 'rootfs.ext4', '-n', 'rel-v2', '-t', 'dev1', '-v', '2'] },
  { name: 'module-directory', args: ['module-image', '-T', 'directory', '-f', 'update.tar', '-f', 'dest_dir', '-n', 'dir-1', '-t', 'dev1'] },
  { name: 'module-single-file', args: ['module-image', '-T', 'single-file', '-f', 'dest_dir', '-f', 'filename', '-f', 'permissions', '-f', 'app.conf', '-n', 'sf-1', '-t', 'dev1'] },
  { name: 'module-docker', args: ['module-image', '-T', 'docker', '-m', 'docker.json', '-n', 'dock-1', '-t', 'dev1'] },
  { name: 'module-deb', args: ['module-image', '-T', 'deb', '-f', 'tool.deb', '-n', 'deb-1', '-t', 'dev1', '-p', 'pkg:tool', '-d', 'arch:arm64'] },
  { name: 'module-rpm', args: ['module-image', '-T', 'rpm', '-f', 'tool.rpm', '-n', 'rpm-1', '-t', 'dev1', '-p', 'rpm:tool'] },
  { name: 'module-script', args: ['module-image', '-T', 'script', '-f', 'run.sh', '-n', 'scr-1', '-t', 'dev1', '-m', 'meta.json', '--compression', 'none'] },
  { name: 'module-many-lzma', args: ['module-image', '-T', 'custom-thing', '-f', 'app.conf', '-f', 'run.sh', '-f', 'rootfs.ext4', '-n', 'many-1', '-t', 'a', '-t', 'b', '--compression', 'lzma'] },
  { name: 'bootstrap', args: ['bootstrap-artifact', '-n', 'boot-1', '-t', 'dev1', '-p', 'rootfs-image.version:boot-1'] },
  { name: 'signed-rsa', args: ['rootfs-image', '-f', 'rootfs.ext4', '-n', 'srsa', '-t', 'dev1', '-k', 'rsa.key'], key: 'rsa' },
  { name: 'signed-ec', args: ['module-image', '-T', 'single-file', '-f', 'app.conf', '-n', 'sec', '-t', 'dev1', '-k', 'ec.key'], key: 'ec' },
  { name: 'signed-rsa-v2', args: ['rootfs-image', '-f', 'rootfs.ext4', '-n', 'srsa2', '-t', 'dev1', '-k', 'rsa.key', '-v', '2'], key: 'rsa' },
  {
    name: 'augmented',
    args: ['module-image', '-T', 'single-file', '-f', 'app.conf', '-n', 'aug-1', '-t', 'dev1', '-k', 'ec.key', '-m', 'meta.json', '--augment-file', 'run.sh', '--augment-type', 'single-file', '--augment-provides', 'aug:yes', '--augment-meta-data', 'docker.json'],
    key: 'ec',
  },
];

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'pvmigrate-mtest-'));
  // A pseudo-random 300 KiB "rootfs" (incompressible enough to exercise multi-chunk decoding).
  const seed = createHash('sha256').update('rootfs').digest();
  const blocks: Buffer[] = [];
  for (let i = 0; i < 300 * 32; i++) blocks.push(createHash('sha256').update(seed).update(String(i)).digest());
  await writeFile(join(work, 'rootfs.ext4'), Buffer.concat(blocks));
  await writeFile(join(work, 'dest_dir'), '/etc/app');
  await writeFile(join(work, 'filename'), 'app.conf');
  await writeFile(join(work, 'permissions'), '0644');
  await writeFile(join(work, 'app.conf'), 'setting=1\n');
  await writeFile(join(work, 'run.sh'), '#!/bin/sh\necho hi\n');
  await writeFile(join(work, 'tool.deb'), '!<arch>\ndebian-binary\n');
  // An RPM lead (magic, version 3.0, binary) is all the update module and both readers look at here.
  await writeFile(join(work, 'tool.rpm'), Buffer.concat([Buffer.from([0xed, 0xab, 0xee, 0xdb, 3, 0, 0, 0]), Buffer.alloc(88)]));
  await writeFile(join(work, 'docker.json'), JSON.stringify({ containers: ['alpine:3.19', 'nginx:1.25'] }));
  await writeFile(join(work, 'meta.json'), JSON.stringify({ answer: 42, list: ['a', 'b'], nested: { x: 'y' } }));
  await writeFile(join(work, 'ArtifactInstall_Enter_01_check'), '#!/bin/sh\nexit 0\n');
  sh('tar', ['-cf', join(work, 'update.tar'), '-C', work, 'app.conf', 'run.sh']);
  // mender-artifact 3.9 reads PKCS#1 RSA and SEC1 EC private keys.
  sh('openssl', ['genrsa', '-traditional', '-out', join(work, 'rsa.key'), '2048']);
  sh('openssl', ['pkey', '-in', join(work, 'rsa.key'), '-pubout', '-out', join(work, 'rsa.pub')]);
  sh('openssl', ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', join(work, 'ec.key')]);
  sh('openssl', ['pkey', '-in', join(work, 'ec.key'), '-pubout', '-out', join(work, 'ec.pub')]);
  sh('openssl', ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', join(work, 'other.key')]);
  sh('openssl', ['pkey', '-in', join(work, 'other.key'), '-pubout', '-out', join(work, 'other.pub')]);
  for (const c of cases) sh('mender-artifact', ['write', ...c.args, '-o', art(c.name)], { cwd: work });
});

process.on('exit', () => {
  if (work) spawnSync('rm', ['-rf', work]);
});

for (const c of cases) {
  test(`${c.name}: inspect matches mender-artifact read`, { skip }, async () => {
    const pub = c.key ? join(work, `${c.key}.pub`) : undefined;
    const want = maRead(art(c.name), pub);
    const a = await openArtifact(art(c.name), { key: pub });
    try {
      const j = a.toJSON() as MenderJson;
      assert.equal(j.name, want.name);
      assert.equal(j.formatVersion, want.version);
      assert.deepEqual(j.depends.device_type, want.devices);
      assert.equal(j.provides.artifact_group ?? '', want.version === 3 ? want.providesGroup : '');
      if (want.version === 3) {
        assert.deepEqual(j.depends.artifact_name ?? [], want.dependsArtifacts);
        assert.deepEqual(j.depends.artifact_group ?? [], want.dependsGroups);
      }
      assert.deepEqual(j.scripts, want.scripts);
      assert.equal(j.signed, want.signature !== 'no signature');
      if (c.key) assert.equal(want.signature, 'signed and verified correctly');
      assert.equal(j.verified, c.key ? true : null);
      assert.equal(j.payloads.length, want.updates.length);
      j.payloads.forEach((p, i) => {
        const u = want.updates[i];
        assert.equal(p.type ?? 'Empty type', u.type);
        assert.deepEqual(p.files.map((f) => ({ name: f.name, size: f.size, checksum: f.sha256 })), u.files);
        assert.deepEqual(p.provides, u.provides);
        assert.deepEqual(p.depends, u.depends);
        assert.deepEqual(p.clearsProvides, u.clears);
        assert.deepEqual(p.metaData, u.metadata);
      });
      // One payload per packed file and per state script; each stream yields exactly the bytes that were packed.
      assert.equal(a.payloads.length, want.updates.reduce((n, u) => n + u.files.length, 0) + want.scripts.length);
      assert.deepEqual(a.payloads.filter((p) => p.kind === 'script' && p.attributes.stateScript).map((p) => p.name), want.scripts.map((s) => `scripts/${s}`));
      for (const p of a.payloads) {
        const fileName = p.attributes.fileName as string;
        const original = await readFile(join(work, fileName));
        const chunks: Buffer[] = [];
        for await (const chunk of p.stream()) chunks.push(chunk as Buffer);
        assert.ok(Buffer.concat(chunks).equals(original), `${p.name} streams the packed file`);
        assert.equal(p.size, original.length);
      }
    } finally {
      await a.close();
    }
  });
}

test('compression per member: none, gzip and xz (64 MiB dictionary) as mender-artifact names them', { skip }, async () => {
  for (const [name, compression] of [
    ['rootfs-none', 'none'],
    ['rootfs-gzip', 'gzip'],
    ['rootfs-lzma', 'xz'],
  ]) {
    const members = sh('tar', ['-tf', art(name)]).trim().split('\n');
    assert.equal(members.at(-1), { none: 'data/0000.tar', gzip: 'data/0000.tar.gz', xz: 'data/0000.tar.xz' }[compression]);
    const a = await openArtifact(art(name), {});
    assert.equal((a.toJSON() as { payloads: { files: { compression: string }[] }[] }).payloads[0].files[0].compression, compression);
    await a.close();
  }
});

test('signature verdicts agree with mender-artifact validate -k', { skip }, async () => {
  const trials: [string, string | undefined][] = [
    ['signed-rsa', 'rsa.pub'],
    ['signed-rsa', 'ec.pub'],
    ['signed-ec', 'ec.pub'],
    ['signed-ec', 'other.pub'],
    ['signed-ec', 'rsa.pub'],
    ['signed-rsa-v2', 'rsa.pub'],
    ['signed-rsa-v2', 'other.pub'],
    ['augmented', 'ec.pub'],
    ['augmented', 'other.pub'],
    ['rootfs-gzip', 'rsa.pub'],
    ['rootfs-gzip', undefined],
    ['module-directory', undefined],
  ];
  for (const [name, key] of trials) {
    const peer = maValidate(art(name), key && join(work, key));
    const r = await runCli(['inspect', art(name), ...(key ? ['--key', join(work, key)] : []), '--json']);
    assert.equal(r.code === 0, peer, `${name} with ${key}: peer says ${peer ? 'valid' : 'invalid'}, we exited ${r.code}: ${r.stderr}`);
    const j = JSON.parse(r.stdout) as { verified: boolean | null };
    assert.equal(j.verified, key ? peer : null);
  }
  // The private key works as a verification key too (its public half is used); a missing key file is exit 2.
  assert.equal((await runCli(['inspect', art('signed-ec'), '--key', join(work, 'ec.key')])).code, 0);
  const missing = await runCli(['inspect', art('signed-ec'), '--key', join(work, 'nope.pem')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.pem: no such file/);
});

test('augmented artifact: merged type-info and meta-data, augment files flagged unauthenticated', { skip }, async () => {
  const a = await openArtifact(art('augmented'), { key: join(work, 'ec.pub') });
  try {
    assert.equal(a.verified, true);
    const run = a.payloads.find((p) => p.attributes.fileName === 'run.sh')!;
    assert.equal(run.attributes.augmented, true);
    assert.equal(a.payloads.find((p) => p.attributes.fileName === 'app.conf')!.attributes.augmented, false);
    assert.ok(a.warnings.some((w) => /data\/0000\/run\.sh .*unauthenticated/.test(w)));
    const meta = (a.toJSON() as { payloads: { metaData: Record<string, unknown> }[] }).payloads[0].metaData;
    assert.deepEqual(Object.keys(meta).sort(), ['answer', 'containers', 'list', 'nested']);
  } finally {
    await a.close();
  }
});

test('extract writes every payload file with the packed content', { skip }, async () => {
  const out = join(work, 'out-many');
  const r = await runCli(['extract', art('module-many-lzma'), '-o', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const names = (await readdir(join(out, 'data/0000'))).sort();
  assert.deepEqual(names, ['app.conf', 'rootfs.ext4', 'run.sh']);
  for (const n of names) assert.ok((await readFile(join(out, 'data/0000', n))).equals(await readFile(join(work, n))), n);
  await rm(out, { recursive: true });
});

test('directory module: update.tar is an archive whose tree lists the packed files', { skip }, async () => {
  const a = await openArtifact(art('module-directory'), {});
  try {
    const p = a.payloads.find((x) => x.attributes.fileName === 'update.tar')!;
    assert.equal(p.kind, 'archive');
    const tree = await p.tree!();
    const paths: string[] = [];
    for await (const e of tree.walk()) paths.push(e.path);
    await tree.close();
    assert.deepEqual(paths, ['/', '/app.conf', '/run.sh']);
  } finally {
    await a.close();
  }
});
