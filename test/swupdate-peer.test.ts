/**
 * .swu images built here with GNU cpio and openssl, checked by the real `swupdate -c` (Debian, CMS build)
 * and by pvmigrate: the verdicts and the artifacts selected must agree.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { needTool, sh, tempDir } from './helpers/env.ts';
import { cmsSign, inspect, makeCert, names, packSwu, sha256, swupdateCheck, writeFiles } from './helpers/swupdate.ts';

const skip = needTool('swupdate') || needTool('cpio') || needTool('openssl');

describe('swupdate -c and pvmigrate agree', { concurrency: 4, skip }, () => {
  test('CMS-signed crc and newc images: verified, same artifacts, sha256 of the content', async (t) => {
    const dir = await tempDir(t);
    const sums = await writeFiles(dir, { 'rootfs.img': Buffer.alloc(100_000, 3), 'app.conf': 'key=value\n' });
    await writeFile(join(dir, 'sw-description'), `software = {
  version = "1.2.3";
  hardware-compatibility = ["1.0"];
  images = ( { filename = "rootfs.img"; device = "/dev/null"; sha256 = "${sums['rootfs.img']}"; } );
  files = ( { filename = "app.conf"; path = "/etc/app.conf"; sha256 = "${sums['app.conf']}"; } );
};`);
    const signer = makeCert(dir, 'signer');
    cmsSign(dir, signer);
    for (const format of ['crc', 'newc'] as const) {
      const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'rootfs.img', 'app.conf'], `${format}.swu`, format);
      const [peer, ours] = await Promise.all([swupdateCheck(dir, swu, ['-k', signer.cert, '-H', 'board:1.0']), inspect(swu, ['--ca', signer.cert])]);
      assert.ok(peer.ok, peer.log);
      assert.equal(ours.code, 0, ours.stderr);
      assert.equal(ours.doc.cpioFormat, format);
      assert.deepEqual(ours.doc.signature, { type: 'cms', verified: true, signer: 'CN = signer' });
      assert.equal(ours.doc.verified, true);
      assert.deepEqual(names(ours.doc), peer.required);
      assert.equal(ours.doc.version, peer.version);
      const rootfs = ours.doc.payloads.find((p: { name: string }) => p.name === 'rootfs.img');
      assert.equal(rootfs.sha256, sums['rootfs.img']);
      assert.equal(rootfs.size, 100_000);
    }
  });

  test('board groups, software collections and ref links select the same artifacts', async (t) => {
    const dir = await tempDir(t);
    const s = await writeFiles(dir, { 'a.bin': 'AAA\n', 'b.bin': 'BBB\n', 'c.bin': 'CCC\n', 'extra.bin': 'unused\n' });
    await writeFile(join(dir, 'sw-description'), `software = {
  version = "2.0";
  myboard = {
    hardware-compatibility = ["1.0", "#RE:^2\\\\.[0-9]+$"];
    stable = {
      copy1 = { images = ( { filename = "a.bin"; device = "/dev/null"; sha256 = "${s['a.bin']}"; } ); };
      copy2 = { ref = "#./copy1"; };
    };
  };
  hardware-compatibility = ["9.9"];
  stable = {
    copy1 = { images = ( { filename = "b.bin"; device = "/dev/null"; sha256 = "${s['b.bin']}"; }, { ref = "#../../common"; } ); };
  };
  common = ( { filename = "c.bin"; device = "/dev/null"; sha256 = "${s['c.bin']}"; } );
};`);
    const signer = makeCert(dir, 'signer');
    cmsSign(dir, signer);
    const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'a.bin', 'b.bin', 'c.bin', 'extra.bin']);
    const cases: { board: string; select: string; expect: string[] | 'incompatible' }[] = [
      { board: 'myboard:2.5', select: 'stable,copy2', expect: ['a.bin'] },
      { board: 'myboard:1.0', select: 'stable,copy1', expect: ['a.bin'] },
      { board: 'other:9.9', select: 'stable,copy1', expect: ['b.bin', 'c.bin'] },
      { board: 'myboard:3.1', select: 'stable,copy1', expect: 'incompatible' },
    ];
    await Promise.all(
      cases.map(async (c) => {
        const [peer, ours] = await Promise.all([
          swupdateCheck(dir, swu, ['-k', signer.cert, '-H', c.board, '-e', c.select]),
          inspect(swu, ['--ca', signer.cert, '--board', c.board, '--select', c.select]),
        ]);
        if (c.expect === 'incompatible') {
          assert.equal(peer.ok, false, peer.log);
          assert.match(peer.log, /SW not compatible with hardware/);
          assert.equal(ours.code, 1);
          assert.match(ours.stderr, /revision '3\.1' of board 'myboard' is not in hardware-compatibility/);
          return;
        }
        assert.ok(peer.ok, `${c.board} ${c.select}: ${peer.log}`);
        assert.equal(ours.code, 0, ours.stderr);
        assert.deepEqual(peer.required, c.expect);
        assert.deepEqual(names(ours.doc), c.expect);
        assert.deepEqual(ours.doc.boards, ['myboard']);
        assert.deepEqual(ours.doc.selections, ['stable,copy1', 'stable,copy2']);
        assert.equal(ours.doc.selected, c.select);
        assert.deepEqual(ours.doc.unreferenced, ['extra.bin']);
      }),
    );
  });

  test('zlib (gzip stream) and zstd compressed artifacts decode to the original content', async (t) => {
    const dir = await tempDir(t);
    const original = Buffer.from('THIS IS A TEST UPDATE FILE\n'.repeat(5000));
    await writeFile(join(dir, 'img.raw'), original);
    await writeFile(join(dir, 'img.gz'), gzipSync(original));
    sh('zstd', ['-q', '-19', 'img.raw', '-o', 'img.zst'], { cwd: dir });
    const stored = { gz: sha256(await readFile(join(dir, 'img.gz'))), zst: sha256(await readFile(join(dir, 'img.zst'))) };
    await writeFile(join(dir, 'sw-description'), `software = {
  version = "1.0";
  hardware-compatibility = ["1.0"];
  images = (
    { filename = "img.gz"; device = "/dev/null"; compressed = "zlib"; sha256 = "${stored.gz}"; },
    { filename = "img.zst"; device = "/dev/null"; compressed = "zstd"; sha256 = "${stored.zst}"; }
  );
};`);
    const signer = makeCert(dir, 'signer');
    cmsSign(dir, signer);
    const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'img.gz', 'img.zst']);
    const [peer, ours] = await Promise.all([swupdateCheck(dir, swu, ['-k', signer.cert, '-H', 'b:1.0']), inspect(swu, ['--ca', signer.cert])]);
    assert.ok(peer.ok, peer.log);
    assert.equal(ours.code, 0, ours.stderr);
    assert.deepEqual(names(ours.doc), peer.required);
    for (const p of ours.doc.payloads) {
      assert.equal(p.sha256, sha256(original), p.name);
      assert.equal(p.size, original.length);
    }
  });

  test('AES-256-CBC artifacts (compressed then encrypted) with swupdate key file', async (t) => {
    const dir = await tempDir(t);
    const key = '390ad54490a4a5f53722291023c19e08ffb5c4677a59e958c96ffa6e641df040';
    const iv = '0123456789abcdef0123456789abcdef';
    const ivt = 'ffeeddccbbaa99887766554433221100';
    const original = Buffer.from('secret payload\n'.repeat(1000));
    await writeFile(join(dir, 'plain.bin'), original);
    await writeFile(join(dir, 'plain.gz'), gzipSync(original));
    sh('openssl', ['enc', '-aes-256-cbc', '-K', key, '-iv', iv, '-nosalt', '-in', 'plain.bin', '-out', 'a.enc'], { cwd: dir });
    sh('openssl', ['enc', '-aes-256-cbc', '-K', key, '-iv', ivt, '-nosalt', '-in', 'plain.gz', '-out', 'b.gz.enc'], { cwd: dir });
    await writeFile(join(dir, 'aes.key'), `${key} ${iv}\n`);
    const sa = sha256(await readFile(join(dir, 'a.enc')));
    const sb = sha256(await readFile(join(dir, 'b.gz.enc')));
    await writeFile(join(dir, 'sw-description'), `software = {
  version = "1.0";
  hardware-compatibility = ["1.0"];
  images = (
    { filename = "a.enc"; device = "/dev/null"; encrypted = true; sha256 = "${sa}"; },
    { filename = "b.gz.enc"; device = "/dev/null"; encrypted = true; ivt = "${ivt}"; compressed = "zlib"; sha256 = "${sb}"; }
  );
};`);
    const signer = makeCert(dir, 'signer');
    cmsSign(dir, signer);
    const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'a.enc', 'b.gz.enc']);
    const keyFile = join(dir, 'aes.key');
    const [peer, ours, noKey] = await Promise.all([
      swupdateCheck(dir, swu, ['-k', signer.cert, '-K', keyFile, '-H', 'b:1.0']),
      inspect(swu, ['--ca', signer.cert, '--aes-key', keyFile]),
      inspect(swu, ['--ca', signer.cert]),
    ]);
    assert.ok(peer.ok, peer.log);
    assert.equal(ours.code, 0, ours.stderr);
    assert.deepEqual(names(ours.doc), peer.required);
    for (const p of ours.doc.payloads) {
      assert.equal(p.sha256, sha256(original), p.name);
      assert.equal(p.encrypted, true);
    }
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /a\.enc, b\.gz\.enc are AES-encrypted: pass --aes-key FILE/);
    // A wrong key fails the decryption (PKCS#7 padding) with exit 1, naming the member.
    await writeFile(keyFile, `${'11'.repeat(32)} ${iv}\n`);
    const wrong = await inspect(swu, ['--ca', signer.cert, '--aes-key', keyFile]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /cannot be decrypted .*wrong --aes-key/);
  });

  test('JSON sw-description with json-c leniency (comments, trailing comma)', async (t) => {
    const dir = await tempDir(t);
    const s = await writeFiles(dir, { 'fw.bin': 'firmware\n', 'cfg.txt': 'cfg\n' });
    await writeFile(join(dir, 'sw-description'), `{
  // a JSON description
  "software": {
    "version": "3.1.4",
    "hardware-compatibility": ["1.0"],
    "images": [ { "filename": "fw.bin", "device": "/dev/null", "sha256": "${s['fw.bin']}" } ],
    /* files too */
    "files": [ { "filename": "cfg.txt", "path": "/tmp/cfg.txt", "sha256": "${s['cfg.txt']}", }, ],
  }
}`);
    const signer = makeCert(dir, 'signer');
    cmsSign(dir, signer);
    const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'fw.bin', 'cfg.txt']);
    const [peer, ours] = await Promise.all([swupdateCheck(dir, swu, ['-k', signer.cert, '-H', 'b:1.0']), inspect(swu, ['--ca', signer.cert])]);
    assert.ok(peer.ok, peer.log);
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ours.doc.descriptionFormat, 'json');
    assert.equal(ours.doc.version, peer.version);
    assert.deepEqual(names(ours.doc), peer.required);
  });

  test('libconfig edge cases: ":" and "=", missing ";", comments, adjacent strings, escapes, hex and L integers, True', async (t) => {
    const dir = await tempDir(t);
    const s = await writeFiles(dir, { 'x.bin': 'x\n' });
    await writeFile(join(dir, 'sw-description'), `# hash comment
software:
{
  version = "4." "2"  // adjacent strings concatenate
  description: "tab\\there \\x41\\x42 \\"quoted\\"";
  /* block
     comment */
  hardware-compatibility: [ "1.0" ]
  reboot = True;
  images: (
    {
      filename = "x.bin"
      device = "/dev/null";
      offset = 0x0;
      installed-directly = TRUE,
      sha256 = "${s['x.bin']}";
      properties = { note = "n"; big = 12345678901L; list = ["p", "q"]; };
    }
  );
};`);
    const signer = makeCert(dir, 'signer');
    cmsSign(dir, signer);
    const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'x.bin']);
    const [peer, ours] = await Promise.all([swupdateCheck(dir, swu, ['-k', signer.cert, '-H', 'b:1.0']), inspect(swu, ['--ca', signer.cert])]);
    assert.ok(peer.ok, peer.log);
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(peer.version, '4.2');
    assert.equal(ours.doc.version, '4.2');
    assert.equal(ours.doc.description, 'tab\there AB "quoted"');
    assert.equal(ours.doc.reboot, true);
    assert.deepEqual(names(ours.doc), peer.required);
    const x = ours.doc.payloads[0];
    assert.equal(x.installedDirectly, true);
    // swupdate drops non-string properties; we do too and say so.
    assert.deepEqual(x.properties, { note: 'n', list: ['p', 'q'] });
    assert.ok(ours.doc.warnings.some((w: string) => /property 'big'.*not a string/.test(w)));
  });

  test('trailing comma: libconfig 1.5 (Debian swupdate) refuses it, we accept it as libconfig 1.7 does and warn', async (t) => {
    const dir = await tempDir(t);
    const s = await writeFiles(dir, { 'x.bin': 'x\n' });
    await writeFile(join(dir, 'sw-description'), `software = { version = "1.0"; hardware-compatibility = ["1.0",];
  images = ( { filename = "x.bin"; device = "/dev/null"; sha256 = "${s['x.bin']}"; }, ); };`);
    const signer = makeCert(dir, 'signer');
    cmsSign(dir, signer);
    const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'x.bin']);
    const [peer, ours] = await Promise.all([swupdateCheck(dir, swu, ['-k', signer.cert, '-H', 'b:1.0']), inspect(swu, ['--ca', signer.cert])]);
    assert.equal(peer.ok, false);
    assert.match(peer.log, /syntax error/);
    assert.equal(ours.code, 0, ours.stderr);
    const at = ours.doc.warnings.map((w: string) => /^trailing comma at (\d+:\d+)/.exec(w)?.[1]).filter(Boolean);
    assert.deepEqual(at, ['1:62', '2:136']);
  });

  test('codeSigning certificate: refused by default, accepted with --cert-purpose codeSigning', async (t) => {
    const dir = await tempDir(t);
    const s = await writeFiles(dir, { 'x.bin': 'x\n' });
    await writeFile(join(dir, 'sw-description'), `software = { version = "1.0"; hardware-compatibility = ["1.0"];
  images = ( { filename = "x.bin"; device = "/dev/null"; sha256 = "${s['x.bin']}"; } ); };`);
    const signer = makeCert(dir, 'coder', 'codeSigning');
    cmsSign(dir, signer);
    const swu = packSwu(dir, ['sw-description', 'sw-description.sig', 'x.bin']);
    const [peerDefault, peerCode, oursDefault, oursCode] = await Promise.all([
      swupdateCheck(dir, swu, ['-k', signer.cert, '-H', 'b:1.0']),
      swupdateCheck(dir, swu, ['-k', signer.cert, '-H', 'b:1.0', '--cert-purpose', 'codeSigning']),
      inspect(swu, ['--ca', signer.cert]),
      inspect(swu, ['--ca', signer.cert, '--cert-purpose', 'codeSigning']),
    ]);
    assert.equal(peerDefault.ok, false);
    assert.ok(peerCode.ok, peerCode.log);
    assert.equal(oursDefault.code, 1);
    assert.match(oursDefault.stderr, /purpose.*--cert-purpose codeSigning/);
    assert.equal(oursCode.code, 0, oursCode.stderr);
  });
});
