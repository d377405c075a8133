// Verdicts on the public corpus (as corpus/SOURCES.md states them) and on tampered artifacts
// (each must exit 1 with a message naming what is wrong, where mender-artifact validate also refuses).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { corpus, corpusSkip, needTool, sh, tempDir } from './helpers/env.ts';
import type { MenderJson } from './helpers/mender.ts';

const skipTools = needTool('mender-artifact') || needTool('tar');
/** Corpus files the verdict test names; a file added to the corpus must be given its verdict here. */
const judged = new Set<string>();
const M = (name: string): string => {
  judged.add(name);
  return corpus('mender', name);
};

async function inspect(file: string, key?: string): Promise<{ code: number; json?: MenderJson; stderr: string }> {
  const r = await runCli(['inspect', file, ...(key ? ['--key', key] : []), '--json']);
  return { code: r.code, json: r.stdout ? (JSON.parse(r.stdout) as MenderJson) : undefined, stderr: r.stderr };
}

/** sha256 of each payload file as GNU tar extracts it: the independent check of our hashes. */
function tarHashes(file: string, dataMember: string): Record<string, string> {
  const inner = spawnSync('tar', ['-xOf', file, dataMember], { maxBuffer: 1 << 28 }).stdout;
  const flag = dataMember.endsWith('.gz') ? ['-z'] : [];
  const names = spawnSync('tar', [...flag, '-t'], { input: inner }).stdout.toString().split('\n').filter(Boolean);
  const out: Record<string, string> = {};
  for (const n of names) out[n] = createHash('sha256').update(spawnSync('tar', [...flag, '-xO', n], { input: inner, maxBuffer: 1 << 28 }).stdout).digest('hex');
  return out;
}

function peerValid(file: string, key?: string): boolean {
  return spawnSync('mender-artifact', ['validate', ...(key ? ['-k', key] : []), file]).status === 0;
}

test('corpus: every public artifact gives the verdict and facts SOURCES.md states', { skip: corpusSkip || skipTools }, async (ctx) => {
  const cli = await inspect(M('mender-artifact__cli_artifact.mender'));
  assert.equal(cli.code, 0, cli.stderr);
  const c = cli.json!;
  assert.equal(c.name, 'testName');
  assert.equal(c.provides.artifact_group, 'testGroupProvide');
  assert.deepEqual(c.depends, { artifact_name: ['testNameDepends1', 'testNameDepends2'], device_type: ['mydevice'], artifact_group: ['testGroupDepends1', 'testGroupDepends2'] });
  assert.equal(c.payloads[0].type, 'rootfs-image', 'type-info "type":"" takes the type from header-info');
  assert.deepEqual(c.payloads[0].files.map((f) => [f.name, f.size, f.sha256]), [['update.ext4', 9, 'bfb4567944c5730face9f3d54efc0c1ff3b5dd1338862b23b849ac87679e162f']]);
  assert.equal(c.payloads[0].metaData, null);
  assert.equal(c.payloads[0].provides.testProvideKey1, 'testProvideValue1');
  assert.equal(c.payloads[0].depends.testDependKey1, 'testDependValue1');

  const nitro = M('mender-artifact__tests_data_a0-signed-nitro.mender');
  const ec = M('mender-artifact__tests_data_ec.pem');
  const signedNoKey = await inspect(nitro);
  assert.equal(signedNoKey.code, 0);
  assert.deepEqual([signedNoKey.json!.signed, signedNoKey.json!.verified], [true, null]);
  // The DER-encoded ECDSA signature verifies (mender-artifact 3.9 cannot: "invalid ecdsa key size: 70").
  const signed = await inspect(nitro, ec);
  assert.equal(signed.code, 0, signed.stderr);
  assert.equal(signed.json!.verified, true);
  assert.equal(signed.json!.name, 'a0');
  assert.deepEqual(signed.json!.depends.device_type, ['raspberrypi5']);
  assert.deepEqual(signed.json!.payloads[0].files.map((f) => [f.name, f.size]), [['empty-file', 0]]);
  // OpenSSL agrees: the base64 manifest.sig is a DER signature over the manifest bytes.
  const dir = await tempDir(ctx);
  await writeFile(join(dir, 'manifest'), spawnSync('tar', ['-xOf', nitro, 'manifest']).stdout);
  await writeFile(join(dir, 'sig'), Buffer.from(spawnSync('tar', ['-xOf', nitro, 'manifest.sig']).stdout.toString(), 'base64'));
  assert.match(sh('openssl', ['dgst', '-sha256', '-verify', ec, '-signature', join(dir, 'sig'), join(dir, 'manifest')]), /Verified OK/);
  // A wrong key for it is a failed verification (exit 1), not an error.
  const wrong = await inspect(nitro, join(dir, 'nope.pub'));
  assert.equal(wrong.code, 2, 'a missing key file is an environment error');

  const t = (await inspect(M('mender-cli__tests_acceptance_data_test.mender'))).json!;
  assert.deepEqual([t.name, t.depends.device_type, t.payloads[0].type], ['test', ['test'], 'rootfs-image']);
  assert.deepEqual(t.payloads[0].files.map((f) => [f.name, f.size, f.sha256]), [['test', 0, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']]);

  const date = (await inspect(M('mender-server__backend_tests_data_date.mender'))).json!;
  assert.equal(date.payloads[0].type, 'single-file');
  assert.deepEqual(date.depends.device_type, ['qemux86-64', 'docker-client']);
  assert.deepEqual(date.payloads[0].files.map((f) => f.name), ['dest_dir', 'filename', 'permissions', 'date.created']);
  assert.deepEqual(date.payloads[0].provides, {});

  const dump = (await inspect(M('mender-server__backend_tests_data_test-artifact.mender'))).json!;
  assert.equal(dump.payloads[0].type, 'rootfs-image-v2');
  assert.deepEqual(dump.payloads[0].files.map((f) => [f.name, f.size]), [['dump', 512000]]);

  const out = (await inspect(M('mender-server__deployments_tests_out.mender'))).json!;
  assert.equal(out.payloads[0].type, 'mender-configure');
  assert.deepEqual(out.payloads[0].metaData, { baz: 'qux', foo: 'bar' });
  assert.deepEqual(out.payloads[0].provides, { 'data-partition.mender-configure.version': 'bar' });
  assert.deepEqual(out.payloads[0].files, []);

  // Our payload hashes equal what GNU tar extracts, for every corpus artifact.
  for (const [name, json] of [
    ['mender-artifact__cli_artifact.mender', c],
    ['mender-cli__tests_acceptance_data_test.mender', t],
    ['mender-server__backend_tests_data_date.mender', date],
    ['mender-server__backend_tests_data_test-artifact.mender', dump],
    ['mender-artifact__tests_data_a0-signed-nitro.mender', signed.json!],
  ] as const) {
    const ours = Object.fromEntries(json.payloads[0].files.map((f) => [f.name, f.sha256]));
    assert.deepEqual(ours, tarHashes(M(name), 'data/0000.tar.gz'), name);
  }
  assert.deepEqual((await readdir(corpus('mender'))).filter((f) => !judged.has(f)), [], 'corpus files without a verdict in this test');
});

/** A valid artifact made for tampering, plus its members extracted for rebuilding in another order or shape. */
async function fixture(t: Parameters<typeof tempDir>[0]): Promise<{ dir: string; plain: string; gz: string; signed: string; members: string; rootfs: Buffer }> {
  const dir = await tempDir(t);
  const rootfs = Buffer.alloc(200_000);
  for (let i = 0; i < rootfs.length; i += 32) createHash('sha256').update(String(i)).digest().copy(rootfs, i);
  await writeFile(join(dir, 'rootfs.ext4'), rootfs);
  const plain = join(dir, 'plain.mender');
  const gz = join(dir, 'gz.mender');
  const signed = join(dir, 'signed.mender');
  sh('mender-artifact', ['write', 'rootfs-image', '-f', 'rootfs.ext4', '-n', 'r1', '-t', 'dev', '--compression', 'none', '-o', plain], { cwd: dir });
  sh('mender-artifact', ['write', 'rootfs-image', '-f', 'rootfs.ext4', '-n', 'r1', '-t', 'dev', '-o', gz], { cwd: dir });
  sh('openssl', ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', join(dir, 'ec.key')]);
  sh('openssl', ['pkey', '-in', join(dir, 'ec.key'), '-pubout', '-out', join(dir, 'ec.pub')]);
  sh('openssl', ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', join(dir, 'other.key')]);
  sh('openssl', ['pkey', '-in', join(dir, 'other.key'), '-pubout', '-out', join(dir, 'other.pub')]);
  sh('mender-artifact', ['write', 'rootfs-image', '-f', 'rootfs.ext4', '-n', 'r1', '-t', 'dev', '-k', 'ec.key', '-o', signed], { cwd: dir });
  const members = join(dir, 'members');
  await mkdir(members);
  sh('tar', ['-xf', gz, '-C', members]);
  return { dir, plain, gz, signed, members, rootfs };
}

/** An outer tar of `names` (taken from `members`) in exactly that order, written by GNU tar as ustar. */
function rebuild(members: string, names: string[], out: string): string {
  sh('tar', ['--format=ustar', '--owner=0', '--group=0', '-cf', out, '-C', members, ...names]);
  return out;
}

async function mutate(src: string, out: string, f: (b: Buffer) => void): Promise<string> {
  const b = await readFile(src);
  f(b);
  await writeFile(out, b);
  return out;
}

/** Exit 1 with `pattern` in the message; mender-artifact 3.9 must refuse it too unless `peer3_9Accepts`. */
async function refused(file: string, pattern: RegExp, key?: string, peer3_9Accepts = false): Promise<void> {
  const r = await runCli(['inspect', file, ...(key ? ['--key', key] : [])]);
  assert.equal(r.code, 1, `${file}: expected exit 1, got ${r.code}\n${r.stdout}${r.stderr}`);
  assert.match(r.stderr + r.stdout, pattern);
  assert.equal(peerValid(file, key), peer3_9Accepts, `mender-artifact 3.9 validate ${peer3_9Accepts ? 'accepts' : 'also refuses'} ${file}`);
}

test('tampered artifacts exit 1 with a message saying what is wrong', { skip: skipTools }, async (t) => {
  const f = await fixture(t);
  const out = (n: string): string => join(f.dir, n);
  assert.equal((await runCli(['inspect', f.plain])).code, 0);

  // A payload byte flipped: stored data → the manifest checksum of the file fails.
  await refused(
    await mutate(f.plain, out('payload.mender'), (b) => {
      b[b.indexOf(f.rootfs.subarray(0, 64)) + 150_000] ^= 1;
    }),
    /'data\/0000\/rootfs\.ext4' fails its manifest checksum/,
  );
  // …and inside a gzip stream: the decoder or the checksum fails, naming the member.
  await refused(
    await mutate(f.gz, out('payload-gz.mender'), (b) => {
      const at = b.indexOf(Buffer.from('data/0000.tar.gz')) + 512 + 50_000;
      b[at] ^= 0x10;
    }),
    /data\/0000(\.tar\.gz|\/rootfs\.ext4)/,
  );
  // A manifest byte flipped (one hex digit of the header's sum).
  await refused(
    await mutate(f.gz, out('manifest.mender'), (b) => {
      const line = b.indexOf(Buffer.from('  header.tar.gz'));
      b[line - 1] = b[line - 1] === 0x30 ? 0x31 : 0x30;
    }),
    /'header\.tar\.gz' fails its manifest checksum/,
  );
  // The same on a signed artifact, checked with the right key: the signature no longer verifies either.
  await refused(
    await mutate(f.signed, out('manifest-signed.mender'), (b) => {
      const line = b.indexOf(Buffer.from('  version'));
      b[line - 1] = b[line - 1] === 0x30 ? 0x31 : 0x30;
    }),
    /'version' fails its manifest checksum/,
    join(f.dir, 'ec.pub'),
  );
  // Wrong key; and a key for an unsigned artifact.
  await refused(f.signed, /manifest\.sig does not verify with the given ECDSA key/, join(f.dir, 'other.pub'));
  await refused(f.gz, /not signed \(no manifest\.sig\) but --key was given/, join(f.dir, 'ec.pub'));

  // A manifest missing the payload's entry, and one missing the header's.
  const manifest = await readFile(join(f.members, 'manifest'), 'utf8');
  const variants = join(f.dir, 'variants');
  for (const [drop, pattern] of [
    ['data/0000/rootfs.ext4', /'data\/0000\/rootfs\.ext4' is not listed in the manifest/],
    ['header.tar.gz', /'header\.tar\.gz' is not listed in the manifest/],
  ] as const) {
    await mkdir(variants, { recursive: true });
    sh('cp', ['-r', `${f.members}/.`, variants]);
    await writeFile(join(variants, 'manifest'), manifest.split('\n').filter((l) => !l.endsWith(`  ${drop}`)).join('\n'));
    await refused(rebuild(variants, ['version', 'manifest', 'header.tar.gz', 'data/0000.tar.gz'], out(`nolist-${drop.replace(/\W/g, '')}.mender`)), pattern);
  }
  // A manifest without its final newline loses its last line, as in mender-artifact (there: 'version').
  await writeFile(join(variants, 'manifest'), manifest.replace(/\n$/, ''));
  await refused(rebuild(variants, ['version', 'manifest', 'header.tar.gz', 'data/0000.tar.gz'], out('nonewline.mender')), /'version' is not listed in the manifest/);
  // A manifest entry whose file is not in the artifact.
  await writeFile(join(variants, 'manifest'), manifest + `${'0'.repeat(64)}  data/0000/ghost.img\n`);
  await refused(rebuild(variants, ['version', 'manifest', 'header.tar.gz', 'data/0000.tar.gz'], out('ghost.mender')), /listed in the manifest are not in the artifact: data\/0000\/ghost\.img/);

  // Members out of order, a missing header, an unknown trailing member.
  await refused(rebuild(f.members, ['version', 'manifest', 'data/0000.tar.gz', 'header.tar.gz'], out('order.mender')), /wrong member order: found 'data\/0000\.tar\.gz' after \[version, manifest\]/);
  await refused(rebuild(f.members, ['version', 'manifest', 'data/0000.tar.gz'], out('noheader.mender')), /wrong member order: found 'data\/0000\.tar\.gz'/);
  await writeFile(join(f.members, 'extra'), 'x');
  await refused(rebuild(f.members, ['version', 'manifest', 'header.tar.gz', 'data/0000.tar.gz', 'extra'], out('extra.mender')), /unexpected member 'extra'/);

  // Format version 1 is refused by name.
  await mkdir(join(f.dir, 'v1'));
  await writeFile(join(f.dir, 'v1', 'version'), '{"format":"mender","version":1}');
  await writeFile(join(f.dir, 'v1', 'header.tar.gz'), '');
  const v1 = rebuild(join(f.dir, 'v1'), ['version', 'header.tar.gz'], out('v1.mender'));
  const r1 = await runCli(['inspect', v1]);
  assert.equal(r1.code, 1);
  assert.match(r1.stderr, /format version 1 is no longer supported/);
});

test('truncated artifacts exit 1 at every cut, never hang', { skip: skipTools }, async (t) => {
  const f = await fixture(t);
  const whole = await readFile(f.gz);
  const dataAt = whole.indexOf(Buffer.from('data/0000.tar.gz'));
  const cuts = [1100, 1536 + 100, 2048 + 20, dataAt - 10, dataAt + 512 + 1000, whole.length - 1024 - 600];
  // Cut exactly before the end-of-archive blocks: Go's tar (so mender-artifact) takes that as a clean end;
  // we refuse it, since a missing end marker is how a truncated download looks.
  const atEnd = join(f.dir, 'cut-end.mender');
  await writeFile(atEnd, whole.subarray(0, whole.length - 1024));
  const e = await runCli(['inspect', atEnd]);
  assert.equal(e.code, 1);
  assert.match(e.stderr, /without its end-of-archive marker/);
  for (const cut of cuts) {
    const file = join(f.dir, `cut-${cut}.mender`);
    await writeFile(file, whole.subarray(0, cut));
    const r = await runCli(['inspect', file]);
    assert.equal(r.code, 1, `cut at ${cut}: ${r.stderr}`);
    assert.match(r.stderr, /truncated|ends (at|after|early|inside)|unexpected end|end of data|missing/, `cut at ${cut}: ${r.stderr}`);
    assert.equal(peerValid(file), false, `mender-artifact also refuses the cut at ${cut}`);
  }
});

test('zstd and xz members are read by their suffix (mender-artifact ≥ 3.10 writes .zst)', { skip: skipTools || needTool('zstd') || needTool('xz') }, async (t) => {
  const f = await fixture(t);
  const m = f.members;
  sh('gzip', ['-dk', join(m, 'header.tar.gz'), join(m, 'data/0000.tar.gz')]);
  sh('zstd', ['-q', '-19', join(m, 'header.tar'), '-o', join(m, 'header.tar.zst')]);
  sh('zstd', ['-q', join(m, 'data/0000.tar'), '-o', join(m, 'data/0000.tar.zst')]);
  sh('xz', ['-k', '-9', join(m, 'header.tar')]);
  sh('xz', ['-k', join(m, 'data/0000.tar')]);
  const manifest = await readFile(join(m, 'manifest'), 'utf8');
  for (const ext of ['.zst', '.xz']) {
    const headerSum = createHash('sha256').update(await readFile(join(m, `header.tar${ext}`))).digest('hex');
    await writeFile(join(m, 'manifest'), manifest.replace(/^[0-9a-f]{64} {2}header\.tar\.gz$/m, `${headerSum}  header.tar${ext}`));
    const file = rebuild(m, ['version', 'manifest', `header.tar${ext}`, `data/0000.tar${ext}`], join(f.dir, `re${ext}.mender`));
    const r = await inspect(file);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json!.payloads[0].files.map((x) => [x.name, x.size, x.compression]), [['rootfs.ext4', f.rootfs.length, ext === '.zst' ? 'zstd' : 'xz']]);
    assert.equal(r.json!.payloads[0].files[0].sha256, createHash('sha256').update(f.rootfs).digest('hex'));
  }
});

test('a payload stream re-verifies: bytes changed after open fail the stream instead of passing through', { skip: skipTools }, async (t) => {
  const f = await fixture(t);
  const { openArtifact } = await import('../importers/open.ts');
  const a = await openArtifact(f.plain, {});
  try {
    const b = await readFile(f.plain);
    b[b.indexOf(f.rootfs.subarray(0, 64)) + 1000] ^= 1;
    await writeFile(f.plain, b);
    let err: Error | undefined;
    try {
      for await (const _ of a.payloads[0].stream());
    } catch (e) {
      err = e as Error;
    }
    assert.match(String(err?.message), /'data\/0000\/rootfs\.ext4' changed since it was verified/);
  } finally {
    await a.close();
  }
});

test('header rules: type-info must agree with header-info, device_type is required, unknown files and keys are refused', { skip: skipTools }, async (t) => {
  const f = await fixture(t);
  const manifest = await readFile(join(f.members, 'manifest'), 'utf8');
  const original = join(f.dir, 'header');
  await mkdir(original);
  sh('tar', ['-xzf', join(f.members, 'header.tar.gz'), '-C', original]);
  const info = JSON.parse(await readFile(join(original, 'header-info'), 'utf8')) as Record<string, unknown>;
  const typeInfo = JSON.parse(await readFile(join(original, 'headers/0000/type-info'), 'utf8')) as Record<string, unknown>;

  /** The fixture with its header files replaced, re-gzipped and re-listed in the manifest. */
  async function withHeader(name: string, files: Record<string, string>): Promise<string> {
    const dir = join(f.dir, `h-${name}`);
    sh('cp', ['-r', f.members, dir]);
    const h = join(dir, 'h');
    sh('cp', ['-r', original, h]);
    for (const [p, text] of Object.entries(files)) {
      await mkdir(join(h, p, '..'), { recursive: true });
      await writeFile(join(h, p), text);
    }
    const order = ['header-info', ...Object.keys(files).filter((p) => p.startsWith('scripts/')), 'headers/0000/type-info', 'headers/0000/meta-data', ...Object.keys(files).filter((p) => /^headers\/0000\/(?!type-info|meta-data)/.test(p))];
    sh('sh', ['-c', `tar --format=ustar -cf - -C "${h}" ${order.join(' ')} | gzip -n > "${join(dir, 'header.tar.gz')}"`]);
    const sum = createHash('sha256').update(await readFile(join(dir, 'header.tar.gz'))).digest('hex');
    await writeFile(join(dir, 'manifest'), manifest.replace(/^[0-9a-f]{64} {2}header\.tar\.gz$/m, `${sum}  header.tar.gz`));
    return rebuild(dir, ['version', 'manifest', 'header.tar.gz', 'data/0000.tar.gz'], join(f.dir, `h-${name}.mender`));
  }

  // Control: the rebuilt header alone changes nothing.
  assert.equal((await inspect(await withHeader('same', {}))).code, 0);
  // 3.9 ignores the type-info type (its "type":"" quirk); 4.3.1+ refuses a mismatch, as we do.
  await refused(await withHeader('type', { 'headers/0000/type-info': JSON.stringify({ ...typeInfo, type: 'single-file' }) }), /type-info says type 'single-file' but header-info lists 'rootfs-image'/, undefined, true);
  await refused(await withHeader('nodev', { 'header-info': JSON.stringify({ ...info, artifact_depends: {} }) }), /header-info artifact_depends has no device_type/);
  await refused(await withHeader('key', { 'header-info': JSON.stringify({ ...info, surprise: 1 }) }), /header-info has the unknown key 'surprise'/);
  await refused(await withHeader('file', { 'headers/0000/unexpected': '{}' }), /unsupported file 'headers\/0000\/unexpected'/);
  await refused(await withHeader('meta', { 'headers/0000/meta-data': '[1,2]' }), /meta-data\) must be a JSON object/);
  // A state script is reported by name.
  const s = await inspect(await withHeader('script', { 'scripts/ArtifactCommit_Leave_50_cleanup': '#!/bin/sh\n' }));
  assert.equal(s.code, 0, s.stderr);
  assert.deepEqual((s.json as unknown as { scripts: string[] }).scripts, ['ArtifactCommit_Leave_50_cleanup']);
});
