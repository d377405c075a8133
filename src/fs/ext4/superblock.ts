import { InvalidInputError } from '../../errors.ts';
import type { RandomAccessSource } from '../source.ts';
import { checksumSeed, superblockChecksumOk } from './checksum.ts';

/** Byte offset of the primary superblock and its magic (s_magic at 0x38). */
export const SUPERBLOCK_OFFSET = 1024;
export const EXT4_MAGIC = 0xef53;

// Feature bits we act on (the rest are either harmless for reading or rejected below).
export const INCOMPAT_COMPRESSION = 0x1;
export const INCOMPAT_FILETYPE = 0x2;
export const INCOMPAT_JOURNAL_DEV = 0x8;
export const INCOMPAT_META_BG = 0x10;
export const INCOMPAT_64BIT = 0x80;
export const INCOMPAT_DIRDATA = 0x1000;
export const RO_COMPAT_SPARSE_SUPER = 0x1;
export const RO_COMPAT_HUGE_FILE = 0x8;
export const RO_COMPAT_BIGALLOC = 0x200;

/**
 * Incompat features a read-only walker understands: filetype, recover (journal replay pending: we read the
 * committed metadata as is), meta_bg, extents, 64bit, mmp, flex_bg, ea_inode, csum_seed, largedir,
 * inline_data, encrypt (refused per inode), casefold (names are stored as given).
 */
const KNOWN_INCOMPAT = 0x2 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000;

export interface Superblock {
  blockSize: number;
  /** Allocation unit: the block size, or s_log_cluster_size's cluster with bigalloc. */
  clusterSize: number;
  blocksCount: number;
  inodesCount: number;
  firstDataBlock: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  inodeSize: number;
  /** Bytes per group descriptor: 32, or s_desc_size with 64bit. */
  descSize: number;
  groupCount: number;
  featureCompat: number;
  featureIncompat: number;
  featureRoCompat: number;
  firstMetaBg: number;
  /** metadata_csum: the CRC32C seed inode checksums start from; undefined without the feature. */
  checksumSeed: number | undefined;
}

/** True when the 2 KiB at the start of `head` look like an ext2/3/4 superblock. */
export function isExt4(head: Buffer): boolean {
  return head.length >= SUPERBLOCK_OFFSET + 0x3a && head.readUInt16LE(SUPERBLOCK_OFFSET + 0x38) === EXT4_MAGIC;
}

function corrupt(src: RandomAccessSource, what: string): InvalidInputError {
  return new InvalidInputError('ext4-corrupt', `not a valid ext2/3/4 filesystem: ${what}; check the image with 'e2fsck -fn'`, { file: src.name });
}

export async function readSuperblock(src: RandomAccessSource): Promise<Superblock> {
  if (src.size < SUPERBLOCK_OFFSET + 1024) throw corrupt(src, `only ${src.size} bytes, too small for a superblock`);
  const b = await src.read(SUPERBLOCK_OFFSET, 1024);
  if (b.readUInt16LE(0x38) !== EXT4_MAGIC) throw corrupt(src, 'no ext2/3/4 superblock magic at offset 1080');
  const logBlock = b.readUInt32LE(0x18);
  if (logBlock > 6) throw corrupt(src, `block size 2^(10+${logBlock}) is out of range`);
  const blockSize = 1024 << logBlock;
  const featureCompat = b.readUInt32LE(0x5c);
  const featureIncompat = b.readUInt32LE(0x60);
  const featureRoCompat = b.readUInt32LE(0x64);
  const is64 = (featureIncompat & INCOMPAT_64BIT) !== 0;
  const blocksCount = b.readUInt32LE(0x04) + (is64 ? b.readUInt32LE(0x150) * 2 ** 32 : 0);
  const revLevel = b.readUInt32LE(0x4c);
  const inodeSize = revLevel === 0 ? 128 : b.readUInt16LE(0x58);
  const descSize = is64 ? b.readUInt16LE(0xfe) : 32;
  const bigalloc = (featureRoCompat & RO_COMPAT_BIGALLOC) !== 0;
  const logCluster = b.readUInt32LE(0x1c);
  if (bigalloc && (logCluster < logBlock || logCluster > 30)) throw corrupt(src, `cluster size 2^(10+${logCluster}) is out of range`);
  const sb: Superblock = {
    blockSize,
    clusterSize: bigalloc ? 1024 * 2 ** logCluster : blockSize,
    blocksCount,
    inodesCount: b.readUInt32LE(0x00),
    firstDataBlock: b.readUInt32LE(0x14),
    blocksPerGroup: b.readUInt32LE(0x20),
    inodesPerGroup: b.readUInt32LE(0x28),
    inodeSize,
    descSize,
    groupCount: 0,
    featureCompat,
    featureIncompat,
    featureRoCompat,
    firstMetaBg: b.readUInt32LE(0x104),
    checksumSeed: checksumSeed(b),
  };
  if (sb.checksumSeed !== undefined && !superblockChecksumOk(b)) throw corrupt(src, 'the superblock fails its metadata_csum checksum');
  // A group's bitmap is one block: blockSize × 8 clusters (blocks without bigalloc).
  if (sb.blocksPerGroup === 0 || sb.blocksPerGroup > blockSize * 8 * (sb.clusterSize / blockSize)) throw corrupt(src, `blocks per group ${sb.blocksPerGroup} is out of range`);
  if (sb.inodesPerGroup === 0 || sb.inodesPerGroup > blockSize * 8) throw corrupt(src, `inodes per group ${sb.inodesPerGroup} is out of range`);
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) throw corrupt(src, `inode size ${inodeSize} is invalid`);
  if (is64 && (descSize < 32 || descSize > 1024 || (descSize & (descSize - 1)) !== 0)) throw corrupt(src, `group descriptor size ${descSize} is invalid`);
  if (blocksCount <= sb.firstDataBlock) throw corrupt(src, `block count ${blocksCount} is invalid`);
  sb.groupCount = Math.ceil((blocksCount - sb.firstDataBlock) / sb.blocksPerGroup);
  if (sb.inodesCount > sb.groupCount * sb.inodesPerGroup || sb.inodesCount < 11) throw corrupt(src, `inode count ${sb.inodesCount} does not match ${sb.groupCount} groups`);
  if (blocksCount * blockSize > src.size) {
    throw new InvalidInputError('truncated', `the ext4 filesystem spans ${blocksCount * blockSize} bytes but the image holds ${src.size}; the image is truncated`, { file: src.name });
  }
  const unsupported = featureIncompat & ~KNOWN_INCOMPAT;
  if (unsupported) {
    const names: string[] = [];
    if (unsupported & INCOMPAT_COMPRESSION) names.push('compression');
    if (unsupported & INCOMPAT_JOURNAL_DEV) names.push('journal_dev (this is an external journal, not a filesystem)');
    if (unsupported & INCOMPAT_DIRDATA) names.push('dirdata');
    const other = unsupported & ~(INCOMPAT_COMPRESSION | INCOMPAT_JOURNAL_DEV | INCOMPAT_DIRDATA);
    if (other) names.push(`0x${other.toString(16)}`);
    throw new InvalidInputError('ext4-unsupported', `unsupported ext4 incompat feature(s): ${names.join(', ')}`, { file: src.name });
  }
  return sb;
}

/** sparse_super: groups 0, 1 and powers of 3, 5 and 7 carry superblock backups. */
function groupHasSuperblock(sb: Superblock, group: number): boolean {
  if (group <= 1 || !(sb.featureRoCompat & RO_COMPAT_SPARSE_SUPER)) return true;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < group) p *= base;
    if (p === group) return true;
  }
  return false;
}

/**
 * Byte offset of group `group`'s descriptor. Without meta_bg the descriptors follow the block holding the
 * superblock (block 1 with 1 KiB blocks, else block 0; not s_first_data_block, which bigalloc sets to 0);
 * with meta_bg each meta group of (blockSize / descSize) groups keeps its descriptor block in its first group.
 */
export function groupDescriptorOffset(sb: Superblock, group: number): number {
  const perBlock = sb.blockSize / sb.descSize;
  const metaGroup = Math.floor(group / perBlock);
  const superblockBlock = Math.floor(SUPERBLOCK_OFFSET / sb.blockSize);
  if (!(sb.featureIncompat & INCOMPAT_META_BG) || metaGroup < sb.firstMetaBg) {
    return (superblockBlock + 1) * sb.blockSize + group * sb.descSize;
  }
  const first = metaGroup * perBlock;
  let block = sb.firstDataBlock + first * sb.blocksPerGroup + (groupHasSuperblock(sb, first) ? 1 : 0);
  // 1 KiB blocks with s_first_data_block 0 (bigalloc): group 0's superblock occupies block 1, not block 0.
  if (first === 0 && sb.firstDataBlock === 0 && superblockBlock === 1) block++;
  return block * sb.blockSize + (group % perBlock) * sb.descSize;
}
