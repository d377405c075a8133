import assert from 'node:assert/strict';
import { test } from 'node:test';
import { imageTypeFromName, parseKeyFile, parseList, parseManifest } from '../importers/rauc/manifest.ts';
import { PvError } from '../src/errors.ts';

/** The GKeyFile manifest parser, on the syntax GLib defines and RAUC's documented groups and keys. */

test('all groups: update, bundle, hooks, handler, image with variant and artifact, meta; unknown keys kept and reported', () => {
  const m = parseManifest(
    [
      '# comment',
      '[update]',
      'compatible = Test Config ',
      'version=2026.11-1',
      'description=two\\swords\\nand a line',
      'build=20261125',
      'colour=blue',
      '',
      '[bundle]',
      'format=verity',
      'verity-hash=931B44C2' + '0'.repeat(56),
      'verity-salt=' + 'ab'.repeat(32),
      'verity-size=4096',
      '',
      '[hooks]',
      'filename=hook.sh',
      'hooks=install-check;',
      '',
      '[handler]',
      'filename=custom_handler.sh',
      'args=--dry-run',
      '',
      '[image.rootfs]',
      'filename=rootfs.ext4',
      'sha256=' + 'cd'.repeat(32),
      'size=65536',
      'hooks=pre-install;post-install;',
      'adaptive=block-hash-index;',
      'flavour=x',
      '',
      '[image.rootfs.board-b]',
      'filename=rootfs-b.squashfs-xz',
      '',
      '[image.containers/app]',
      'filename=app.tar.zst',
      'convert=tar-extract;keep',
      '',
      '[image.empty]',
      'type=emptyfs',
      '',
      '[meta.release]',
      'channel=beta',
      'notes=https://example.com/notes',
      '',
      '[rollout]',
      'anything=ok',
      '',
      '[future]',
      'x=1',
    ].join('\n'),
  );
  // GLib skips spaces after '=' but keeps trailing ones (rauc 1.8 prints "Test Config " for this line).
  assert.equal(m.compatible, 'Test Config ');
  assert.equal(m.description, 'two words\nand a line');
  assert.equal(m.build, '20261125');
  assert.deepEqual(m.bundle, { format: 'verity', verityHash: '931b44c2' + '0'.repeat(56), veritySalt: 'ab'.repeat(32), veritySize: 4096, cryptKey: undefined });
  assert.deepEqual(m.hooks, { filename: 'hook.sh', hooks: ['install-check'] });
  assert.deepEqual(m.handler, { filename: 'custom_handler.sh', args: '--dry-run' });
  assert.deepEqual(
    m.images.map((i) => [i.slotClass, i.variant, i.artifact, i.filename, i.type, i.size]),
    [
      ['rootfs', undefined, undefined, 'rootfs.ext4', 'ext4', 65536],
      ['rootfs', 'board-b', undefined, 'rootfs-b.squashfs-xz', 'squashfs', undefined],
      ['containers', undefined, 'app', 'app.tar.zst', 'tar', undefined],
      ['empty', undefined, undefined, undefined, 'emptyfs', undefined],
    ],
  );
  assert.deepEqual(m.images[0]!.hooks, ['pre-install', 'post-install']);
  assert.deepEqual(m.images[0]!.adaptive, ['block-hash-index']);
  assert.deepEqual(m.images[2]!.convert, ['tar-extract', 'keep']);
  assert.deepEqual(m.meta, { release: { channel: 'beta', notes: 'https://example.com/notes' } });
  assert.deepEqual(m.unknown, ['[update] colour', '[image.rootfs] flavour', '[future]']);
  assert.deepEqual(m.images[0]!.extra, { flavour: 'x' });
});

test('GLib syntax details: last duplicate wins, escaped list separators, CRLF, no format means plain', () => {
  const kf = parseKeyFile('[a]\r\nk=1\r\nk=2\r\n');
  assert.equal(kf.get('a')!.get('k'), '2');
  assert.deepEqual(parseList('a\\;b;c;;'), ['a;b', 'c']);
  assert.equal(parseManifest('[update]\ncompatible=x\n').bundle.format, 'plain');
});

test('type from the file extension as RAUC derives it', () => {
  const cases: [string, string][] = [
    ['rootfs.ext4', 'ext4'], ['boot.vfat', 'vfat'], ['data.ubifs', 'ubifs'], ['root.squashfs', 'squashfs'], ['root.squashfs-zstd', 'squashfs'],
    ['disk.img', 'raw'], ['app.tar', 'tar'], ['app.tar.gz', 'tar'], ['app.tgz', 'tar'], ['app.tar.xz', 'tar'],
    ['rootfs.img.caibx', 'raw-caibx'], ['rootfs.ext4.caibx', 'ext4-caibx'], ['x.vfat.caibx', 'vfat-caibx'], ['x.squashfs.caibx', 'squashfs-caibx'],
    ['tree.caidx', 'caidx'], ['tree.catar', 'catar'], ['firmware.bin', 'unknown'],
  ];
  for (const [name, type] of cases) assert.equal(imageTypeFromName(name), type, name);
  // An explicit type wins over the extension.
  assert.equal(parseManifest('[update]\ncompatible=x\n[image.a]\nfilename=a.img\ntype=ext4\n').images[0]!.type, 'ext4');
});

test('invalid manifests: precise errors', () => {
  const bad: [string, RegExp][] = [
    ['[update]\nversion=1\n', /no 'compatible' key/],
    ['compatible=x\n', /before any \[group\]/],
    ['[update\ncompatible=x\n', /no closing/],
    ['[update]\ncompatible=x\n[bundle]\nformat=zip\n', /format 'zip' is unknown/],
    ['[update]\ncompatible=x\n[image.a]\nfilename=../etc/passwd\n', /plain file name/],
    ['[update]\ncompatible=x\n[image.a]\nsha256=zz\nfilename=a\n', /not 64 hex digits/],
    ['[update]\ncompatible=x\n[image.a]\nsize=-1\nfilename=a\n', /not a byte count/],
    ['[update]\ncompatible=x\n[image.a]\nsize=1\n', /has no filename/],
    ['[update]\ncompatible=x\njunk line\n', /neither a group/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseManifest(text, 'm.raucm'), (e: PvError) => e.exitCode === 1 && e.file === 'm.raucm' && re.test(e.message), text);
});
