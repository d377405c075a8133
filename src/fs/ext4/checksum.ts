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

/**
 * ext4_inode_csum: seeded with the inode number and generation, over the whole on-disk inode with the two
 * checksum halves read as zero; only the low 16 bits are stored when i_extra_isize does not cover the high half.
 */
export function inodeChecksumOk(seed: number, ino: number, raw: Buffer): boolean {
  const le = Buffer.alloc(4);
  le.writeUInt32LE(ino);
  let c = crc32c(seed, le);
  c = crc32c(c, raw.subarray(0x64, 0x68));
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
