/**
 * metadata_csum checks: CRC32C (Castagnoli) as ext4_chksum computes it — the raw reflected update with
 * no final inversion, seeded from the filesystem UUID (or s_checksum_seed).
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

const ZERO2 = new Uint8Array(2);
const RO_COMPAT_METADATA_CSUM = 0x400;
const INCOMPAT_CSUM_SEED = 0x2000;

/** The per-filesystem seed, or undefined when the filesystem has no metadata checksums. */
export function checksumSeed(superblock: Buffer): number | undefined {
  if (!(superblock.readUInt32LE(0x64) & RO_COMPAT_METADATA_CSUM)) return undefined;
  if (superblock.readUInt32LE(0x60) & INCOMPAT_CSUM_SEED) return superblock.readUInt32LE(0x270);
  return crc32c(0xffffffff, superblock.subarray(0x68, 0x78));
}

/** s_checksum covers the superblock up to itself. */
export function superblockChecksumOk(superblock: Buffer): boolean {
  return crc32c(0xffffffff, superblock.subarray(0, 0x3fc)) === superblock.readUInt32LE(0x3fc);
}

/** The per-inode seed (ext4's i_csum_seed): the filesystem seed extended with inode number and generation. */
export function inodeSeed(seed: number, ino: number, generation: number): number {
  const le = Buffer.alloc(8);
  le.writeUInt32LE(ino, 0);
  le.writeUInt32LE(generation, 4);
  return crc32c(seed, le);
}

/**
 * ext4_inode_csum: from the inode's seed, over the whole on-disk inode with the two checksum halves read as
 * zero; only the low 16 bits are stored when i_extra_isize does not cover the high half.
 */
export function inodeChecksumOk(seed: number, ino: number, raw: Buffer): boolean {
  let c = inodeSeed(seed, ino, raw.readUInt32LE(0x64));
  c = crc32c(c, raw.subarray(0, 0x7c));
  c = crc32c(c, ZERO2);
  c = crc32c(c, raw.subarray(0x7e, 0x80));
  let stored = raw.readUInt16LE(0x7c);
  let mask = 0xffff;
  if (raw.length > 128) {
    const hasHi = raw.readUInt16LE(0x80) >= 4;
    c = crc32c(c, raw.subarray(0x80, 0x82));
    if (hasHi) {
      c = crc32c(c, ZERO2);
      stored |= raw.readUInt16LE(0x82) << 16;
      mask = 0xffffffff;
      c = crc32c(c, raw.subarray(0x84));
    } else {
      c = crc32c(c, raw.subarray(0x82));
    }
  }
  return ((c & mask) >>> 0) === stored >>> 0;
}

/** An extent tree block: the tail after eh_max entries holds the CRC32C of everything before it. */
export function extentBlockChecksumOk(inodeSeedValue: number, block: Buffer): boolean {
  const tail = 12 + 12 * block.readUInt16LE(4);
  if (tail + 4 > block.length) return false;
  return crc32c(inodeSeedValue, block.subarray(0, tail)) === block.readUInt32LE(tail);
}

/** A directory leaf block's last 12 bytes are a fake entry whose last 4 hold the CRC32C of the rest. */
export function dirBlockChecksumOk(inodeSeedValue: number, block: Buffer): boolean {
  const t = block.length - 12;
  return crc32c(inodeSeedValue, block.subarray(0, t)) === block.readUInt32LE(t + 8);
}

/** An xattr block: seeded with its block number (64-bit), h_checksum (offset 0x10) read as zero. */
export function xattrBlockChecksumOk(seed: number, blockNumber: number, block: Buffer): boolean {
  const le = Buffer.alloc(8);
  le.writeBigUInt64LE(BigInt(blockNumber));
  let c = crc32c(seed, le);
  c = crc32c(c, block.subarray(0, 0x10));
  c = crc32c(c, Buffer.alloc(4));
  c = crc32c(c, block.subarray(0x14));
  return c === block.readUInt32LE(0x10);
}

/** ext4_group_desc_csum with metadata_csum: the low 16 bits of a CRC32C over group number and descriptor. */
export function groupDescriptorChecksumOk(seed: number, group: number, desc: Buffer): boolean {
  const le = Buffer.alloc(4);
  le.writeUInt32LE(group);
  let c = crc32c(seed, le);
  c = crc32c(c, desc.subarray(0, 0x1e));
  c = crc32c(c, ZERO2);
  c = crc32c(c, desc.subarray(0x20));
  return (c & 0xffff) === desc.readUInt16LE(0x1e);
}
