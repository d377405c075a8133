import { InvalidInputError } from '../../errors.ts';

export const XATTR_MAGIC = 0xea020000;

/** One stored attribute: the value is inline, or lives in an EA inode (ea_inode feature). */
export interface StoredXattr {
  name: string;
  value?: Buffer;
  valueInode?: number;
  valueSize: number;
}

/** e_name_index → the prefix the VFS shows (fs/ext4/xattr.c). 2 and 3 are complete names. */
const PREFIXES: Record<number, string> = {
  1: 'user.',
  2: 'system.posix_acl_access',
  3: 'system.posix_acl_default',
  4: 'trusted.',
  6: 'security.',
  7: 'system.',
  8: 'system.richacl',
};

/**
 * Parse the entry table of an xattr region (after the in-inode magic, or at offset 32 of an xattr block).
 * Values sit at `valueBase + e_value_offs` in `region`; every offset is bounds-checked.
 */
export function parseXattrEntries(region: Buffer, entriesStart: number, valueBase: number, where: string, file: string): StoredXattr[] {
  const bad = (what: string) => new InvalidInputError('ext4-corrupt', `${where}: ${what}; the filesystem is corrupt (check it with 'e2fsck -fn')`, { file });
  const out: StoredXattr[] = [];
  let pos = entriesStart;
  while (pos + 4 <= region.length && region.readUInt32LE(pos) !== 0) {
    if (pos + 16 > region.length) throw bad('xattr entry runs past its area');
    const nameLen = region[pos]!;
    const index = region[pos + 1]!;
    const valueOffs = region.readUInt16LE(pos + 2);
    const valueInode = region.readUInt32LE(pos + 4);
    const valueSize = region.readUInt32LE(pos + 8);
    if (pos + 16 + nameLen > region.length) throw bad('xattr name runs past its area');
    const suffix = region.subarray(pos + 16, pos + 16 + nameLen).toString('utf8');
    const prefix = PREFIXES[index];
    if (prefix === undefined) throw bad(`unknown xattr name index ${index}`);
    const name = prefix + suffix;
    if (valueInode !== 0) {
      out.push({ name, valueInode, valueSize });
    } else {
      const at = valueBase + valueOffs;
      if (at + valueSize > region.length) throw bad(`value of xattr ${name} runs past its area`);
      out.push({ name, value: region.subarray(at, at + valueSize), valueSize });
    }
    pos += (16 + nameLen + 3) & ~3;
  }
  return out;
}

const ACL_USER = 2;
const ACL_GROUP = 8;

/**
 * ext4 stores POSIX ACLs compactly (version 1, ids only for named users and groups); user space sees the
 * generic xattr form (version 2, 8-byte entries, id 0xffffffff where none). Convert as ext4_acl_from_disk
 * followed by posix_acl_to_xattr would.
 */
export function aclToXattr(disk: Buffer, where: string, file: string): Buffer {
  const bad = () => new InvalidInputError('ext4-corrupt', `${where}: malformed POSIX ACL xattr; the filesystem is corrupt`, { file });
  if (disk.length < 4 || disk.readUInt32LE(0) !== 1) throw bad();
  const entries: Buffer[] = [];
  const header = Buffer.alloc(4);
  header.writeUInt32LE(2, 0);
  entries.push(header);
  let pos = 4;
  while (pos < disk.length) {
    if (pos + 4 > disk.length) throw bad();
    const tag = disk.readUInt16LE(pos);
    const e = Buffer.alloc(8);
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(disk.readUInt16LE(pos + 2), 2);
    if (tag === ACL_USER || tag === ACL_GROUP) {
      if (pos + 8 > disk.length) throw bad();
      e.writeUInt32LE(disk.readUInt32LE(pos + 4), 4);
      pos += 8;
    } else {
      e.writeUInt32LE(0xffffffff, 4);
      pos += 4;
    }
    entries.push(e);
  }
  return Buffer.concat(entries);
}
