/**
 * Raw RSA (PKCS#1 v1.5 and PSS), GPG and encrypted sw-description. The Debian swupdate is a CMS build
 * without encrypted-description support, so openssl (dgst -verify, enc -d) is the independent truth here.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { needTool, sh, tempDir } from './helpers/env.ts';
import { cmsSign, inspect, makeCert, packSwu, sha256, writeFiles } from './helpers/swupdate.ts';

const skip = needTool('cpio') || needTool('openssl');

async function image(dir: string) {
  const s = await writeFiles(dir, { 'a.bin': 'payload\n' });
  await writeFile(join(dir, 'sw-description'), `software = { version = "7.0"; hardware-compatibility = ["1.0"];
  images = ( { filename = "a.bin"; device = "/dev/null"; sha256 = "${s['a.bin']}"; } ); };\n`);
  sh('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'key.pem'], { cwd: dir });
  sh('openssl', ['pkey', '-in', 'key.pem', '-pubout', '-out', 'pub.pem'], { cwd: dir });
  sh('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'other.pem'], { cwd: dir });
  sh('openssl', ['pkey', '-in', 'other.pem', '-pubout', '-out', 'other.pub'], { cwd: dir });
  return { pub: join(dir, 'pub.pem'), other: join(dir, 'other.pub') };
}

const pssOpts = ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:-2'];

test('RSA PKCS#1 v1.5 and RSA-PSS signatures are told apart and verified as openssl dgst verifies them', { skip }, async (t) => {
  const dir = await tempDir(t);
  const { pub, other } = await image(dir);
  for (const [type, opts] of [['rsa', []], ['pss', pssOpts]] as const) {
    sh('openssl', ['dgst', '-sha256', '-sign', 'key.pem', ...opts, '-out', 'sw-description.sig', 'sw-description'], { cwd: dir });
    // The independent verdict.
    assert.match(sh('openssl', ['dgst', '-sha256', '-verify', 'pub.pem', ...opts, '-signature', 'sw-description.sig', 'sw-description'], { cwd: dir }), /Verified OK/);
    const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'a.bin'], `${type}.swu`);
    const ok = await inspect(swu, ['--pubkey', pub]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(ok.doc.signature, { type, verified: true });
    const wrongKey = await inspect(swu, ['--pubkey', other]);
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /does not verify against sw-description\.sig with --pubkey/);
  }
  // Description altered after signing.
  const text = await readFile(join(dir, 'sw-description'), 'utf8');
  await writeFile(join(dir, 'sw-description'), text.replace('7.0', '7.1'));
  const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'a.bin'], 'tampered.swu');
  const r = await inspect(swu, ['--pubkey', pub]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /description was altered or signed with another key/);
});

test('GPG detached signature: a clear "not supported" (exit 2); --no-verify reads it unverified', { skip: skip || needTool('gpg') }, async (t) => {
  const dir = await tempDir(t);
  await image(dir);
  const home = join(dir, 'gnupg');
  await mkdir(home, { mode: 0o700 });
  const env = { GNUPGHOME: home };
  sh('gpg', ['--batch', '--quiet', '--passphrase', '', '--quick-gen-key', 'swu-test@example.org', 'rsa2048', 'sign', '1d'], { env });
  sh('gpg', ['--batch', '--quiet', '--yes', '--detach-sig', '--output', 'sw-description.sig', 'sw-description'], { cwd: dir, env });
  const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'a.bin']);
  const refused = await inspect(swu, ['--ca', join(dir, 'pub.pem')]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /OpenPGP \(GPG\) signature, which pvmigrate cannot verify/);
  const unverified = await inspect(swu, ['--no-verify']);
  assert.equal(unverified.code, 0, unverified.stderr);
  assert.deepEqual(unverified.doc.signature, { type: 'gpg', verified: null });
  assert.equal(unverified.doc.verified, null);
});

test('encrypted sw-description: decrypted with --aes-key, CMS signature over the plaintext', { skip }, async (t) => {
  const dir = await tempDir(t);
  await image(dir);
  const key = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
  const iv = 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf';
  await writeFile(join(dir, 'aes.key'), `${key} ${iv}\n`);
  const signer = makeCert(dir, 'signer');
  cmsSign(dir, signer); // over the plaintext, as swupdate verifies after decrypting
  sh('openssl', ['enc', '-aes-256-cbc', '-K', key, '-iv', iv, '-nosalt', '-in', 'sw-description', '-out', 'sw-description.enc'], { cwd: dir });
  const plain = await readFile(join(dir, 'sw-description'));
  // openssl's own decryption gives back the plaintext: the truth our decryption must match.
  assert.ok(Buffer.from(sh('openssl', ['enc', '-d', '-aes-256-cbc', '-K', key, '-iv', iv, '-nosalt', '-in', 'sw-description.enc'], { cwd: dir })).equals(plain));
  await writeFile(join(dir, 'sw-description'), await readFile(join(dir, 'sw-description.enc')));
  const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'a.bin']);
  const r = await inspect(swu, ['--ca', signer.cert, '--aes-key', join(dir, 'aes.key')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.doc.descriptionEncrypted, true);
  assert.equal(r.doc.version, '7.0');
  assert.equal(r.doc.verified, true);
  const noKey = await inspect(swu, ['--ca', signer.cert]);
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /sw-description is binary, so it is encrypted: pass --aes-key FILE/);
});

test('CMS EnvelopedData sw-description (swupdate 2025.12): decrypted with --decrypt-key, artifacts with their own aes-key', { skip }, async (t) => {
  const dir = await tempDir(t);
  const original = Buffer.from('asymmetrically delivered payload\n'.repeat(500));
  await writeFile(join(dir, 'plain.bin'), original);
  const key = 'aa'.repeat(32);
  const ivt = 'bb'.repeat(16);
  sh('openssl', ['enc', '-aes-256-cbc', '-K', key, '-iv', ivt, '-nosalt', '-in', 'plain.bin', '-out', 'a.enc'], { cwd: dir });
  const stored = sha256(await readFile(join(dir, 'a.enc')));
  await writeFile(join(dir, 'sw-description'), `software = { version = "9.0"; images = (
    { filename = "a.enc"; device = "/dev/null"; encrypted = "aes-cbc-256"; aes-key = "${key}"; ivt = "${ivt}"; sha256 = "${stored}"; } ); };\n`);
  const plain = await readFile(join(dir, 'sw-description'));
  const signer = makeCert(dir, 'signer');
  cmsSign(dir, signer);
  const device = makeCert(dir, 'device');
  sh('openssl', ['cms', '-encrypt', '-aes-256-cbc', '-binary', '-in', 'sw-description', '-outform', 'DER', '-recip', device.cert, '-out', 'sw-description.cms'], { cwd: dir });
  // openssl's decryption is the truth ours must reproduce.
  const back = sh('openssl', ['cms', '-decrypt', '-binary', '-inform', 'DER', '-in', 'sw-description.cms', '-inkey', device.key], { cwd: dir });
  assert.equal(back, plain.toString());
  await writeFile(join(dir, 'sw-description'), await readFile(join(dir, 'sw-description.cms')));
  const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'a.enc']);
  const r = await inspect(swu, ['--ca', signer.cert, '--decrypt-key', device.key]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.doc.descriptionEncrypted, true);
  assert.equal(r.doc.verified, true);
  assert.deepEqual([r.doc.payloads[0].size, r.doc.payloads[0].sha256], [original.length, sha256(original)]);
  const noKey = await inspect(swu, ['--ca', signer.cert]);
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /CMS EnvelopedData .*pass --decrypt-key PEM/);
});
