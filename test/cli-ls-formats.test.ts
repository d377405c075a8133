// `pvmigrate ls`: usage and environment errors, the human listing against GNU stat, and one tree listed
// identically whether it comes as ext4, squashfs, tar.gz or tar.zst.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, runCli } from './helpers/cli.ts';
import { needTool, privileged, sh, tempDir } from './helpers/env.ts';
import type { Listed } from '../src/fs/listing.ts';


async function sampleTree(dir: string, devices: boolean): Promise<string> {
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'usr/bin'), { recursive: true });
  await mkdir(join(tree, 'tmp'), { recursive: true });
  await mkdir(join(tree, 'dev'), { recursive: true });
  await writeFile(join(tree, 'usr/bin/su'), 'su\n');
  await writeFile(join(tree, 'usr/bin/tool'), Buffer.alloc(300000, 3));
  await writeFile(join(tree, 'name with spaces ü'), 'x\n');
  await symlink('usr/bin', join(tree, 'bin'));
  sh('chmod', ['4755', join(tree, 'usr/bin/su')]);
  sh('chmod', ['1777', join(tree, 'tmp')]);
  sh('chmod', ['0755', tree]);
  if (devices) {
    sh('mknod', [join(tree, 'dev/console'), 'c', '5', '1']);
    sh('mkfifo', [join(tree, 'dev/initctl')]);
  }
  sh('touch', ['-h', '-d', '2024-05-01 12:00:00Z', join(tree, 'bin')]);
  sh('find', [tree, '-not', '-type', 'l', '-exec', 'touch', '-d', '2024-05-01 12:00:00Z', '{}', '+']);
  return tree;
}

test('ls: --help, bad flags, missing files and unknown content map to the documented exit codes', async (t) => {
  const dir = await tempDir(t);
  const help = await runCli(['ls', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /pvmigrate ls <image> \[--partition N\] \[--json\]/);
  assert.equal((await runCli(['ls'])).code, 2);
  assert.equal((await runCli(['ls', '--bogus', 'x'])).code, 2);
  const bad = await runCli(['ls', '--partition', 'two', 'x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--partition takes a partition number/);
  const missing = await runCli(['ls', join(dir, 'nope.img')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.img: no such file/);
  await writeFile(join(dir, 'junk.bin'), Buffer.alloc(8192, 0x5a));
  const junk = await runCli(['ls', '--json', join(dir, 'junk.bin')]);
  assert.equal(junk.code, 1);
  assert.equal(junk.stdout, '');
  assert.match(junk.stderr, /junk\.bin: not a recognised image/);
});

test('ls human listing: permission strings equal GNU stat %A, devices show major, minor, symlinks their target', { skip: privileged('mknod') || needTool('mke2fs') }, async (t) => {
  const dir = await tempDir(t);
  const tree = await sampleTree(dir, true);
  const img = join(dir, 'root.ext4');
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, img, '8M']);
  const r = await runCli(['ls', img]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const byPath = new Map(lines.map((l) => [l.split(/ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d /)[1]!.replace(/ -> .*$/, ''), l]));
  for (const rel of ['/usr/bin/su', '/tmp', '/bin', '/dev/console', '/dev/initctl', '/name with spaces ü', '/usr/bin/tool']) {
    const line = byPath.get(rel);
    assert.ok(line, `${rel} listed`);
    assert.equal(line.split(' ')[0], sh('stat', ['-c', '%A', join(tree, rel)]).trim(), rel);
  }
  assert.match(byPath.get('/dev/console')!, / 5, 1 2024-05-01 12:00:00 \/dev\/console$/);
  assert.match(byPath.get('/bin')!, / 7 2024-05-01 12:00:00 \/bin -> usr\/bin$/);
  assert.match(byPath.get('/usr/bin/tool')!, / 300000 2024-05-01 12:00:00 \/usr\/bin\/tool$/);
});

test('one tree as ext4, squashfs, tar.gz and tar.zst lists the same entries', { skip: needTool('mke2fs') || needTool('mksquashfs') || needTool('zstd') }, async (t) => {
  const dir = await tempDir(t);
  const tree = await sampleTree(dir, false);
  const images: Record<string, string> = {
    ext4: join(dir, 'root.ext4'),
    squashfs: join(dir, 'root.squashfs'),
    'tar.gz': join(dir, 'root.tar.gz'),
    'tar.zst': join(dir, 'root.tar.zst'),
  };
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, images.ext4!, '8M']);
  sh('mksquashfs', [tree, images.squashfs!, '-noappend', '-quiet', '-no-progress']);
  sh('tar', ['--numeric-owner', '-czf', images['tar.gz']!, '-C', tree, '.']);
  sh('tar', ['--numeric-owner', '--zstd', '-cf', images['tar.zst']!, '-C', tree, '.']);
  // What every format records the same way: lost+found is ext4's own (making it touches the root's mtime),
  // link counts of directories are not in tar.
  const comparable = (l: Listed[]) =>
    l
      .filter((e) => e.path !== '/lost+found')
      .map(({ nlink, ...rest }) => (rest.type === 'dir' ? rest : { ...rest, nlink }))
      .map((e) => (e.path === '/' ? { ...e, mtime: 0 } : e));
  const listings: Record<string, unknown> = {};
  for (const [kind, img] of Object.entries(images)) {
    const r = await runCli(['ls', '--json', img]);
    assert.equal(r.code, 0, `${kind}: ${r.stderr}`);
    listings[kind] = comparable(JSON.parse(r.stdout) as Listed[]);
  }
  for (const kind of ['squashfs', 'tar.gz', 'tar.zst']) assert.deepEqual(listings[kind], listings.ext4, kind);
});

test('gzip, xz and zstd compressed ext4 and disk images list as the plain image, leaving no temp files', { skip: needTool('mke2fs') || needTool('xz') || needTool('zstd') || needTool('sfdisk') }, async (t) => {
  const dir = await tempDir(t);
  const tree = await sampleTree(dir, false);
  const ext4 = join(dir, 'root.ext4');
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, ext4, '8M']);
  const disk = join(dir, 'sdcard.img');
  sh('truncate', ['-s', '16M', disk]);
  sh('sfdisk', ['-q', disk], { input: Buffer.from('label: gpt\nsize=10M\n') });
  sh('dd', [`if=${ext4}`, `of=${disk}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']);
  sh('gzip', ['-k', ext4]);
  sh('xz', ['-k', '-T1', ext4]);
  sh('zstd', ['-q', disk]);
  const scratch = join(dir, 'tmp');
  await mkdir(scratch);
  const list = async (img: string) => {
    const r = await runCli(['ls', '--json', img], { env: { TMPDIR: scratch } });
    assert.equal(r.code, 0, `${img}: ${r.stderr}`);
    return JSON.parse(r.stdout) as unknown;
  };
  const plain = await list(ext4);
  for (const img of [`${ext4}.gz`, `${ext4}.xz`, `${disk}.zst`]) assert.deepEqual(await list(img), plain, img);
  // (tsx keeps its compile cache there too.)
  assert.deepEqual((await readdir(scratch)).filter((n) => n.startsWith('pvmigrate-')), [], 'the decoded copies are removed');
  // A compressed stream holding neither a tar nor an image is not guessed at.
  sh('sh', ['-c', 'echo plain text | gzip > "$0"', join(dir, 'text.gz')]);
  const text = await runCli(['ls', join(dir, 'text.gz')], { env: { TMPDIR: scratch } });
  assert.equal(text.code, 1);
  assert.match(text.stderr, /not a recognised image/);
});

test('a corrupt compressed image is invalid input (exit 1) naming the file, and leaves no temp copy', async (t) => {
  const dir = await tempDir(t);
  const image = join(dir, 'root.ext4');
  sh('mkfs.ext4', ['-q', '-d', join(repoRoot, 'samples/revision/a'), image, '4M']);
  sh('gzip', ['-k', image]);
  const gz = readFileSync(`${image}.gz`);
  gz[gz.length >> 1]! ^= 0xff;
  writeFileSync(join(dir, 'bad.ext4.gz'), gz);
  // A private TMPDIR, so the leftover check sees only this test's temp copies.
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const r = await runCli(['ls', join(dir, 'bad.ext4.gz')], { env: { TMPDIR: tmp } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.ext4\.gz: gzip stream is corrupt/);
  // A reader that closes the pipe early ends the listing without error and without leftovers.
  const piped = spawnSync('sh', ['-c', `node ${join(repoRoot, 'bin/pvmigrate.js')} ls ${image}.gz | head -1; echo "ls=\${PIPESTATUS:-}"`], {
    encoding: 'utf8',
    env: { ...process.env, TMPDIR: tmp },
  });
  assert.equal(piped.stdout.split('\n').filter(Boolean).length, 2, piped.stderr);
  assert.equal(piped.stderr, '');
  assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('pvmigrate-')), [], 'no temp copy left');
});
