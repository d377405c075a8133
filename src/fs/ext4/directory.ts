import { InvalidInputError } from '../../errors.ts';

/** A live directory entry ("." and ".." and unused slots left out). */
export interface DirEntry {
  name: Buffer;
  inode: number;
}

/** rec_len as ext4_rec_len_from_disk decodes it: 64 KiB blocks need a 17th bit folded into the low two. */
function recLen(raw: number, blockSize: number): number {
  if (blockSize < 65536) return raw;
  if (raw === 65535 || raw === 0) return blockSize;
  return (raw & 65532) | ((raw & 3) << 16);
}

/**
 * Append the entries of one directory block (or an inline-data region) to `out`. htree directories are read
 * linearly: their index blocks look like one unused entry spanning the block, so they are skipped naturally.
 * An all-zero block (a hole) holds no entries. Returns true when the record chain ends in a metadata_csum
 * tail (inode 0, rec_len 12, name_len 0, type 0xde in the last 12 bytes): a leaf block with a checksum.
 */
export function parseDirBlock(block: Buffer, blockSize: number, hasFileType: boolean, out: DirEntry[], where: string, file: string): boolean {
  const bad = (what: string, at: number) =>
    new InvalidInputError('ext4-corrupt', `${where}: ${what} at byte ${at} of a directory block; the filesystem is corrupt (check it with 'e2fsck -fn')`, { file });
  let pos = 0;
  while (pos + 8 <= block.length) {
    const inode = block.readUInt32LE(pos);
    const rec = recLen(block.readUInt16LE(pos + 4), blockSize);
    if (rec === 0 && inode === 0 && block.subarray(pos).every((b) => b === 0)) return false;
    if (inode === 0 && rec === 12 && pos + 12 === block.length && block[pos + 6] === 0 && block[pos + 7] === 0xde) return true;
    const nameLen = hasFileType ? block[pos + 6]! : block.readUInt16LE(pos + 6);
    if (rec < 8 || rec % 4 !== 0 || pos + rec > block.length) throw bad(`invalid record length ${rec}`, pos);
    if (inode !== 0) {
      if (8 + nameLen > rec) throw bad(`name of ${nameLen} bytes overflows its ${rec}-byte record`, pos);
      const name = block.subarray(pos + 8, pos + 8 + nameLen);
      if (nameLen === 0 || name.includes(0x2f) || name.includes(0)) throw bad(`invalid entry name ${JSON.stringify(name.toString('latin1'))}`, pos);
      const dots = (nameLen === 1 && name[0] === 0x2e) || (nameLen === 2 && name[0] === 0x2e && name[1] === 0x2e);
      if (!dots) out.push({ name, inode });
    }
    pos += rec;
  }
  return false;
}
