/** Every file of the shared corpus's swupdate/ directory gives the verdict SOURCES.md states. */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { corpus, corpusSkip, sh, tempDir } from './helpers/env.ts';
import { inspect, sha256 } from './helpers/swupdate.ts';

const c = (name: string) => corpus('swupdate', name);
const TEST_FILE = sha256('THIS IS A TEST UPDATE FILE\n');
/** sbabic/swugenerator:tests/test_integration.py VALID_KEY (SOURCES.md). */
const SWUGEN_KEY = '390ad54490a4a5f53722291023c19e08ffb5c4677a59e958c96ffa6e641df040';

async function keys(t: import('node:test').TestContext) {
  const dir = await tempDir(t);
  const pubkey = join(dir, 'pub.pem');
  await writeFile(pubkey, sh('openssl', ['pkey', '-in', c('swugenerator__private.pem'), '-pubout']));
  const aesKey = join(dir, 'aes.key');
  // The entries carry their own ivt; the key file's IV is not used for them.
  await writeFile(aesKey, `${SWUGEN_KEY} ${'00'.repeat(16)}\n`);
  return { pubkey, aesKey };
}

test('swugenerator output.swu: crc, unsigned, 10 artifacts, hardware 1.0/1.2/1.3, partitions, fpga reported, gzip member decodes', { skip: corpusSkip }, async () => {
  const r = await inspect(c('swugenerator__output.swu'));
  assert.equal(r.code, 0, r.stderr);
  const d = r.doc;
  assert.equal(d.cpioFormat, 'crc');
  assert.equal(d.signed, false);
  assert.equal(d.signature, null);
  assert.equal(d.verified, null);
  assert.equal(d.payloads.length, 10);
  assert.deepEqual(d.hardwareCompatibility, ['1.0', '1.2', '1.3']);
  assert.deepEqual(d.partitions, [{ name: 'rootfs', device: 'mtd4', size: 104896512 }, { name: 'data', device: 'mtd5', size: 50448384 }]);
  assert.ok(d.warnings.some((w: string) => /fpga\.txt: handler 'fpga'/.test(w)));
  const sd = d.payloads.find((p: { name: string }) => p.name === 'sdcard.ext3.gz.zlib');
  assert.equal(sd.compressed, 'zlib');
  assert.equal(sd.sha256, TEST_FILE);
  assert.equal(sd.storedSha256, '5600648eb4860edcc911f5eed62437d405e47c161bf6b12346f4a1dfefb3f05e');
  assert.deepEqual(d.bootenv, { vram: '4M', addfb: 'setenv bootargs ${bootargs} omapfb.vram=1:2M,2:2M,3:2M omapdss.def_disp=lcd' });
});

test('swugenerator signed_output.swu: RSA PKCS#1 v1.5 verifies with the public key; unverifiable without it', { skip: corpusSkip }, async (t) => {
  const { pubkey } = await keys(t);
  const r = await inspect(c('swugenerator__signed_output.swu'), ['--pubkey', pubkey]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.doc.signature, { type: 'rsa', verified: true });
  assert.equal(r.doc.verified, true);
  assert.equal(r.doc.payloads.length, 10);
  const noKey = await inspect(c('swugenerator__signed_output.swu'));
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /raw 2048-bit RSA signature: pass --pubkey/);
  // A CMS trust anchor cannot verify a raw RSA signature: swupdate's CMS build fails the same way.
  const skipped = await inspect(c('swugenerator__signed_output.swu'), ['--no-verify']);
  assert.equal(skipped.code, 0);
  assert.equal(skipped.doc.verified, null);
});

test('swugenerator output.swu.enc and signed_output.swu.enc: AES-256-CBC with per-entry ivt decrypts to the test text', { skip: corpusSkip }, async (t) => {
  const { pubkey, aesKey } = await keys(t);
  const plain = await inspect(c('swugenerator__output.swu.enc'), ['--aes-key', aesKey]);
  const signed = await inspect(c('swugenerator__signed_output.swu.enc'), ['--aes-key', aesKey, '--pubkey', pubkey]);
  for (const r of [plain, signed]) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.doc.payloads.length, 10);
    for (const p of r.doc.payloads) {
      assert.equal(p.encrypted, true, p.name);
      assert.match(p.ivt, /^[0-9a-f]{32}$/);
      // rootfs.ubifs.enc → the text; sdcard.ext3.gz.zlib.enc → gzip of it, decompressed after decryption.
      assert.equal(p.sha256, TEST_FILE, p.name);
    }
  }
  assert.equal(plain.doc.signed, false);
  assert.deepEqual(signed.doc.signature, { type: 'rsa', verified: true });
});

test('goosebit e2e updates: files and shellscript entries with matching sha256', { skip: corpusSkip }, async () => {
  for (const [name, version] of [['goosebit__e2e_update.swu', '1.0.0'], ['goosebit__e2e_update-v1.1.0.swu', '1.1.0']]) {
    const r = await inspect(c(name));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.doc.version, version);
    assert.equal(r.doc.reboot, false);
    assert.deepEqual(r.doc.hardwareCompatibility, ['0.1.0', '1.0.0']);
    const [script, post] = r.doc.payloads;
    assert.deepEqual([script.name, script.section, script.path], ['myscript.py', 'files', '/usr/local/bin/myscript.py']);
    assert.deepEqual([post.name, post.section, post.type], ['postinstall.sh', 'scripts', 'shellscript']);
    assert.equal(script.sha256, script.storedSha256);
    assert.equal(post.sha256, post.storedSha256);
  }
});

test('goosebit software headers: truncated signature member is reported as truncated', { skip: corpusSkip }, async () => {
  for (const name of ['goosebit__software-header.swu', 'goosebit__software-header-2.swu']) {
    const r = await runCli(['inspect', c(name), '--json']);
    assert.equal(r.code, 1, name);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /cpio member 'sw-description\.sig' declares 2088 bytes .* truncated archive/);
  }
});

test('Azure ADU file copy: unsigned, no sha256 (reported), preinstall script', { skip: corpusSkip }, async () => {
  const r = await inspect(c('azure-adu__du-agent-swupdate-filecopy-test-1_1.0.swu'));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.doc.payloads.map((p: { name: string; type: string }) => [p.name, p.type]), [
    ['mock-update-for-file-copy-test-1.txt', 'rawfile'],
    ['preinst.sh', 'preinstall'],
  ]);
  assert.ok(r.doc.warnings.some((w: string) => /mock-update-for-file-copy-test-1\.txt has no sha256/.test(w)));
  assert.equal(r.doc.payloads[0].storedSha256, null);
});

test('Azure placeholder (not cpio): refused with a clear error', { skip: corpusSkip }, async () => {
  const r = await runCli(['inspect', c('azure-adu__my-update.swu.placeholder-not-cpio')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /placeholder-not-cpio: not a Mender artifact, RAUC bundle or SWUpdate image/);
});
