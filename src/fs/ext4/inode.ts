import type { EntryType } from '../file-tree.ts';
import { RO_COMPAT_HUGE_FILE, type Superblock } from './superblock.ts';

// i_flags bits the reader acts on.
export const FL_ENCRYPT = 0x800;
export const FL_HUGE_FILE = 0x40000;
export const FL_EXTENTS = 0x80000;
export const FL_INLINE_DATA = 0x10000000;

/** The fields of one on-disk inode (struct ext4_inode) a faithful copy needs. */
export interface Inode {
  ino: number;
  mode: number;
  type: EntryType | undefined;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  flags: number;
  /** i_generation: part of the seed of this inode's metadata checksums. */
  generation: number;
  /** Seconds since the epoch, with the extra epoch bits of i_mtime_extra when the inode has them. */
  mtime: number;
  /** i_block: extent root, block pointers, inline data, fast symlink target or device number. */
  block: Buffer;
  /** Block holding this inode's extended attributes (0 when none). */
  fileAcl: number;
  /** Allocated space in 512-byte units (for telling fast symlinks from slow ones). */
  sectors: number;
  /** The in-inode extended attribute area (after i_extra_isize), empty when there is none. */
  xattrArea: Buffer;
}

const TYPES: Record<number, EntryType> = {
  0x1000: 'fifo',
  0x2000: 'chr',
  0x4000: 'dir',
  0x6000: 'blk',
  0x8000: 'file',
  0xa000: 'symlink',
  0xc000: 'sock',
};

/** Decode a raw inode of `sb.inodeSize` bytes. `type` is undefined for a mode no Linux file type has. */
export function parseInode(sb: Superblock, ino: number, raw: Buffer): Inode {
  const mode = raw.readUInt16LE(0);
  const flags = raw.readUInt32LE(0x20);
  const extraIsize = raw.length > 128 ? raw.readUInt16LE(0x80) : 0;
  let mtime = raw.readInt32LE(0x10);
  // i_mtime_extra (0x88) holds 2 epoch bits and the nanoseconds; present when i_extra_isize covers it.
  if (extraIsize >= 0x8c - 0x80 && raw.length >= 0x8c) mtime += (raw.readUInt32LE(0x88) & 3) * 2 ** 32;
  let sectors = raw.readUInt32LE(0x1c);
  if (sb.featureRoCompat & RO_COMPAT_HUGE_FILE) {
    sectors += raw.readUInt16LE(0x74) * 2 ** 32;
    if (flags & FL_HUGE_FILE) sectors *= sb.blockSize / 512;
  }
  const xattrStart = 128 + extraIsize;
  return {
    ino,
    mode,
    type: TYPES[mode & 0xf000],
    uid: raw.readUInt16LE(0x02) | (raw.readUInt16LE(0x78) << 16),
    gid: raw.readUInt16LE(0x18) | (raw.readUInt16LE(0x7a) << 16),
    size: raw.readUInt32LE(0x04) + raw.readUInt32LE(0x6c) * 2 ** 32,
    nlink: raw.readUInt16LE(0x1a),
    flags,
    generation: raw.readUInt32LE(0x64),
    mtime,
    block: raw.subarray(0x28, 0x28 + 60),
    fileAcl: raw.readUInt32LE(0x68) + raw.readUInt16LE(0x76) * 2 ** 32,
    sectors,
    xattrArea: raw.length > 128 && xattrStart + 4 <= raw.length ? raw.subarray(xattrStart) : Buffer.alloc(0),
  };
}

/**
 * Device number from i_block: the old 16-bit encoding in word 0, else the new one in word 1
 * (major 12 bits, minor 20 bits split around it), as the kernel's ext4_iget reads them.
 */
export function deviceNumber(inode: Inode): { major: number; minor: number } {
  const old = inode.block.readUInt32LE(0);
  if (old !== 0) return { major: (old >> 8) & 0xff, minor: old & 0xff };
  const dev = inode.block.readUInt32LE(4);
  return { major: (dev & 0xfff00) >>> 8, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
}
