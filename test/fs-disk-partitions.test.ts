// MBR and GPT disks laid out by sfdisk: our partition list must equal `sfdisk --json`, and a filesystem
// inside a partition must list exactly as the same filesystem image on its own.
import assert from 'node:assert/strict';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';
import { PvError } from '../src/errors.ts';
import { listPartitions, openPartition } from '../src/fs/disk/partitions.ts';
import { FileSource } from '../src/fs/source.ts';

const skip = needTool('sfdisk') || needTool('mke2fs') || needTool('mkfs.vfat');

const MBR_LAYOUT = 'label: dos\nstart=2048, size=16M, type=c, bootable\nsize=20M, type=83\nsize=4M, type=82\ntype=5\nsize=8M, type=83\nsize=4M, type=83\n';
const GPT_LAYOUT =
  'label: gpt\nsize=16M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="boot"\nsize=20M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="rootfs ü"\n';

interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  uuid?: string;
  name?: string;
}

async function disk(dir: string, name: string, layout: string): Promise<string> {
  const img = join(dir, name);
  sh('truncate', ['-s', '64M', img]);
  sh('sfdisk', ['-q', img], { input: Buffer.from(layout) });
  return img;
}

function sfdiskPartitions(img: string): SfdiskPartition[] {
  return (JSON.parse(sh('sfdisk', ['--json', img])) as { partitiontable: { partitions: SfdiskPartition[] } }).partitiontable.partitions;
}

async function withSource<T>(img: string, f: (src: FileSource) => Promise<T>): Promise<T> {
  const src = await FileSource.open(img);
  try {
    return await f(src);
  } finally {
    await src.close();
  }
}

async function ourPartitions(img: string) {
  return withSource(img, (src) => listPartitions(src));
}

function expected(img: string) {
  return sfdiskPartitions(img).map((p) => ({
    index: Number(p.node.slice(img.length)),
    start: p.start,
    size: p.size,
    type: p.type,
    ...(p.uuid ? { uuid: p.uuid } : {}),
    name: p.name ?? '',
  }));
}

test('MBR primaries, extended and logical partitions equal sfdisk --json', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await disk(dir, 'mbr.img', MBR_LAYOUT);
  const ours = (await ourPartitions(img)).map(({ sectorSize, extended, ...rest }) => {
    assert.equal(sectorSize, 512);
    assert.equal(extended ?? false, rest.type === '5');
    return rest;
  });
  assert.deepEqual(ours, expected(img));
  assert.deepEqual(ours.map((p) => p.index), [1, 2, 3, 4, 5, 6]);
});

test('GPT entries (type, uuid, UTF-16 name) equal sfdisk --json; a bad primary header falls back to the backup', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await disk(dir, 'gpt.img', GPT_LAYOUT);
  const truth = expected(img);
  const ours = (await ourPartitions(img)).map(({ sectorSize, ...rest }) => rest);
  assert.deepEqual(ours, truth);
  assert.equal(ours[1]!.name, 'rootfs ü');

  const fh = await open(img, 'r+');
  await fh.write(Buffer.from('X'), 0, 1, 512 + 40); // inside the primary header: its CRC no longer matches
  await fh.close();
  assert.deepEqual((await ourPartitions(img)).map(({ sectorSize, ...rest }) => rest), truth);

  const size = (await readFile(img)).length;
  const fh2 = await open(img, 'r+');
  await fh2.write(Buffer.from('X'), 0, 1, size - 512 + 40);
  await fh2.close();
  await assert.rejects(ourPartitions(img), (err: unknown) => err instanceof PvError && err.exitCode === 1 && /CRC32/.test(err.message));
});

test('a chain of logical partitions that loops is refused', { skip }, async (t) => {
  const dir = await tempDir(t);
  const img = await disk(dir, 'loop.img', MBR_LAYOUT);
  // The first EBR sits at the extended partition's start; make its link entry point back at itself.
  const ext = sfdiskPartitions(img).find((p) => p.type === '5')!;
  const fh = await open(img, 'r+');
  const zero = Buffer.alloc(4);
  await fh.write(zero, 0, 4, ext.start * 512 + 462 + 8);
  await fh.close();
  await assert.rejects(ourPartitions(img), /loops/);
});

/** Copy a standalone filesystem image into a partition of the disk. */
async function place(diskImg: string, fsImg: string, startSector: number): Promise<void> {
  const bytes = await readFile(fsImg);
  const fh = await open(diskImg, 'r+');
  await fh.write(bytes, 0, bytes.length, startSector * 512);
  await fh.close();
}

test('ls on a partitioned disk: one filesystem opens directly, several need --partition, each equals the bare image', { skip }, async (t) => {
  const dir = await tempDir(t);
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'etc'), { recursive: true });
  await writeFile(join(tree, 'etc/os-release'), 'ID=pvmigrate-test\n');
  const ext4 = join(dir, 'root.ext4');
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, ext4, '8M']);
  const vfat = join(dir, 'boot.vfat');
  sh('truncate', ['-s', '16M', vfat]);
  sh('mkfs.vfat', [vfat]);
  await writeFile(join(dir, 'cmdline.txt'), 'console=ttyS0\n');
  sh('mcopy', ['-i', vfat, join(dir, 'cmdline.txt'), '::/cmdline.txt'], { env: { TZ: 'UTC' } });

  const bare = async (img: string) => {
    const r = await runCli(['ls', '--json', img]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as unknown;
  };

  // GPT with one filesystem: opened without --partition.
  const gpt = await disk(dir, 'one.img', GPT_LAYOUT);
  await place(gpt, ext4, 34816);
  assert.deepEqual(await bare(gpt), await bare(ext4));

  // MBR with vfat in 1, ext4 in 2 and in logical 5.
  const mbr = await disk(dir, 'mbr.img', MBR_LAYOUT);
  await place(mbr, vfat, 2048);
  await place(mbr, ext4, 34816);
  await place(mbr, ext4, 86016);
  const many = await runCli(['ls', '--json', mbr]);
  assert.equal(many.code, 2);
  assert.equal(many.stdout, '');
  assert.match(many.stderr, /partitions 1 \(vfat\), 2 \(ext4\), 5 \(ext4\); choose one with --partition N/);
  for (const [n, fs] of [
    ['1', vfat],
    ['2', ext4],
    ['5', ext4],
  ] as const) {
    const r = await runCli(['ls', '--json', '--partition', n, mbr]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), await bare(fs), `partition ${n}`);
  }
  const swap = await runCli(['ls', '--partition', '3', mbr]);
  assert.equal(swap.code, 1);
  assert.match(swap.stderr, /partition 3 holds no/);
  const missing = await runCli(['ls', '--partition', '9', mbr]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no partition 9; the disk has 1, 2, 3, 4, 5, 6/);
  const extended = await runCli(['ls', '--partition', '4', mbr]);
  assert.equal(extended.code, 2);
  assert.match(extended.stderr, /extended partition/);
  const notDisk = await runCli(['ls', '--partition', '1', ext4]);
  assert.equal(notDisk.code, 2);

  // A partition slice never reads outside its range.
  await withSource(mbr, async (src) => {
    const p2 = await openPartition(src, 2);
    assert.equal(p2.size, 20 << 20);
    await assert.rejects(p2.read(p2.size - 1, 2), /unexpected end/);
  });
});
