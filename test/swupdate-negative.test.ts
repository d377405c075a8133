/**
 * Broken and tampered .swu images: swupdate -c refuses each (judged by its log), and pvmigrate exits 1
 * with a precise one-line message. An unknown handler is the exception by design: reported, fatal only
 * with --strict.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { needTool, tempDir } from './helpers/env.ts';
import { cmsSign, inspect, makeCert, packSwu, swupdateCheck, writeFiles } from './helpers/swupdate.ts';

const skip = needTool('swupdate') || needTool('cpio') || needTool('openssl');

/** A signed image with two artifacts; `description` may be changed before signing. */
async function signedImage(dir: string, edit: (d: string) => string = (d) => d) {
  const s = await writeFiles(dir, { 'a.bin': Buffer.alloc(5000, 0x61), 'b.bin': 'bbbb\n' });
  const text = `software = {
  version = "1.0";
  hardware-compatibility = ["1.0"];
  images = ( { filename = "a.bin"; device = "/dev/null"; sha256 = "${s['a.bin']}"; } );
  files = ( { filename = "b.bin"; path = "/tmp/b.bin"; sha256 = "${s['b.bin']}"; } );
};`;
  await writeFile(join(dir, 'sw-description'), edit(text));
  const signer = makeCert(dir, 'signer');
  cmsSign(dir, signer);
  return { signer, members: ['sw-description', 'sw-description.sig', 'a.bin', 'b.bin'] };
}

async function bothRefuse(dir: string, swu: string, cert: string, peerMessage: RegExp, ourMessage: RegExp, extra: string[] = []) {
  const [peer, ours] = await Promise.all([swupdateCheck(dir, swu, ['-k', cert, '-H', 'b:1.0']), inspect(swu, ['--ca', cert, ...extra])]);
  assert.equal(peer.ok, false, `swupdate accepted it:\n${peer.log}`);
  assert.match(peer.log, peerMessage);
  assert.equal(ours.code, 1, ours.stderr);
  assert.match(ours.stderr, ourMessage);
  assert.equal(ours.stderr.trim().split('\n').length, 1, 'one line');
}

describe('refused by swupdate and by pvmigrate', { concurrency: 4, skip }, () => {
  test('wrong crc byte sum of a member', async (t) => {
    const dir = await tempDir(t);
    const { signer, members } = await signedImage(dir);
    const swu = packSwu(dir, members);
    const bytes = await readFile(swu);
    // The c_check field of a.bin's header: find the header by its name.
    const at = bytes.indexOf(Buffer.from('a.bin\0')) - 110;
    bytes.write('deadbeef', at + 102, 'latin1');
    await writeFile(swu, bytes);
    await bothRefuse(dir, swu, signer.cert, /Checksum WRONG/, /'a\.bin' fails its crc byte sum: computed 0x[0-9a-f]+, the header says 0xdeadbeef/);
  });

  test('artifact changed after signing (same size, byte sum kept)', async (t) => {
    const dir = await tempDir(t);
    const { signer, members } = await signedImage(dir);
    // Swap two bytes: the byte sum stays right, only the sha256 can tell.
    const a = Buffer.alloc(5000, 0x61);
    a[0] = 0x60;
    a[1] = 0x62;
    await writeFile(join(dir, 'a.bin'), a);
    const swu = packSwu(dir, members);
    await bothRefuse(dir, swu, signer.cert, /HASH mismatch/, /a\.bin: sha256 of the stored member is [0-9a-f]{64} but sw-description says [0-9a-f]{64}/);
  });

  test('sw-description changed after signing', async (t) => {
    const dir = await tempDir(t);
    const { signer, members } = await signedImage(dir);
    const text = await readFile(join(dir, 'sw-description'), 'utf8');
    await writeFile(join(dir, 'sw-description'), text.replace('/tmp/b.bin', '/etc/b.bin'));
    const swu = packSwu(dir, members);
    await bothRefuse(dir, swu, signer.cert, /Signature verification failed|signature/i, /sw-description does not match its CMS signature/);
  });

  test('artifact referenced but missing from the archive', async (t) => {
    const dir = await tempDir(t);
    const { signer } = await signedImage(dir);
    const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'a.bin']);
    await bothRefuse(dir, swu, signer.cert, /Required image file b\.bin missing/, /b\.bin is referenced by sw-description but not in the archive/);
  });

  test('artifact without sha256 in a signed description', async (t) => {
    const dir = await tempDir(t);
    const { signer, members } = await signedImage(dir, (d) => d.replace(/(filename = "a\.bin"; device = "\/dev\/null";) sha256 = "[0-9a-f]+";/, '$1'));
    const swu = packSwu(dir, members);
    await bothRefuse(dir, swu, signer.cert, /Hash not set for a\.bin/, /a\.bin has no sha256 in a signed sw-description/);
  });

  test('sw-description not the first member', async (t) => {
    const dir = await tempDir(t);
    const { signer } = await signedImage(dir);
    const swu = packSwu(dir, ['a.bin', 'sw-description', 'sw-description.sig', 'b.bin']);
    const peer = await swupdateCheck(dir, swu, ['-k', signer.cert, '-H', 'b:1.0']);
    assert.equal(peer.ok, false);
    assert.match(peer.log, /description file name not the first of the list/);
    const ours = await inspect(swu, ['--ca', signer.cert]);
    assert.equal(ours.code, 1);
    assert.match(ours.stderr, /first cpio member is 'a\.bin', but a \.swu must start with sw-description/);
  });

  test('size attribute that disagrees with the cpio member', async (t) => {
    const dir = await tempDir(t);
    const { signer, members } = await signedImage(dir, (d) => d.replace('device = "/dev/null";', 'device = "/dev/null"; size = 4999;'));
    const ours = await inspect(packSwu(dir, members), ['--ca', signer.cert]);
    assert.equal(ours.code, 1);
    assert.match(ours.stderr, /a\.bin: sw-description says size 4999, the cpio member has 5000 bytes/);
  });

  test('syntax errors are reported with line:column', async (t) => {
    const cases: [string, (d: string) => string, RegExp][] = [
      ['missing quote', (d) => d.replace('version = "1.0";', 'version = 1.0.0;'), /sw-description 2:13: '1\.0\.0' is not a number/],
      ['duplicate name', (d) => d.replace('version = "1.0";', 'version = "1.0";\n  version = "2.0";'), /sw-description 3:3: duplicate setting name 'version'/],
      ['mixed array', (d) => d.replace('["1.0"]', '["1.0", 2]'), /sw-description 3:36: mismatched element type in array: int after string/],
      ['@include', (d) => `@include "other.cfg"\n${d}`, /sw-description 1:1: @include is not allowed/],
      ['dotted name', (d) => d.replace('version = "1.0";', 'rev1.0 = "x";\n  version = "1.0";'), /sw-description 2:7: '\.' is not allowed in a setting name/],
    ];
    await Promise.all(
      cases.map(async ([what, edit, ours]) => {
        const dir = await tempDir(t);
        const { signer, members } = await signedImage(dir, edit);
        const swu = packSwu(dir, members);
        await bothRefuse(dir, swu, signer.cert, /ERROR|syntax error|Failed/i, ours).catch((e: Error) => {
          throw new Error(`${what}: ${e.message}`);
        });
      }),
    );
  });

  test('unknown handler: swupdate refuses; we report it, and refuse only with --strict', async (t) => {
    const dir = await tempDir(t);
    const { signer, members } = await signedImage(dir, (d) => d.replace('device = "/dev/null";', 'type = "fpga";'));
    const swu = packSwu(dir, members);
    const [peer, ours, strict] = await Promise.all([
      swupdateCheck(dir, swu, ['-k', signer.cert, '-H', 'b:1.0']),
      inspect(swu, ['--ca', signer.cert]),
      inspect(swu, ['--ca', signer.cert, '--strict']),
    ]);
    assert.equal(peer.ok, false);
    assert.match(peer.log, /feature 'fpga' required for 'a\.bin' in sw-description is absent/);
    assert.equal(ours.code, 0, ours.stderr);
    assert.ok(ours.doc.warnings.some((w: string) => /a\.bin: handler 'fpga' is not one of swupdate's built-in handlers/.test(w)));
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, /handler 'fpga'.*--strict/);
  });
});

test('member names that leave the directory are refused', { skip: needTool('cpio') }, async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'sub'));
  await writeFiles(dir, { 'a.bin': 'a\n', 'sw-description': 'software = { version = "1"; };' });
  const swu = packSwu(dir, ['sw-description', 'sub/../a.bin']);
  const r = await inspect(swu);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cpio member #1 is named 'sub\/\.\.\/a\.bin': absolute or '\.\.' names are refused/);
});

test('a member that appears twice is refused as ambiguous', { skip: needTool('cpio') }, async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, { 'a.bin': 'a\n', 'sw-description': 'software = { version = "1"; images = ( { filename = "a.bin"; device = "/dev/a"; } ); };' });
  const r = await inspect(packSwu(dir, ['sw-description', 'a.bin', 'a.bin']));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cpio member 'a\.bin' appears twice \(#2\)/);
});
