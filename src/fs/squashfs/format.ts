/** Squashfs 4.0 on-disk constants and the superblock, shared by the reader and the writer. */

export const SQUASHFS_MAGIC = 0x73717368; // "hsqs" little-endian
export const SUPERBLOCK_SIZE = 96;
export const METADATA_SIZE = 8192;
/** Metadata block header bit: the block is stored uncompressed. */
export const METADATA_UNCOMPRESSED = 0x8000;
/** Data block / fragment size word bit: the block is stored uncompressed. */
export const DATA_UNCOMPRESSED = 1 << 24;
export const NO_FRAGMENT = 0xffffffff;
export const NO_XATTR = 0xffffffff;
export const INVALID_TABLE = 0xffffffffffffffffn;

export const enum Flag {
  UncompressedInodes = 0x1,
  UncompressedData = 0x2,
  UncompressedFragments = 0x8,
  NoFragments = 0x10,
  AlwaysFragments = 0x20,
  Duplicates = 0x40,
  Exportable = 0x80,
  UncompressedXattrs = 0x100,
  NoXattrs = 0x200,
  CompressorOptions = 0x400,
  UncompressedIds = 0x800,
}

export const enum InodeType {
  Dir = 1,
  File = 2,
  Symlink = 3,
  Blk = 4,
  Chr = 5,
  Fifo = 6,
  Sock = 7,
  LDir = 8,
  LFile = 9,
  LSymlink = 10,
  LBlk = 11,
  LChr = 12,
  LFifo = 13,
  LSock = 14,
}

export const COMPRESSORS: Record<number, 'zlib' | 'lzma' | 'lzo' | 'xz' | 'lz4' | 'zstd'> = {
  1: 'zlib',
  2: 'lzma',
  3: 'lzo',
  4: 'xz',
  5: 'lz4',
  6: 'zstd',
};

/** Xattr name prefixes by type id; bit 0x100 of the stored type marks an out-of-line value. */
export const XATTR_PREFIXES = ['user.', 'trusted.', 'security.'] as const;
export const XATTR_VALUE_OOL = 0x100;

export interface Superblock {
  inodeCount: number;
  modTime: number;
  blockSize: number;
  fragCount: number;
  compressor: number;
  blockLog: number;
  flags: number;
  idCount: number;
  rootInode: bigint;
  bytesUsed: number;
  idTable: number;
  xattrIdTable: bigint;
  inodeTable: number;
  directoryTable: number;
  fragmentTable: bigint;
  exportTable: bigint;
}

export function parseSuperblock(b: Buffer): Superblock {
  return {
    inodeCount: b.readUInt32LE(4),
    modTime: b.readUInt32LE(8),
    blockSize: b.readUInt32LE(12),
    fragCount: b.readUInt32LE(16),
    compressor: b.readUInt16LE(20),
    blockLog: b.readUInt16LE(22),
    flags: b.readUInt16LE(24),
    idCount: b.readUInt16LE(26),
    rootInode: b.readBigUInt64LE(32),
    bytesUsed: Number(b.readBigUInt64LE(40)),
    idTable: Number(b.readBigUInt64LE(48)),
    xattrIdTable: b.readBigUInt64LE(56),
    inodeTable: Number(b.readBigUInt64LE(64)),
    directoryTable: Number(b.readBigUInt64LE(72)),
    fragmentTable: b.readBigUInt64LE(80),
    exportTable: b.readBigUInt64LE(88),
  };
}

export function writeSuperblock(s: Superblock): Buffer {
  const b = Buffer.alloc(SUPERBLOCK_SIZE);
  b.writeUInt32LE(SQUASHFS_MAGIC, 0);
  b.writeUInt32LE(s.inodeCount, 4);
  b.writeUInt32LE(s.modTime, 8);
  b.writeUInt32LE(s.blockSize, 12);
  b.writeUInt32LE(s.fragCount, 16);
  b.writeUInt16LE(s.compressor, 20);
  b.writeUInt16LE(s.blockLog, 22);
  b.writeUInt16LE(s.flags, 24);
  b.writeUInt16LE(s.idCount, 26);
  b.writeUInt16LE(4, 28);
  b.writeUInt16LE(0, 30);
  b.writeBigUInt64LE(s.rootInode, 32);
  b.writeBigUInt64LE(BigInt(s.bytesUsed), 40);
  b.writeBigUInt64LE(BigInt(s.idTable), 48);
  b.writeBigUInt64LE(s.xattrIdTable, 56);
  b.writeBigUInt64LE(BigInt(s.inodeTable), 64);
  b.writeBigUInt64LE(BigInt(s.directoryTable), 72);
  b.writeBigUInt64LE(s.fragmentTable, 80);
  b.writeBigUInt64LE(s.exportTable, 88);
  return b;
}

/** Kernel dev_t packing used in squashfs device inodes (new_encode_dev). */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

export function decodeDev(dev: number): { major: number; minor: number } {
  return { major: (dev >>> 8) & 0xfff, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
}
