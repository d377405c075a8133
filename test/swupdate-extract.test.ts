/**
 * Payloads of a .swu as the converter sees them: extract writes decoded content, tree() opens ext4 images
 * and tar archives through the filesystem layer, and stream() re-verifies what it reads.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { buffer } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import { openArtifact } from '../importers/open.ts';
import { runCli } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';
import { packSwu, sha256 } from './helpers/swupdate.ts';

const skip = needTool('cpio') || needTool('mkfs.ext4') || needTool('tar');

async function build(dir: string) {
  const root = join(dir, 'root');
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'hostname'), 'device\n');
  sh('mkfs.ext4', ['-q', '-F', '-d', root, join(dir, 'rootfs.ext4'), '4M']);
  sh('tar', ['-C', root, '-cf', join(dir, 'app.tar'), 'etc']);
  const ext4 = await readFile(join(dir, 'rootfs.ext4'));
  await writeFile(join(dir, 'rootfs.ext4.gz'), gzipSync(ext4));
  const s = (n: string) => readFile(join(dir, n)).then(sha256);
  await writeFile(join(dir, 'sw-description'), `software = {
  version = "5.0";
  hardware-compatibility = ["1.0"];
  images = (
    { filename = "rootfs.ext4.gz"; device = "/dev/mmcblk0p2"; compressed = "zlib"; sha256 = "${await s('rootfs.ext4.gz')}"; },
    { filename = "app.tar"; type = "archive"; path = "/opt"; sha256 = "${await s('app.tar')}"; }
  );
};`);
  return { swu: packSwu(dir, ['sw-description', 'rootfs.ext4.gz', 'app.tar']), ext4 };
}

test('extract -o writes decompressed artifacts; nothing is left behind on failure', { skip }, async (t) => {
  const dir = await tempDir(t);
  const { swu, ext4 } = await build(dir);
  const out = join(dir, 'out');
  const r = await runCli(['extract', swu, '-o', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await readdir(out)).sort(), ['app.tar', 'rootfs.ext4.gz']);
  assert.ok((await readFile(join(out, 'rootfs.ext4.gz'))).equals(ext4), 'decoded content');
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.files.find((f: { name: string }) => f.name === 'rootfs.ext4.gz').sha256, sha256(ext4));
  // A tampered member: extract fails and leaves no output directory.
  const bytes = await readFile(swu);
  const at = bytes.indexOf(Buffer.from('app.tar\0')) + 120;
  bytes[at] ^= 1;
  await writeFile(join(dir, 'bad.swu'), bytes);
  const bad = await runCli(['extract', join(dir, 'bad.swu'), '-o', join(dir, 'out2')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /app\.tar/);
  await assert.rejects(readdir(join(dir, 'out2')), { code: 'ENOENT' });
});

test('tree(): a zlib-compressed ext4 image and an archive-handler tar open as file trees', { skip }, async (t) => {
  const dir = await tempDir(t);
  const { swu } = await build(dir);
  const art = await openArtifact(swu, {});
  t.after(() => art.close());
  for (const name of ['rootfs.ext4.gz', 'app.tar']) {
    const p = art.payloads.find((x) => x.name === name)!;
    assert.ok(p.tree, `${name} has a tree`);
    const tree = await p.tree!();
    const paths: string[] = [];
    let hostname = '';
    for await (const e of tree.walk()) {
      paths.push(e.path);
      if (e.path === '/etc/hostname') hostname = (await buffer(tree.open(e))).toString();
    }
    await tree.close();
    assert.ok(paths.includes('/etc/hostname'), `${name}: ${paths.join(' ')}`);
    assert.equal(hostname, 'device\n');
  }
  assert.equal(art.payloads[0]!.kind, 'image');
  assert.equal(art.payloads[1]!.kind, 'archive');
});

test('stream() verifies again while reading: a member changed after open fails the stream', { skip }, async (t) => {
  const dir = await tempDir(t);
  const { swu } = await build(dir);
  const art = await openArtifact(swu, {});
  t.after(() => art.close());
  const bytes = await readFile(swu);
  const at = bytes.indexOf(Buffer.from('app.tar\0')) + 200;
  bytes[at] ^= 0x40;
  await writeFile(swu, bytes);
  const p = art.payloads.find((x) => x.name === 'app.tar')!;
  await assert.rejects(buffer(p.stream()), /app\.tar/);
});

test('a member above the parallel-hash threshold (hashed on worker threads) gives the same sha256 and size', { skip }, async (t) => {
  const dir = await tempDir(t);
  const big = Buffer.alloc(20 << 20);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i * 2654435761 >>> 0, i);
  await writeFile(join(dir, 'big.img'), big);
  await writeFile(join(dir, 'big.img.gz'), gzipSync(big, { level: 1 }));
  const stored = sha256(await readFile(join(dir, 'big.img.gz')));
  await writeFile(join(dir, 'sw-description'), `software = { version = "1"; images = (
    { filename = "big.img"; device = "/dev/null"; sha256 = "${sha256(big)}"; },
    { filename = "big.img.gz"; device = "/dev/null"; compressed = "zlib"; sha256 = "${stored}"; } ); };`);
  const swu = packSwu(dir, ['sw-description', 'big.img', 'big.img.gz']);
  const r = await runCli(['inspect', swu, '--json']);
  assert.equal(r.code, 0, r.stderr);
  for (const p of JSON.parse(r.stdout).payloads) {
    assert.equal(p.sha256, sha256(big), p.name);
    assert.equal(p.size, big.length);
  }
});

test('delta, rdiff and nested .swu entries are listed as not convertible, with the reason, and have no tree', { skip }, async (t) => {
  const dir = await tempDir(t);
  const s = await (async () => {
    const files = { 'root.zck': '\0ZCK1header', 'root.rdiff': 'rs\x026delta', 'inner.swu': '070701…' };
    for (const [n, d] of Object.entries(files)) await writeFile(join(dir, n), d);
    return Object.fromEntries(Object.entries(files).map(([n, d]) => [n, sha256(d)]));
  })();
  await writeFile(join(dir, 'sw-description'), `software = { version = "1"; images = (
    { filename = "root.zck"; type = "delta"; device = "/dev/a"; sha256 = "${s['root.zck']}"; properties = { url = "https://x/root.zck"; chain = "raw"; }; },
    { filename = "root.rdiff"; type = "rdiff_image"; device = "/dev/b"; sha256 = "${s['root.rdiff']}"; },
    { filename = "inner.swu"; type = "swuforward"; sha256 = "${s['inner.swu']}"; } ); };`);
  const swu = packSwu(dir, ['sw-description', 'root.zck', 'root.rdiff', 'inner.swu']);
  const r = await runCli(['inspect', swu, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const reasons = JSON.parse(r.stdout).payloads.map((p: { name: string; notConvertible: string }) => [p.name, p.notConvertible]);
  assert.match(reasons[0][1], /zchunk delta/);
  assert.match(reasons[1][1], /rdiff \(librsync\) delta/);
  assert.match(reasons[2][1], /nested \.swu/);
  const art = await openArtifact(swu, {});
  t.after(() => art.close());
  assert.ok(art.payloads.every((p) => p.tree === undefined && typeof p.attributes.notConvertible === 'string'));
});

test('xz-compressed artifact (swupdate 2025.12+) decodes with the xz CLI as the truth', { skip: skip || needTool('xz') }, async (t) => {
  const dir = await tempDir(t);
  const original = Buffer.from('xz payload line\n'.repeat(20_000));
  await writeFile(join(dir, 'p.bin'), original);
  sh('xz', ['-k', '-6', join(dir, 'p.bin')]);
  const stored = await readFile(join(dir, 'p.bin.xz'));
  assert.ok(Buffer.from(sh('xz', ['-dc', join(dir, 'p.bin.xz')])).equals(original));
  await writeFile(join(dir, 'sw-description'), `software = { version = "1"; images = (
    { filename = "p.bin.xz"; device = "/dev/null"; compressed = "xz"; sha256 = "${sha256(stored)}"; } ); };`);
  const swu = packSwu(dir, ['sw-description', 'p.bin.xz']);
  const r = await runCli(['inspect', swu, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const [p] = JSON.parse(r.stdout).payloads;
  assert.deepEqual([p.compressed, p.size, p.sha256], ['xz', original.length, sha256(original)]);
});

test('lz4-compressed artifacts (LZ4 frames from the lz4 CLI, several block sizes, concatenated frames) decode exactly', { skip: skip || needTool('lz4') }, async (t) => {
  const dir = await tempDir(t);
  const original = Buffer.concat([Buffer.from('lz4 frame payload\n'.repeat(200_000)), Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) & 0xff))]);
  await writeFile(join(dir, 'p.bin'), original);
  sh('lz4', ['-q', '-B4', '--content-size', join(dir, 'p.bin'), join(dir, 'b4.lz4')]);
  sh('lz4', ['-q', '-B7', '-BX', join(dir, 'p.bin'), join(dir, 'b7.lz4')]);
  // Two frames back to back decode to the two halves concatenated, as lz4 -d does.
  const half = original.length >> 1;
  await writeFile(join(dir, 'h1'), original.subarray(0, half));
  await writeFile(join(dir, 'h2'), original.subarray(half));
  sh('lz4', ['-q', join(dir, 'h1'), join(dir, 'h1.lz4')]);
  sh('lz4', ['-q', join(dir, 'h2'), join(dir, 'h2.lz4')]);
  await writeFile(join(dir, 'two.lz4'), Buffer.concat([await readFile(join(dir, 'h1.lz4')), await readFile(join(dir, 'h2.lz4'))]));
  const names = ['b4.lz4', 'b7.lz4', 'two.lz4'];
  const entries = await Promise.all(names.map(async (n) => `{ filename = "${n}"; device = "/dev/null"; compressed = "lz4"; sha256 = "${sha256(await readFile(join(dir, n)))}"; }`));
  await writeFile(join(dir, 'sw-description'), `software = { version = "1"; images = ( ${entries.join(', ')} ); };`);
  const r = await runCli(['inspect', packSwu(dir, ['sw-description', ...names]), '--json']);
  assert.equal(r.code, 0, r.stderr);
  for (const p of JSON.parse(r.stdout).payloads) assert.deepEqual([p.name, p.size, p.sha256], [p.name, original.length, sha256(original)]);
  // Linked blocks need a dictionary the block decoder cannot take: refused, not mis-decoded.
  sh('lz4', ['-q', '-f', '-B4', '-BD', join(dir, 'p.bin'), join(dir, 'b4.lz4')]);
  await writeFile(join(dir, 'sw-description'), `software = { version = "1"; images = ( { filename = "b4.lz4"; device = "/dev/null"; compressed = "lz4"; } ); };`);
  const linked = await runCli(['inspect', packSwu(dir, ['sw-description', 'b4.lz4'], 'linked.swu'), '--json']);
  assert.equal(linked.code, 1);
  assert.match(linked.stderr, /b4\.lz4 cannot be decoded \(lz4\).*linked blocks/);
});
