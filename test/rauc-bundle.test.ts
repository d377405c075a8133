import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { openArtifact } from '../importers/open.ts';
import type { Artifact, TrustOptions } from '../importers/types.ts';
import { buildBundle, handmadePlainBundle, makePki, noise, raucInfo, type Pki } from '../samples/rauc/fixtures.ts';
import { PvError } from '../src/errors.ts';
import { FileSource } from '../src/fs/source.ts';
import { openBundle } from '../importers/rauc/bundle.ts';
import { runCli } from './helpers/cli.ts';
import { needTool } from './helpers/env.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

/** Bundles made by the real `rauc bundle` with a PKI made here, read by us and by rauc, compared. */
const skip = needTool('rauc') || needTool('openssl') || needTool('mksquashfs');

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function drain(a: Artifact): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const p of a.payloads) {
    const h = createHash('sha256');
    for await (const c of p.stream()) h.update(c as Buffer);
    out.set(p.name, h.digest('hex'));
  }
  return out;
}

async function withArtifact<T>(file: string, trust: TrustOptions, fn: (a: Artifact) => Promise<T>): Promise<T> {
  const a = await openArtifact(file, trust);
  try {
    return await fn(a);
  } finally {
    await a.close();
  }
}

async function rejects(file: string, trust: TrustOptions, code: string, message: RegExp): Promise<void> {
  await assert.rejects(
    withArtifact(file, trust, drain),
    (err: unknown) => {
      assert.ok(err instanceof PvError, String(err));
      assert.equal(err.code, code, err.message);
      assert.equal(err.exitCode, 1);
      assert.match(err.message, message);
      return true;
    },
  );
}

/** The CLI refuses to extract: exit 1, the message on stderr, no output directory. */
async function extractFails(file: string, keyring: string, message: RegExp): Promise<void> {
  const out = `${file}.out`;
  const r = await runCli(['extract', file, '-o', out, '--keyring', keyring]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, message);
  assert.equal(existsSync(out), false);
}

/** Our view and rauc's view of a bundle agree: compatible, version, images (names, sizes, hashes), extracted bytes. */
async function agreesWithRauc(file: string, keyring: string, tmp: string): Promise<void> {
  const info = raucInfo(file, [`--keyring=${keyring}`]);
  assert.equal(info.code, 0, info.stderr);
  const raucOut = join(tmp, `rauc-extract-${Math.random().toString(36).slice(2)}`);
  // rauc extract leaves its decrypted copy of a crypt bundle in TMPDIR: keep it in ours.
  const x = spawnSync('rauc', ['extract', `--keyring=${keyring}`, file, raucOut], { encoding: 'utf8', env: { ...process.env, TMPDIR: tmp } });
  assert.equal(x.status, 0, x.stderr);
  await withArtifact(file, { keyring }, async (a) => {
    const j = a.toJSON() as { compatible: string; version: string | null; verified: boolean; payloads: { name: string; slotClass: string; variant: string | null; size: number; sha256: string }[] };
    assert.equal(j.verified, true);
    assert.equal(j.compatible, info.compatible);
    assert.equal(j.version, info.version);
    assert.deepEqual(
      j.payloads.map((p) => ({ slotClass: p.slotClass, variant: p.variant, filename: p.name, sha256: p.sha256, size: p.size })),
      info.images,
    );
    const hashes = await drain(a);
    for (const img of info.images) assert.equal(hashes.get(img.filename), sha(readFileSync(join(raucOut, img.filename))), img.filename);
  });
}

const MANIFEST = (format: string, images = '[image.rootfs]\nfilename=rootfs.ext4\n'): string =>
  `[update]\ncompatible=pvmigrate-test\nversion=2026.11-1\ndescription=test bundle\nbuild=42\n\n[bundle]\nformat=${format}\n\n${images}`;

describe('RAUC bundles built with rauc 1.8', { skip }, () => {
  let tmp: string;
  let pki: Pki;
  let verity: string;
  let plainEc: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'pvmigrate-rauc-'));
    pki = makePki(join(tmp, 'pki'));
    // 600 KiB of noise: more than 128 data blocks, so the verity tree has two levels.
    verity = buildBundle(tmp, 'verity', { files: { 'rootfs.ext4': noise(600 * 1024) }, manifest: MANIFEST('verity'), signer: pki.rsa, intermediate: pki.intermediate });
    plainEc = buildBundle(tmp, 'plain-ec', { files: { 'rootfs.ext4': noise(20000, 7) }, manifest: MANIFEST('plain'), signer: pki.ec });
  });
  process.on('exit', () => tmp && rmSync(tmp, { recursive: true, force: true }));

  test('verity, RSA signer through an intermediate carried in the CMS, 2-level tree: as rauc info / rauc extract', async () => {
    await agreesWithRauc(verity, pki.rootCa, tmp);
    const src = await FileSource.open(verity);
    const b = await openBundle(src, { keyring: pki.rootCa });
    assert.equal(b.manifest.bundle.veritySize, 3 * 4096, 'two leaf hash blocks and one top block');
    assert.deepEqual(b.chain.map((c) => c.subject), ['O = pvmigrate test, CN = Release RSA', 'O = pvmigrate test, CN = Test Intermediate CA', 'O = pvmigrate test, CN = Test Root CA']);
    await b.tree.close();
    await src.close();
  });

  test('plain, ECDSA signer directly under the root: as rauc info / rauc extract', async () => {
    await agreesWithRauc(plainEc, pki.rootCa, tmp);
  });

  for (const comp of ['gzip', 'xz', 'zstd', 'lz4', 'lzo']) {
    test(`squashfs ${comp} payload`, async () => {
      const text = Buffer.from('pantavisor '.repeat(30000) + comp);
      const f = buildBundle(tmp, `comp-${comp}`, { files: { 'rootfs.ext4': text, 'appfs.img': noise(9000, 3) }, manifest: MANIFEST('verity', '[image.rootfs]\nfilename=rootfs.ext4\n[image.appfs]\nfilename=appfs.img\n'), signer: pki.rsa, intermediate: pki.intermediate, mksquashfsArgs: `-comp ${comp} -b 64K` });
      await agreesWithRauc(f, pki.rootCa, tmp);
    });
  }

  // rauc 1.8 rewrites the manifest and drops [meta.*] (parsed from 1.9): meta is covered by the corpus and parser tests.
  test('several images, a variant and hooks: every image, slot class, variant and type as rauc reports them', async () => {
    const images =
      '[hooks]\nfilename=hook.sh\nhooks=install-check;\n\n[image.rootfs]\nfilename=rootfs.ext4\nhooks=post-install;\n\n[image.rootfs.board-b]\nfilename=rootfs-b.ext4\n\n[image.appfs]\nfilename=appfs.tar.gz\n\n[image.bootloader]\nfilename=boot.vfat\n';
    const f = buildBundle(tmp, 'multi', {
      files: { 'hook.sh': '#!/bin/sh\nexit 0\n', 'rootfs.ext4': noise(10000, 11), 'rootfs-b.ext4': noise(12000, 12), 'appfs.tar.gz': noise(3000, 13), 'boot.vfat': noise(5000, 14) },
      manifest: MANIFEST('verity', images),
      signer: pki.rsa,
      intermediate: pki.intermediate,
    });
    await agreesWithRauc(f, pki.rootCa, tmp);
    await withArtifact(f, { keyring: pki.rootCa }, async (a) => {
      const j = a.toJSON() as { payloads: { name: string; type: string; variant: string | null }[]; description: string; build: string; hooks: unknown };
      assert.deepEqual(j.hooks, { filename: 'hook.sh', hooks: ['install-check'] });
      assert.deepEqual(a.payloads[0]!.attributes.hooks, ['post-install']);
      assert.ok(a.warnings.some((w) => /hooks 'hook\.sh' \(install-check\) have no Pantavisor equivalent/.test(w)), a.warnings.join('; '));
      assert.deepEqual(j.payloads.map((p) => [p.name, p.type, p.variant]), [['rootfs.ext4', 'ext4', null], ['rootfs-b.ext4', 'ext4', 'board-b'], ['appfs.tar.gz', 'tar', null], ['boot.vfat', 'vfat', null]]);
      assert.equal(j.description, 'test bundle');
      assert.equal(j.build, '42');
    });
  });

  test('adaptive block-hash-index: recognised, and its digests are the unsalted sha256 of each 4 KiB chunk', async () => {
    const img = noise(4 * 4096, 21);
    const f = buildBundle(tmp, 'adaptive', { files: { 'rootfs.ext4': img }, manifest: MANIFEST('verity', '[image.rootfs]\nfilename=rootfs.ext4\nadaptive=block-hash-index\n'), signer: pki.rsa, intermediate: pki.intermediate });
    await agreesWithRauc(f, pki.rootCa, tmp);
    await withArtifact(f, { keyring: pki.rootCa }, async (a) => {
      assert.equal(a.payloads[0]!.attributes.blockHashIndex, 'rootfs.ext4.block-hash-index');
      assert.deepEqual(a.warnings, []);
    });
    const x = join(tmp, 'adaptive-x');
    spawnSync('rauc', ['extract', `--keyring=${pki.rootCa}`, f, x]);
    const index = readFileSync(join(x, 'rootfs.ext4.block-hash-index'));
    const want = Buffer.concat([0, 1, 2, 3].map((i) => createHash('sha256').update(img.subarray(i * 4096, (i + 1) * 4096)).digest()));
    assert.ok(index.equals(want));
  });

  test('crypt bundle made by rauc and encrypted with rauc encrypt to an RSA and an EC recipient: both keys open it, as rauc info --key', async () => {
    const img = noise(50000, 41);
    const f = buildBundle(tmp, 'crypt', { files: { 'rootfs.ext4': img }, manifest: MANIFEST('crypt'), signer: pki.ec });
    await agreesWithRauc(f, pki.rootCa, tmp);
    const enc = join(tmp, 'crypt-encrypted.raucb');
    const recipients = join(tmp, 'recipients.pem');
    writeFileSync(recipients, readFileSync(pki.rsa.cert, 'utf8') + readFileSync(pki.ec.cert, 'utf8'));
    const r = spawnSync('rauc', ['encrypt', `--keyring=${pki.rootCa}`, `--to=${recipients}`, f, enc], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const key of [pki.rsa.key, pki.ec.key]) {
      const info = raucInfo(enc, [`--keyring=${pki.rootCa}`, `--key=${key}`]);
      assert.equal(info.code, 0, info.stderr);
      await withArtifact(enc, { keyring: pki.rootCa, decryptKey: key }, async (a) => {
        assert.equal((a.toJSON() as { bundleFormat: string }).bundleFormat, 'crypt');
        assert.deepEqual(a.payloads.map((p) => [p.name, p.size, p.sha256]), info.images.map((i) => [i.filename, i.size, i.sha256]));
        assert.equal((await drain(a)).get('rootfs.ext4'), sha(img));
      });
    }
    await assert.rejects(withArtifact(enc, { keyring: pki.rootCa, decryptKey: pki.codeSigning.key }, drain), (e: PvError) => e.code === 'cms-not-recipient' && /none of the 2 recipients \(1 of its type RSA\)/.test(e.message));
  });

  test('image whose bytes differ from the manifest sha256 (hand-framed plain bundle): rauc info accepts, our stream fails, extract writes nothing', async () => {
    const img = noise(8192, 51);
    const manifest = `[update]\ncompatible=pvmigrate-test\n[image.rootfs]\nfilename=rootfs.ext4\nsha256=${sha(Buffer.from('other'))}\nsize=8192\n`;
    const f = handmadePlainBundle(tmp, 'wrong-hash', { 'manifest.raucm': manifest, 'rootfs.ext4': img }, pki.rsa);
    const keyring = join(tmp, 'root-and-intermediate.pem');
    writeFileSync(keyring, readFileSync(pki.rootCa, 'utf8') + readFileSync(pki.intermediate, 'utf8'));
    assert.equal(raucInfo(f, [`--keyring=${keyring}`]).code, 0, 'rauc info trusts the signed manifest and does not hash images');
    await rejects(f, { keyring }, 'rauc-image-hash', new RegExp(`image 'rootfs.ext4' has sha256 ${sha(img)}, the manifest says ${sha(Buffer.from('other'))}`));
    await extractFails(f, keyring, /wrong-hash\.raucb: image 'rootfs\.ext4' has sha256/);
  });

  test('purpose: a codeSigning-only leaf fails smimesign (as rauc) and passes --check-purpose codesign (as rauc with check-purpose=codesign)', async () => {
    const f = buildBundle(tmp, 'code', { files: { 'rootfs.ext4': noise(8192, 5) }, manifest: MANIFEST('verity'), signer: pki.codeSigning });
    assert.match(raucInfo(f, [`--keyring=${pki.rootCa}`]).stderr, /unsuitable certificate purpose/);
    await rejects(f, { keyring: pki.rootCa }, 'cert-purpose', /unsuitable certificate purpose: 'O = pvmigrate test, CN = Release codeSigning only' .*without emailProtection.*--check-purpose codesign/);
    const conf = join(tmp, 'codesign.conf');
    writeFileSync(conf, `[system]\ncompatible=pvmigrate-test\nbootloader=noop\n[keyring]\npath=${pki.rootCa}\ncheck-purpose=codesign\n`);
    assert.equal(spawnSync('rauc', ['info', '-c', conf, f]).status, 0);
    assert.equal(spawnSync('rauc', ['info', '-c', conf, verity]).status, 1, 'rauc: a leaf without codeSigning fails codesign');
    await withArtifact(f, { keyring: pki.rootCa, checkPurpose: 'codesign' }, async (a) => assert.equal(a.verified, true));
    await rejects(verity, { keyring: pki.rootCa, checkPurpose: 'codesign' }, 'cert-purpose', /no extended key usage codeSigning/);
    await withArtifact(f, { keyring: pki.rootCa, checkPurpose: 'any' }, async (a) => assert.equal(a.verified, true));
  });

  test('expired signer: rejected as rauc rejects it, with the expiry date', async () => {
    const f = buildBundle(tmp, 'expired', { files: { 'rootfs.ext4': noise(8192, 6) }, manifest: MANIFEST('verity'), signer: pki.expired });
    assert.match(raucInfo(f, [`--keyring=${pki.rootCa}`]).stderr, /certificate has expired/);
    await rejects(f, { keyring: pki.rootCa }, 'cert-expired', /certificate 'O = pvmigrate test, CN = Release expired' expired on 2021-01-01T00:00:00.000Z/);
  });

  test('wrong keyring: untrusted, exit 1 through the CLI, nothing extracted', async () => {
    assert.match(raucInfo(verity, [`--keyring=${pki.otherCa}`]).stderr, /unable to get local issuer certificate/);
    await rejects(verity, { keyring: pki.otherCa }, 'cert-untrusted', /untrusted signer: no certificate in the keyring or the signature issued 'O = pvmigrate test, CN = Test Intermediate CA'/);
    // The intermediate alone is not a trust anchor either (no partial chains, as rauc's default).
    await rejects(verity, { keyring: pki.intermediate }, 'cert-untrusted', /Test Root CA/);
    const out = join(tmp, 'wrong-keyring-out');
    const r = await runCli(['extract', verity, '-o', out, '--keyring', pki.otherCa]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /verity\.raucb: untrusted signer/);
    assert.equal(existsSync(out), false);
  });

  describe('tampering: exit 1, a precise message, nothing extracted', () => {
    const tampered = (name: string, from: string, edit: (b: Buffer) => Buffer): string => {
      const f = join(tmp, `${name}.raucb`);
      writeFileSync(f, edit(Buffer.from(readFileSync(from))));
      return f;
    };
    const flip = (at: (b: Buffer) => number) => (b: Buffer): Buffer => {
      b[at(b)]! ^= 0x01;
      return b;
    };
    const cmsStart = (b: Buffer): number => b.length - 8 - Number(b.readBigUInt64BE(b.length - 8));

    test('flipped payload byte in a verity bundle: rauc info misses it, we catch it before reading the manifest images', async () => {
      const f = tampered('flip-payload', verity, flip(() => 300000));
      assert.equal(raucInfo(f, [`--keyring=${pki.rootCa}`]).code, 0, 'rauc info does not read the payload');
      await rejects(f, { keyring: pki.rootCa }, 'rauc-verity-data', /payload block 73 \(offset 299008\) fails its dm-verity hash/);
      await extractFails(f, pki.rootCa, /flip-payload\.raucb: payload block 73/);
    });

    test('a verity bundle changed after it was opened and checked: the image bytes are still refused', async () => {
      const f = tampered('changed-later', verity, (b) => b);
      await assert.rejects(
        withArtifact(f, { keyring: pki.rootCa }, async (a) => {
          // Every block was proven at open; now the file changes under the reader.
          const fd = openSync(f, 'r+');
          try {
            writeSync(fd, Buffer.from([readFileSync(f)[300000]! ^ 0x01]), 0, 1, 300000);
          } finally {
            closeSync(fd);
          }
          return drain(a);
        }),
        (err: unknown) => err instanceof PvError && ['rauc-image-hash', 'rauc-verity-data'].includes(err.code) && err.exitCode === 1,
      );
    });

    test('flipped byte in the verity hash tree', async () => {
      const f = tampered('flip-tree', verity, flip((b) => cmsStart(b) - 100));
      await rejects(f, { keyring: pki.rootCa }, 'rauc-verity', /verity hash tree/);
      await extractFails(f, pki.rootCa, /flip-tree\.raucb: verity hash tree/);
    });

    test('flipped byte in the payload of a plain bundle: the detached signature fails (as rauc)', async () => {
      const f = tampered('flip-plain', plainEc, flip(() => 5000));
      assert.equal(raucInfo(f, [`--keyring=${pki.rootCa}`]).code, 1);
      await rejects(f, { keyring: pki.rootCa }, 'cms-content-mismatch', /signed content digest does not match.*the payload was modified/);
      await extractFails(f, pki.rootCa, /flip-plain\.raucb: signature verification failed/);
    });

    test('flipped byte in the CMS signature value', async () => {
      const f = tampered('flip-cms', verity, flip((b) => b.length - 8 - 20));
      assert.equal(raucInfo(f, [`--keyring=${pki.rootCa}`]).code, 1);
      await rejects(f, { keyring: pki.rootCa }, 'cms-signature', /signature of 'O = pvmigrate test, CN = Release RSA' does not verify/);
      await extractFails(f, pki.rootCa, /flip-cms\.raucb: signature verification failed/);
    });

    test('changed signed manifest (inside the CMS)', async () => {
      const f = tampered('flip-manifest', verity, (b) => {
        const at = b.indexOf('compatible=pvmigrate-test', cmsStart(b));
        b[at + 'compatible='.length] = 'P'.charCodeAt(0);
        return b;
      });
      assert.equal(raucInfo(f, [`--keyring=${pki.rootCa}`]).code, 1);
      await rejects(f, { keyring: pki.rootCa }, 'cms-content-mismatch', /signed manifest was modified/);
      await extractFails(f, pki.rootCa, /flip-manifest\.raucb: signature verification failed/);
    });

    test('truncated bundle, and a trailer size pointing outside the file', async () => {
      // Cut inside the CMS: the squashfs is followed by more than its padding, so it is still seen as a bundle.
      const cut = tampered('truncated', verity, (b) => b.subarray(0, b.length - 1000));
      await rejects(cut, { keyring: pki.rootCa }, 'rauc-trailer', /announces a \d+-byte signature but only \d+ bytes precede it: the bundle is truncated/);
      await extractFails(cut, pki.rootCa, /truncated\.raucb: trailer announces/);
      const big = tampered('trailer-outside', verity, (b) => {
        b.writeBigUInt64BE(BigInt(b.length), b.length - 8);
        return b;
      });
      await rejects(big, { keyring: pki.rootCa }, 'rauc-trailer', /trailer announces a \d+-byte signature but only \d+ bytes precede it/);
      await extractFails(big, pki.rootCa, /trailer-outside\.raucb: trailer announces/);
      // Cut inside the verity tree: the signed manifest reads, the tree no longer fits.
      const inTree = tampered('cut-tree', verity, (b) => {
        const cms = b.subarray(cmsStart(b));
        return Buffer.concat([b.subarray(0, cmsStart(b) - 5000), cms]);
      });
      await rejects(inTree, { keyring: pki.rootCa }, 'rauc-verity', /not a multiple of 4096: the bundle is truncated/);
      // A bare squashfs (a bundle cut right after its image), also inside an erased partition, is not taken for a bundle.
      const bare = tampered('bare', verity, (b) => b.subarray(0, b.readUInt32LE(40) + 4096 - (b.readUInt32LE(40) % 4096 || 4096)));
      const { importer } = await import('../importers/rauc/index.ts');
      for (const [label, f] of [
        ['bare', bare],
        ['zero-padded partition', tampered('zero-pad', bare, (b) => Buffer.concat([b, Buffer.alloc(1 << 16)]))],
        ['0xff-padded partition', tampered('ff-pad', bare, (b) => Buffer.concat([b, Buffer.alloc(1 << 16, 0xff)]))],
      ] as const) {
        const src = await FileSource.open(f);
        assert.equal(await importer.detect(src), false, label);
        await src.close();
      }
      const r = await runCli(['inspect', bare, '--keyring', pki.rootCa]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /not a Mender artifact, RAUC bundle or SWUpdate image/);
    });

    test('signature larger than --max-signature-size', async () => {
      await rejects(verity, { keyring: pki.rootCa, maxSignatureSize: 1000 }, 'rauc-signature-too-large', /above the limit of 1000 bytes/);
    });
  });

  test('Payload.tree(): an ext4 and a tar image inside the bundle walk to the files they were made from', async () => {
    const root = join(tmp, 'rootfs-src');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc', 'os-release'), 'ID=pvmigrate\n');
    writeFileSync(join(root, 'big.bin'), noise(70000, 31));
    const ext4 = join(tmp, 'rootfs.ext4');
    assert.equal(spawnSync('mkfs.ext4', ['-q', '-F', '-d', root, ext4, '4M']).status, 0);
    const tar = join(tmp, 'app.tar');
    assert.equal(spawnSync('tar', ['-cf', tar, '-C', root, '.']).status, 0);
    const f = buildBundle(tmp, 'trees', {
      files: { 'rootfs.ext4': readFileSync(ext4), 'app.tar': readFileSync(tar) },
      manifest: MANIFEST('verity', '[image.rootfs]\nfilename=rootfs.ext4\n[image.appfs]\nfilename=app.tar\n'),
      signer: pki.rsa,
      intermediate: pki.intermediate,
    });
    await withArtifact(f, { keyring: pki.rootCa }, async (a) => {
      for (const p of a.payloads) {
        const tree = await p.tree!();
        try {
          const files = new Map<string, string>();
          for await (const e of tree.walk()) {
            if (e.type !== 'file') continue;
            const h = createHash('sha256');
            for await (const c of tree.open(e)) h.update(c as Buffer);
            files.set(e.path, h.digest('hex'));
          }
          assert.equal(files.get('/etc/os-release'), sha(Buffer.from('ID=pvmigrate\n')), p.name);
          assert.equal(files.get('/big.bin'), sha(noise(70000, 31)), p.name);
        } finally {
          await tree.close();
        }
      }
    });
  });

  test('CLI inspect --json prints one document; extract writes the images atomically', async () => {
    const r = await runCli(['inspect', verity, '--keyring', pki.rootCa, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(j), ['format', 'bundleFormat', 'compatible', 'version', 'description', 'build', 'signed', 'verified', 'signer', 'payloads', 'hooks', 'meta']);
    const out = join(tmp, 'cli-out');
    const x = await runCli(['extract', verity, '-o', out, '--keyring', pki.rootCa]);
    assert.equal(x.code, 0, x.stderr);
    assert.deepEqual(readdirSync(out), ['rootfs.ext4']);
    assert.equal(sha(readFileSync(join(out, 'rootfs.ext4'))), sha(noise(600 * 1024)));
  });
});
