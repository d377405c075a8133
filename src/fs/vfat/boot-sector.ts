import { InvalidInputError } from '../../errors.ts';

export type FatType = 12 | 16 | 32;

/** The geometry a FAT volume's BIOS parameter block describes, in bytes where that is what readers need. */
export interface FatGeometry {
  fatType: FatType;
  bytesPerSector: number;
  clusterSize: number;
  /** Byte offset of the FAT in use (the first, or the active one when FAT32 mirroring is off). */
  fatOffset: number;
  fatBytes: number;
  /** FAT12/16: the fixed root directory region; FAT32 has a root cluster instead. */
  rootDirOffset: number;
  rootDirBytes: number;
  rootCluster: number;
  /** Byte offset of cluster 2. */
  dataOffset: number;
  /** Highest valid cluster number + 1 (clusters are numbered from 2). */
  clusterLimit: number;
  totalBytes: number;
}

interface Bpb {
  bytesPerSector: number;
  sectorsPerCluster: number;
  reserved: number;
  fats: number;
  rootEntries: number;
  totalSectors: number;
  fatSectors: number;
  media: number;
}

function bpb(b: Buffer): Bpb | undefined {
  if (b.length < 512 || b[510] !== 0x55 || b[511] !== 0xaa) return undefined;
  if (b[0] !== 0xeb && b[0] !== 0xe9) return undefined;
  const v: Bpb = {
    bytesPerSector: b.readUInt16LE(11),
    sectorsPerCluster: b[13]!,
    reserved: b.readUInt16LE(14),
    fats: b[16]!,
    rootEntries: b.readUInt16LE(17),
    totalSectors: b.readUInt16LE(19) || b.readUInt32LE(32),
    fatSectors: b.readUInt16LE(22) || b.readUInt32LE(36),
    media: b[21]!,
  };
  const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  if (![512, 1024, 2048, 4096].includes(v.bytesPerSector) || !pow2(v.sectorsPerCluster) || v.sectorsPerCluster > 128) return undefined;
  if (v.reserved === 0 || v.fats === 0 || v.fats > 4 || v.totalSectors === 0 || v.fatSectors === 0) return undefined;
  if (v.media !== 0xf0 && v.media < 0xf8) return undefined;
  return v;
}

/** True when the first sector is a FAT boot sector with a sane BIOS parameter block. */
export function isVfat(head: Buffer): boolean {
  return bpb(head.subarray(0, 512)) !== undefined;
}

/** Decode the boot sector into volume geometry; the FAT type follows from the cluster count, as the spec says. */
export function parseBootSector(b: Buffer, sourceSize: number, file: string): FatGeometry {
  const v = bpb(b);
  if (!v) throw new InvalidInputError('vfat-corrupt', 'not a FAT filesystem: the boot sector has no valid BIOS parameter block', { file });
  const bps = v.bytesPerSector;
  const rootDirSectors = Math.ceil((v.rootEntries * 32) / bps);
  const dataSector = v.reserved + v.fats * v.fatSectors + rootDirSectors;
  if (dataSector >= v.totalSectors) throw new InvalidInputError('vfat-corrupt', 'the FAT boot sector leaves no room for data', { file });
  const clusters = Math.floor((v.totalSectors - dataSector) / v.sectorsPerCluster);
  const fatType: FatType = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
  let fatIndex = 0;
  let rootCluster = 0;
  if (fatType === 32) {
    const extFlags = b.readUInt16LE(40);
    // Bit 7 set: mirroring off, bits 0-3 name the one active FAT.
    if (extFlags & 0x80) fatIndex = extFlags & 0xf;
    if (fatIndex >= v.fats) throw new InvalidInputError('vfat-corrupt', `the active FAT ${fatIndex} does not exist`, { file });
    rootCluster = b.readUInt32LE(44);
  }
  const geometry: FatGeometry = {
    fatType,
    bytesPerSector: bps,
    clusterSize: bps * v.sectorsPerCluster,
    fatOffset: (v.reserved + fatIndex * v.fatSectors) * bps,
    fatBytes: v.fatSectors * bps,
    rootDirOffset: (v.reserved + v.fats * v.fatSectors) * bps,
    rootDirBytes: rootDirSectors * bps,
    rootCluster,
    dataOffset: dataSector * bps,
    clusterLimit: clusters + 2,
    totalBytes: v.totalSectors * bps,
  };
  if (Math.ceil((geometry.clusterLimit * fatType) / 8) > geometry.fatBytes) {
    throw new InvalidInputError('vfat-corrupt', `the FAT (${geometry.fatBytes} bytes) is too small for ${clusters} clusters`, { file });
  }
  if (geometry.totalBytes > sourceSize) {
    throw new InvalidInputError('truncated', `the FAT volume spans ${geometry.totalBytes} bytes but the image holds ${sourceSize}; the image is truncated`, { file });
  }
  if (fatType === 32 && (rootCluster < 2 || rootCluster >= geometry.clusterLimit)) {
    throw new InvalidInputError('vfat-corrupt', `the FAT32 root cluster ${rootCluster} is out of range`, { file });
  }
  return geometry;
}
