import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { raucInfo } from '../samples/rauc/fixtures.ts';
import { runCli } from './helpers/cli.ts';
import { corpus, corpusSkip, needTool, tempDir } from './helpers/env.ts';

/** Every public RAUC bundle gives the verdict SOURCES.md states, and the content `rauc info` shows. */
const dir = corpus('rauc');
const keyring = corpus('rauc', 'dev-ca.pem');
const rsaKey = corpus('rauc', 'test-only-keys', 'rsa-4096-private-key-000.pem');
const ecKey = corpus('rauc', 'test-only-keys', 'ecc-private-key-000.pem');
const skip = corpusSkip || needTool('rauc');

interface Inspect {
  bundleFormat: string;
  compatible: string;
  version: string | null;
  verified: boolean | null;
  signer: { subject: string; chain: { subject: string }[] } | null;
  payloads: { name: string; slotClass: string; variant: string | null; type: string; size: number; sha256: string }[];
  meta: Record<string, Record<string, string>>;
}

async function inspect(file: string, ...flags: string[]): Promise<{ code: number; json?: Inspect; stderr: string }> {
  const r = await runCli(['inspect', file, '--json', ...flags]);
  return { code: r.code, json: r.code === 0 ? (JSON.parse(r.stdout) as Inspect) : undefined, stderr: r.stderr };
}

function sameAsRaucInfo(ours: Inspect, file: string, raucArgs: string[]): void {
  const info = raucInfo(file, raucArgs);
  assert.equal(info.code, 0, info.stderr);
  assert.equal(ours.compatible, info.compatible);
  assert.equal(ours.version, info.version);
  assert.deepEqual(
    ours.payloads.map((p) => ({ slotClass: p.slotClass, variant: p.variant, filename: p.name, sha256: p.sha256, size: p.size })),
    info.images,
  );
}

describe('RAUC corpus bundles', { skip }, () => {
  const expected: Record<string, { format: string; signer: string; flags?: string[] }> = {
    'good-bundle.raucb': { format: 'plain', signer: 'O = Test Org, CN = Test Org Release-1' },
    'good-verity-bundle.raucb': { format: 'verity', signer: 'O = Test Org, CN = Test Org Release-1' },
    'good-adaptive-meta-bundle.raucb': { format: 'verity', signer: 'O = Test Org, CN = Test Org Release-1' },
    'good-casync-bundle-1.4.raucb': { format: 'plain', signer: 'O = Test Org, CN = Test Org Release-1' },
    'good-casync-bundle-1.5.1.raucb': { format: 'plain', signer: 'O = Test Org, CN = Test Org Release-1' },
    'good-casync-bundle-verity.raucb': { format: 'verity', signer: 'O = Test Org, CN = Test Org Release-1' },
    'good-crypt-bundle-unencrypted.raucb': { format: 'crypt', signer: 'O = Test Org, CN = Test Org Autobuilder-1' },
  };

  test('the corpus holds exactly the bundles this test knows', () => {
    const found = readdirSync(dir).filter((f) => f.endsWith('.raucb')).sort();
    assert.deepEqual(found, [...Object.keys(expected), 'good-crypt-bundle-encrypted.raucb', 'invalid-sig-bundle.raucb'].sort());
  });

  for (const [name, exp] of Object.entries(expected)) {
    test(`${name}: verifies against dev-ca.pem as ${exp.format}, content as rauc info shows it`, async () => {
      const r = await inspect(join(dir, name), '--keyring', keyring);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json!.bundleFormat, exp.format);
      assert.equal(r.json!.verified, true);
      assert.equal(r.json!.signer!.subject, exp.signer);
      assert.equal(r.json!.signer!.chain.at(-1)!.subject, 'O = Test Org, CN = Test Org Provisioning CA Root');
      sameAsRaucInfo(r.json!, join(dir, name), [`--keyring=${keyring}`]);
    });
  }

  test('invalid-sig-bundle.raucb is rejected as rauc rejects it (content verify error), exit 1', async () => {
    const file = join(dir, 'invalid-sig-bundle.raucb');
    assert.equal(raucInfo(file, [`--keyring=${keyring}`]).code, 1);
    const r = await inspect(file, '--keyring', keyring);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid-sig-bundle\.raucb: signature verification failed: the signed content digest does not match/);
    assert.equal((await runCli(['inspect', file, '--json', '--keyring', keyring])).stdout, '');
  });

  for (const [label, key] of [['RSA', rsaKey], ['EC', ecKey]] as const) {
    test(`good-crypt-bundle-encrypted.raucb decrypts with the ${label} test key and agrees with rauc info --key`, async () => {
      const file = join(dir, 'good-crypt-bundle-encrypted.raucb');
      const r = await inspect(file, '--keyring', keyring, '--decrypt-key', key);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json!.bundleFormat, 'crypt');
      assert.equal(r.json!.signer!.subject, 'O = Test Org, CN = Test Org Autobuilder-1');
      sameAsRaucInfo(r.json!, file, [`--keyring=${keyring}`, `--key=${key}`]);
    });
  }

  test('encrypted CMS without --decrypt-key: exit 2 naming the missing key; a key of no recipient: exit 1', async () => {
    const file = join(dir, 'good-crypt-bundle-encrypted.raucb');
    const none = await inspect(file, '--keyring', keyring);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /encrypted bundle detected.*--decrypt-key/);
    // A private key that is not among the recipients: the swupdate test key is RSA-2048.
    const wrong = await inspect(file, '--keyring', keyring, '--decrypt-key', corpus('swupdate', 'swugenerator__private.pem'));
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /opens none of the 10 recipients/);
  });

  test('no --keyring and no --no-verify: exit 2 saying a keyring is needed; --no-verify reads it with verified null', async () => {
    const file = join(dir, 'good-bundle.raucb');
    const r = await inspect(file);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /a keyring is needed/);
    const nv = await inspect(file, '--no-verify');
    assert.equal(nv.code, 0, nv.stderr);
    assert.equal(nv.json!.verified, null);
    assert.equal(nv.json!.payloads.length, 2);
  });

  test('usage and environment errors exit 2 with what to do: bad --check-purpose, missing keyring or key file', async () => {
    const file = join(dir, 'good-bundle.raucb');
    const purpose = await inspect(file, '--keyring', keyring, '--check-purpose', 'sslserver');
    assert.equal(purpose.code, 2);
    assert.match(purpose.stderr, /--check-purpose must be smimesign, codesign or any/);
    const ring = await inspect(file, '--keyring', join(dir, 'no-such.pem'));
    assert.equal(ring.code, 2);
    assert.match(ring.stderr, /no-such\.pem: cannot read the keyring: no such file/);
    const key = await inspect(join(dir, 'good-crypt-bundle-encrypted.raucb'), '--keyring', keyring, '--decrypt-key', join(dir, 'no-key.pem'));
    assert.equal(key.code, 2);
    assert.match(key.stderr, /no-key\.pem: cannot read the decryption key/);
  });

  test('human inspect output names format, compatible, version, signer and every image', async () => {
    const r = await runCli(['inspect', join(dir, 'good-crypt-bundle-encrypted.raucb'), '--keyring', keyring, '--decrypt-key', rsaKey]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /format: +crypt \[encrypted CMS\]/);
    assert.match(r.stdout, /compatible: +Test Config/);
    assert.match(r.stdout, /version: +2022\.03-2/);
    assert.match(r.stdout, /verified, signed by 'O = Test Org, CN = Test Org Autobuilder-1'/);
    assert.match(r.stdout, /rootfs\.img +slot class rootfs +type raw +65536 bytes +sha256 98ae5a2c/);
    assert.match(r.stdout, /appfs\.img +slot class appfs +type raw +32768 bytes +sha256 c3502047/);
  });

  test('adaptive+meta bundle: meta groups and the block-hash-index of appfs are recognised', async () => {
    const r = await inspect(join(dir, 'good-adaptive-meta-bundle.raucb'), '--keyring', keyring);
    assert.deepEqual(r.json!.meta, { update: { poll: '86400' }, version: { channel: 'beta', 'release-notes': 'https://example.com/release-notes' } });
  });

  test('extract: images hash like rauc extract writes them (plain, verity, crypt with both keys)', async (t) => {
    const tmp = await tempDir(t);
    const cases: [string, string[]][] = [
      ['good-bundle.raucb', []],
      ['good-verity-bundle.raucb', []],
      ['good-crypt-bundle-unencrypted.raucb', []],
      ['good-crypt-bundle-encrypted.raucb', ['--decrypt-key', rsaKey]],
      ['good-crypt-bundle-encrypted.raucb', ['--decrypt-key', ecKey]],
    ];
    for (const [i, [name, flags]] of cases.entries()) {
      const out = join(tmp, `o${i}`);
      const r = await runCli(['extract', join(dir, name), '-o', out, '--keyring', keyring, ...flags]);
      assert.equal(r.code, 0, r.stderr);
      const info = raucInfo(join(dir, name), [`--keyring=${keyring}`, ...(flags.length ? [`--key=${flags[1]}`] : [])]);
      const raucOut = join(tmp, `r${i}`);
      const x = spawnSync('rauc', ['extract', `--keyring=${keyring}`, ...(flags.length ? [`--key=${flags[1]}`] : []), join(dir, name), raucOut], { encoding: 'utf8', env: { ...process.env, TMPDIR: tmp } });
      assert.equal(x.status, 0, x.stderr);
      for (const img of info.images) {
        const ours = createHash('sha256').update(readFileSync(join(out, img.filename))).digest('hex');
        const theirs = createHash('sha256').update(readFileSync(join(raucOut, img.filename))).digest('hex');
        assert.equal(ours, theirs, `${name} ${img.filename}`);
        assert.equal(ours, img.sha256);
      }
      assert.deepEqual(readdirSync(out).sort(), info.images.map((i) => i.filename).sort());
    }
  });

  test('casync bundles: without --castr exit 2 naming the chunk store, nothing written; with it the images rebuild to the manifest hashes', async (t) => {
    const tmp = await tempDir(t);
    const file = join(dir, 'good-casync-bundle-1.5.1.raucb');
    const none = await runCli(['extract', file, '-o', join(tmp, 'none'), '--keyring', keyring]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /casync index .*good-casync-bundle-1\.5\.1\.castr\/.*--castr/);
    assert.deepEqual(readdirSync(tmp), []);
    for (const b of ['1.4', '1.5.1', 'verity']) {
      const out = join(tmp, b);
      const r = await runCli(['extract', join(dir, `good-casync-bundle-${b}.raucb`), '-o', out, '--keyring', keyring, '--castr', join(dir, `good-casync-bundle-${b}.castr`), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const info = raucInfo(join(dir, `good-casync-bundle-${b}.raucb`), [`--keyring=${keyring}`]);
      for (const img of info.images) {
        const name = img.filename.replace(/\.caibx$/, '');
        const bytes = readFileSync(join(out, name));
        assert.equal(bytes.length, img.size);
        assert.equal(createHash('sha256').update(bytes).digest('hex'), img.sha256, `${b} ${name}`);
      }
    }
  });

  test('casync chunk store damaged: a corrupt chunk is exit 1 naming it, a missing chunk exit 2', async (t) => {
    const tmp = await tempDir(t);
    const file = join(dir, 'good-casync-bundle-1.5.1.raucb');
    const store = join(tmp, 'store');
    cpSync(join(dir, 'good-casync-bundle-1.5.1.castr'), store, { recursive: true });
    chmodSync(store, 0o755);
    const chunk = readdirSync(store).map((d) => join(store, d, readdirSync(join(store, d))[0]!)).find((f) => f.includes('/7f40/'))!;
    chmodSync(join(store, '7f40'), 0o755);
    const bytes = readFileSync(chunk);
    bytes[bytes.length - 1]! ^= 0x40;
    rmSync(chunk, { force: true });
    writeFileSync(chunk, bytes);
    const bad = await runCli(['extract', file, '-o', join(tmp, 'bad'), '--keyring', keyring, '--castr', store]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /7f40d757[0-9a-f]+\.cacnk: chunk (is corrupt|content does not match|holds)/);
    rmSync(chunk);
    const missing = await runCli(['extract', file, '-o', join(tmp, 'missing'), '--keyring', keyring, '--castr', store]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /chunk 7f40d757[0-9a-f]+ is not in the chunk store/);
    assert.equal(existsSync(join(tmp, 'bad')) || existsSync(join(tmp, 'missing')), false);
  });
});
