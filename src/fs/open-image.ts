import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidInputError, UsageError } from '../errors.ts';
import { detectPartitionTable, listPartitions, openPartition } from './disk/partitions.ts';
import { isExt4 } from './ext4/superblock.ts';
import { closingAlso, type FileTree } from './file-tree.ts';
import { BufferSource, FileSource, type RandomAccessSource } from './source.ts';
import { openTempCopy } from './temp-image.ts';

/** 'compressed-image': a gzip/xz/zstd stream holding a filesystem or disk image (not a tar). */
export type ImageKind = 'ext4' | 'squashfs' | 'vfat' | 'tar' | 'disk' | 'compressed-image';
/** Filesystems a partition can hold (a tar or a nested partition table inside a partition is not looked for). */
const PARTITION_KINDS: ImageKind[] = ['ext4', 'squashfs', 'vfat'];

const HEAD = 4096;
/** Decoded bytes judged for a compressed input: enough for every magic above (GPT needs 4 KiB + 8). */
const DECODED_HEAD = 16 * 1024;
/** Compressed bytes fed to that decode, and its output bound (a decoder emits whole blocks, often > 16 KiB). */
const COMPRESSED_HEAD = 1 << 20;
const DECODE_BOUND = 8 << 20;

type Compression = 'gzip' | 'xz' | 'zstd';

function compressionOf(head: Buffer): Compression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return undefined;
}

/** "hsqs": squashfs 4.0 little-endian magic. */
function isSquashfs(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === 0x73717368;
}

function isUstar(head: Buffer): boolean {
  return head.length >= 263 && head.subarray(257, 262).toString('latin1') === 'ustar';
}

/** The first decoded bytes of a compressed source: a bounded decode of its head, so a bomb cannot hurt. */
async function decodedHead(src: RandomAccessSource, kind: Compression): Promise<Buffer> {
  const { decompressStream } = await import('./compression.ts');
  const input = await src.read(0, Math.min(src.size, COMPRESSED_HEAD));
  const decoder = decompressStream(kind, DECODE_BOUND);
  const parts: Buffer[] = [];
  let have = 0;
  decoder.on('data', (d: Buffer) => {
    if (have < DECODED_HEAD) parts.push(d);
    have += d.length;
  });
  // The head is cut mid-stream (and the bound stops the decode early): judge whatever came out.
  await new Promise<void>((resolve) => {
    decoder.on('end', resolve).on('error', () => resolve());
    decoder.end(input);
  });
  return Buffer.concat(parts).subarray(0, DECODED_HEAD);
}

/** Kind by content, compressed inputs excluded. */
async function plainKind(src: RandomAccessSource, head: Buffer): Promise<ImageKind | undefined> {
  if (isExt4(head)) return 'ext4';
  if (isSquashfs(head)) return 'squashfs';
  const table = await detectPartitionTable(src);
  if (table === 'gpt') return 'disk';
  const { isVfat } = await import('./vfat/boot-sector.ts');
  if (isVfat(head)) return 'vfat';
  if (table === 'mbr') return 'disk';
  if (isUstar(head)) return 'tar';
  return undefined;
}

/**
 * What an image holds, by content only: ext2/3/4 (superblock magic), squashfs ("hsqs"), vfat (a valid BIOS
 * parameter block), a partitioned disk (GPT header, or an MBR whose entries are sane), a tar (ustar magic),
 * or a gzip/xz/zstd stream whose decoded start is a tar ('tar') or one of the images above ('compressed-image').
 */
export async function detectImage(src: RandomAccessSource): Promise<ImageKind | undefined> {
  const head = await src.read(0, Math.min(HEAD, src.size));
  const compression = compressionOf(head);
  if (!compression) return plainKind(src, head);
  const decoded = await decodedHead(src, compression);
  const inner = await plainKind(new BufferSource(decoded, src.name), decoded);
  if (inner === 'tar') return 'tar';
  return inner === undefined ? undefined : 'compressed-image';
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
    case 'compressed-image':
      throw new Error(`unreachable: ${kind} is opened by openImage`);
  }
}

/**
 * A compressed filesystem or disk image (rootfs.ext4.gz, sdcard.img.xz) is decoded once into a temp file,
 * which closing the tree removes: filesystems need random access.
 */
async function openCompressed(src: RandomAccessSource, options: { partition?: number }): Promise<FileTree> {
  const kind = compressionOf(await src.read(0, Math.min(HEAD, src.size)))!;
  const { decompressStream, DecompressError } = await import('./compression.ts');
  const decoded = (): Readable => {
    const decoder = decompressStream(kind);
    // Errors of either side surface through the decoder, read below.
    pipeline(src.stream(), decoder).catch(() => undefined);
    return Readable.from(
      (async function* () {
        try {
          for await (const chunk of decoder) yield chunk as Buffer;
        } catch (err) {
          // node:zlib reports corrupt gzip as Z_* errors; our other decoders as DecompressError.
          const corrupt = err instanceof DecompressError || /^Z_/.test(String((err as NodeJS.ErrnoException).code));
          throw corrupt ? new InvalidInputError('image-compression', `${kind} stream is corrupt: ${(err as Error).message}`, { file: src.name, cause: err }) : err;
        }
      })(),
    );
  };
  return openTempCopy(decoded, `${src.name} (${kind}-decoded)`, { prefix: 'pvmigrate-image-', open: (plain) => openImage(plain, options) });
}

/**
 * Open an image as a FileTree. A partitioned disk needs `partition` unless exactly one partition holds a
 * filesystem; the error lists the candidates so the user can choose.
 */
export async function openImage(src: RandomAccessSource, options: { partition?: number } = {}): Promise<FileTree> {
  const kind = await detectImage(src);
  if (kind === undefined) {
    throw new InvalidInputError('unknown-image', 'not a recognised image: expected ext2/3/4, squashfs, vfat, tar or an MBR/GPT disk (optionally gzip/xz/zstd compressed)', {
      file: src.name,
    });
  }
  if (kind === 'compressed-image') return openCompressed(src, options);
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
  return closingAlso(tree, () => src.close());
}
