import { InvalidInputError, UsageError } from '../errors.ts';
import { detectPartitionTable, listPartitions, openPartition } from './disk/partitions.ts';
import { isExt4 } from './ext4/superblock.ts';
import type { FileTree } from './file-tree.ts';
import { FileSource, type RandomAccessSource } from './source.ts';

export type ImageKind = 'ext4' | 'squashfs' | 'vfat' | 'tar' | 'disk';
/** Filesystems a partition can hold (a tar or a nested partition table inside a partition is not looked for). */
const PARTITION_KINDS: ImageKind[] = ['ext4', 'squashfs', 'vfat'];

const HEAD = 4096;

/** "hsqs": squashfs 4.0 little-endian magic. */
function isSquashfs(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === 0x73717368;
}

function isTar(head: Buffer): boolean {
  if (head.length >= 263 && head.subarray(257, 262).toString('latin1') === 'ustar') return true;
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  const xz = head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  const zstd = head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528;
  return gzip || xz || zstd;
}

/**
 * What an image holds, by content only: ext2/3/4 (superblock magic), squashfs ("hsqs"), vfat (a valid BIOS
 * parameter block), a partitioned disk (GPT header, or an MBR whose entries are sane), or a tar
 * (ustar magic, or gzip/xz/zstd compression, taken to hold a tar).
 */
export async function detectImage(src: RandomAccessSource): Promise<ImageKind | undefined> {
  const head = await src.read(0, Math.min(HEAD, src.size));
  if (isExt4(head)) return 'ext4';
  if (isSquashfs(head)) return 'squashfs';
  const table = await detectPartitionTable(src);
  if (table === 'gpt') return 'disk';
  const { isVfat } = await import('./vfat/boot-sector.ts');
  if (isVfat(head)) return 'vfat';
  if (table === 'mbr') return 'disk';
  if (isTar(head)) return 'tar';
  return undefined;
}

async function openKind(kind: ImageKind, src: RandomAccessSource): Promise<FileTree> {
  switch (kind) {
    case 'ext4':
      return (await import('./ext4/reader.ts')).openExt4(src);
    case 'squashfs':
      return (await import('./squashfs/reader.ts')).openSquashfs(src);
    case 'vfat':
      return (await import('./vfat/reader.ts')).openVfat(src);
    case 'tar':
      return (await import('./tar/reader.ts')).openTar(src);
    case 'disk':
      throw new Error('unreachable: disks are opened through a partition');
  }
}

/**
 * Open an image as a FileTree. A partitioned disk needs `partition` unless exactly one partition holds a
 * filesystem; the error lists the candidates so the user can choose.
 */
export async function openImage(src: RandomAccessSource, options: { partition?: number } = {}): Promise<FileTree> {
  const kind = await detectImage(src);
  if (kind === undefined) {
    throw new InvalidInputError('unknown-image', 'not a recognised image: expected ext2/3/4, squashfs, vfat, tar (optionally gzip/xz/zstd) or an MBR/GPT disk', { file: src.name });
  }
  if (kind !== 'disk') {
    if (options.partition !== undefined) throw new UsageError(`--partition applies to partitioned disk images; this is a ${kind} image`, { file: src.name });
    return openKind(kind, src);
  }
  if (options.partition !== undefined) {
    if ((await listPartitions(src)).find((p) => p.index === options.partition)?.extended) {
      throw new UsageError(`partition ${options.partition} is an extended partition (a container of logical partitions); choose one of those`, { file: src.name, code: 'no-partition' });
    }
    const part = await openPartition(src, options.partition);
    const inner = await detectImage(part);
    if (inner === undefined || !PARTITION_KINDS.includes(inner)) {
      throw new InvalidInputError('unknown-image', `partition ${options.partition} holds no ext2/3/4, squashfs or vfat filesystem`, { file: src.name });
    }
    return openKind(inner, part);
  }
  const found: { index: number; kind: ImageKind; part: RandomAccessSource }[] = [];
  for (const p of await listPartitions(src)) {
    if (p.extended || (p.start + p.size) * p.sectorSize > src.size) continue;
    const part = await openPartition(src, p.index);
    const inner = await detectImage(part);
    if (inner !== undefined && PARTITION_KINDS.includes(inner)) found.push({ index: p.index, kind: inner, part });
  }
  if (found.length === 1) return openKind(found[0]!.kind, found[0]!.part);
  if (found.length === 0) throw new InvalidInputError('no-filesystem', 'the disk image has no partition holding an ext2/3/4, squashfs or vfat filesystem', { file: src.name });
  const list = found.map((f) => `${f.index} (${f.kind})`).join(', ');
  throw new UsageError(`the disk image holds filesystems in partitions ${list}; choose one with --partition N`, { file: src.name, code: 'partition-required' });
}

/** openImage on a file path; closing the tree also closes the file. */
export async function openImageFile(path: string, options: { partition?: number } = {}): Promise<FileTree> {
  const src = await FileSource.open(path);
  let tree: FileTree;
  try {
    tree = await openImage(src, options);
  } catch (err) {
    await src.close();
    throw err;
  }
  return {
    walk: () => tree.walk(),
    open: (entry) => tree.open(entry),
    close: async () => {
      try {
        await tree.close();
      } finally {
        await src.close();
      }
    },
  };
}
