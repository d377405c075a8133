import { Readable } from 'node:stream';
import { InvalidInputError } from '../../errors.ts';
import { CachedReader } from '../disk/cached-reader.ts';
import { readPieces, type Piece } from '../disk/pieces.ts';
import type { Entry, FileTree } from '../file-tree.ts';
import type { RandomAccessSource } from '../source.ts';
import { BlockMapper } from './block-map.ts';
import { dirBlockChecksumOk, groupDescriptorChecksumOk, inodeChecksumOk, inodeSeed, xattrBlockChecksumOk } from './checksum.ts';
import { parseDirBlock, type DirEntry } from './directory.ts';
import { deviceNumber, FL_ENCRYPT, FL_EXTENTS, FL_INLINE_DATA, parseInode, type Inode } from './inode.ts';
import { groupDescriptorOffset, INCOMPAT_64BIT, INCOMPAT_FILETYPE, readSuperblock, type Superblock } from './superblock.ts';
import { aclToXattr, parseXattrEntries, XATTR_MAGIC, type StoredXattr } from './xattr.ts';

/** Bounds for content read whole into memory: directories, symlink targets, xattr values. */
const MAX_DIR_BYTES = 256 << 20;
const MAX_SYMLINK_BYTES = 65536;
const MAX_XATTR_VALUE = 65536;
const ROOT_INO = 2;
const INLINE_DATA_XATTR = 'system.data';

/**
 * Open an ext2, ext3 or ext4 image as a FileTree. Pure TypeScript, read-only, no mount.
 * With metadata_csum the CRC32C of the superblock, group descriptors, inodes, extent blocks, directory
 * leaf blocks and xattr blocks is verified as each is read (htree index blocks are skipped, not checked).
 * Every structure is also bounds- and sanity-checked, so corruption ends in an InvalidInputError rather
 * than a hang or a wild read.
 */
export async function openExt4(src: RandomAccessSource): Promise<FileTree> {
  const sb = await readSuperblock(src);
  return new Ext4Tree(src, sb);
}

class Ext4Tree implements FileTree {
  private readonly meta: CachedReader;
  private readonly mapper: BlockMapper;
  /** Groups whose descriptor passed its checksum. */
  private readonly checkedGroups = new Set<number>();
  /** Sectors an xattr block accounts for in i_blocks (a cluster with bigalloc). */
  private readonly eaSectors: number;

  constructor(
    private readonly src: RandomAccessSource,
    private readonly sb: Superblock,
  ) {
    this.meta = new CachedReader(src);
    this.mapper = new BlockMapper(sb, this.meta, src.name);
    this.eaSectors = sb.clusterSize / 512;
  }

  private corrupt(what: string): InvalidInputError {
    return new InvalidInputError('ext4-corrupt', `${what}; the filesystem is corrupt (check it with 'e2fsck -fn')`, { file: this.src.name });
  }

  private async inode(ino: number): Promise<Inode> {
    const sb = this.sb;
    if (ino < 1 || ino > sb.inodesCount) throw this.corrupt(`inode number ${ino} is out of range 1..${sb.inodesCount}`);
    const group = Math.floor((ino - 1) / sb.inodesPerGroup);
    const index = (ino - 1) % sb.inodesPerGroup;
    const desc = await this.meta.read(groupDescriptorOffset(sb, group), sb.descSize);
    if (sb.checksumSeed !== undefined && !this.checkedGroups.has(group)) {
      if (!groupDescriptorChecksumOk(sb.checksumSeed, group, desc)) throw this.corrupt(`group ${group}'s descriptor fails its metadata_csum checksum`);
      this.checkedGroups.add(group);
    }
    const table = desc.readUInt32LE(8) + (sb.featureIncompat & INCOMPAT_64BIT && sb.descSize >= 64 ? desc.readUInt32LE(0x28) * 2 ** 32 : 0);
    const tableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize);
    if (table < 1 || table + tableBlocks > sb.blocksCount) throw this.corrupt(`group ${group}'s inode table at block ${table} lies outside the filesystem`);
    const raw = await this.meta.read(table * sb.blockSize + index * sb.inodeSize, sb.inodeSize);
    if (sb.checksumSeed !== undefined && !inodeChecksumOk(sb.checksumSeed, ino, raw)) throw this.corrupt(`inode ${ino} fails its metadata_csum checksum`);
    return parseInode(sb, ino, raw);
  }

  /** Stored xattrs of an inode: the in-inode area, then the xattr block. */
  private async storedXattrs(inode: Inode): Promise<StoredXattr[]> {
    const where = `inode ${inode.ino}`;
    const list: StoredXattr[] = [];
    const area = inode.xattrArea;
    if (area.length >= 4 && area.readUInt32LE(0) === XATTR_MAGIC) list.push(...parseXattrEntries(area, 4, 4, where, this.src.name));
    if (inode.fileAcl !== 0) {
      if (inode.fileAcl >= this.sb.blocksCount) throw this.corrupt(`${where}: xattr block ${inode.fileAcl} lies outside the filesystem`);
      const block = await this.meta.read(inode.fileAcl * this.sb.blockSize, this.sb.blockSize);
      if (block.readUInt32LE(0) !== XATTR_MAGIC || block.readUInt32LE(8) !== 1) throw this.corrupt(`${where}: xattr block ${inode.fileAcl} has a bad header`);
      if (this.sb.checksumSeed !== undefined && !xattrBlockChecksumOk(this.sb.checksumSeed, inode.fileAcl, block)) {
        throw this.corrupt(`${where}: xattr block ${inode.fileAcl} fails its metadata_csum checksum`);
      }
      list.push(...parseXattrEntries(block, 32, 0, where, this.src.name));
    }
    return list;
  }

  private async xattrs(inode: Inode): Promise<Record<string, Buffer> | undefined> {
    const stored = (await this.storedXattrs(inode)).filter((x) => x.name !== INLINE_DATA_XATTR);
    if (stored.length === 0) return undefined;
    stored.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const out: Record<string, Buffer> = {};
    for (const x of stored) {
      let value = x.value;
      if (value === undefined) {
        if (x.valueSize > MAX_XATTR_VALUE) throw this.corrupt(`inode ${inode.ino}: xattr ${x.name} claims ${x.valueSize} bytes`);
        const ea = await this.inode(x.valueInode!);
        if (ea.type !== 'file' || ea.size !== x.valueSize) throw this.corrupt(`inode ${inode.ino}: xattr ${x.name} points to a bad EA inode ${x.valueInode}`);
        value = await this.readAll(ea, MAX_XATTR_VALUE);
      }
      if (x.name === 'system.posix_acl_access' || x.name === 'system.posix_acl_default') value = aclToXattr(value, `inode ${inode.ino}`, this.src.name);
      out[x.name] = Buffer.from(value);
    }
    return out;
  }

  /** Inline data: the first 60 bytes in i_block, the rest in the in-inode "system.data" xattr. */
  private async inlineData(inode: Inode): Promise<Buffer> {
    const head = inode.block.subarray(0, Math.min(60, inode.size));
    if (inode.size <= 60) return head;
    const rest = (await this.storedXattrs(inode)).find((x) => x.name === INLINE_DATA_XATTR)?.value;
    if (!rest || head.length + rest.length < inode.size) throw this.corrupt(`inode ${inode.ino}: inline data is shorter than the ${inode.size}-byte size`);
    return Buffer.concat([head, rest]).subarray(0, inode.size);
  }

  /** The bytes of a regular file (or directory, symlink, EA inode) in order, holes as zeros. */
  private async *content(inode: Inode): AsyncGenerator<Buffer> {
    if (inode.flags & FL_ENCRYPT) throw new InvalidInputError('ext4-unsupported', `inode ${inode.ino} is encrypted (fscrypt); its content cannot be read`, { file: this.src.name });
    if (inode.flags & FL_INLINE_DATA) {
      // A copy: the inline bytes are a view of the shared metadata cache.
      yield Buffer.from(await this.inlineData(inode));
      return;
    }
    yield* readPieces(this.src, this.pieces(inode));
  }

  /** Where each stretch of an extent- or block-mapped inode's content lies, holes and unwritten extents as zeros. */
  private async *pieces(inode: Inode): AsyncGenerator<Piece> {
    const bs = this.sb.blockSize;
    const size = inode.size;
    const blocks = Math.ceil(size / bs);
    if (blocks > this.mapper.maxBlocks(inode)) throw this.corrupt(`inode ${inode.ino}: size ${size} is beyond what its block map can address`);
    let pos = 0;
    for await (const run of this.mapper.runs(inode, blocks)) {
      const start = run.logical * bs;
      const end = Math.min(size, (run.logical + run.count) * bs);
      if (start > pos) yield { zeros: start - pos };
      yield run.zero ? { zeros: end - start } : { at: run.physical * bs, length: end - start };
      pos = end;
    }
    if (size > pos) yield { zeros: size - pos };
  }

  /** Small content read whole: directories, slow symlinks, EA inode values. */
  private async readAll(inode: Inode, max: number): Promise<Buffer> {
    if (inode.size > max) throw this.corrupt(`inode ${inode.ino}: size ${inode.size} exceeds the ${max}-byte bound for its kind`);
    const parts: Buffer[] = [];
    for await (const b of this.content(inode)) parts.push(b);
    return Buffer.concat(parts);
  }

  private async children(dir: Inode, path: string): Promise<DirEntry[]> {
    const where = `directory ${path} (inode ${dir.ino})`;
    const hasFileType = (this.sb.featureIncompat & INCOMPAT_FILETYPE) !== 0;
    const out: DirEntry[] = [];
    if (dir.flags & FL_ENCRYPT) throw new InvalidInputError('ext4-unsupported', `${where} is encrypted (fscrypt); its names cannot be read`, { file: this.src.name });
    if (dir.flags & FL_INLINE_DATA) {
      // Inline directories: 4 bytes of parent inode, entries in the rest of i_block, more in system.data.
      const data = await this.inlineData(dir);
      parseDirBlock(data.subarray(4, Math.min(60, data.length)), this.sb.blockSize, hasFileType, out, where, this.src.name);
      if (data.length > 60) parseDirBlock(data.subarray(60), this.sb.blockSize, hasFileType, out, where, this.src.name);
    } else {
      if (dir.size > MAX_DIR_BYTES) throw this.corrupt(`${where}: size ${dir.size} is beyond the ${MAX_DIR_BYTES}-byte bound`);
      const bs = this.sb.blockSize;
      const seed = this.sb.checksumSeed === undefined ? undefined : inodeSeed(this.sb.checksumSeed, dir.ino, dir.generation);
      for await (const chunk of this.content(dir)) {
        for (let at = 0; at < chunk.length; at += bs) {
          const block = chunk.subarray(at, at + bs);
          // htree index blocks carry their checksum elsewhere (dx_tail) and are not checked.
          const leafWithTail = parseDirBlock(block, bs, hasFileType, out, where, this.src.name);
          if (seed !== undefined && leafWithTail && !dirBlockChecksumOk(seed, block)) throw this.corrupt(`${where}: a directory block fails its metadata_csum checksum`);
        }
      }
    }
    out.sort((a, b) => Buffer.compare(a.name, b.name));
    for (let i = 1; i < out.length; i++) {
      if (out[i]!.name.equals(out[i - 1]!.name)) throw this.corrupt(`${where}: the name ${out[i]!.name.toString()} appears twice`);
    }
    return out;
  }

  private async entry(path: string, inode: Inode): Promise<Entry> {
    if (!inode.type) throw this.corrupt(`${path} (inode ${inode.ino}) has an invalid mode 0${inode.mode.toString(8)}`);
    const e: Entry = {
      path,
      type: inode.type,
      mode: inode.mode & 0o7777,
      uid: inode.uid,
      gid: inode.gid,
      mtime: inode.mtime,
      size: inode.type === 'file' ? inode.size : 0,
      nlink: inode.nlink,
      inode: inode.ino,
    };
    if (inode.type === 'symlink') e.target = (await this.symlinkTarget(inode)).toString('utf8');
    if (inode.type === 'chr' || inode.type === 'blk') e.rdev = deviceNumber(inode);
    const xattrs = await this.xattrs(inode);
    if (xattrs) e.xattrs = xattrs;
    return e;
  }

  /** Fast symlinks keep the target in i_block and own no blocks (ext4_inode_is_fast_symlink). */
  private async symlinkTarget(inode: Inode): Promise<Buffer> {
    if (inode.flags & FL_INLINE_DATA) return this.inlineData(inode);
    const owned = inode.sectors - (inode.fileAcl ? this.eaSectors : 0);
    if (!(inode.flags & FL_EXTENTS) && inode.size < 60 && owned <= 0) return Buffer.from(inode.block.subarray(0, inode.size));
    return this.readAll(inode, MAX_SYMLINK_BYTES);
  }

  async *walk(): AsyncGenerator<Entry> {
    const root = await this.inode(ROOT_INO);
    if (root.type !== 'dir') throw this.corrupt('the root inode is not a directory');
    yield await this.entry('/', root);
    // Directories cannot be hardlinked: meeting one twice means the tree loops.
    const seenDirs = new Set<number>([ROOT_INO]);
    const stack: { path: string; children: DirEntry[]; next: number }[] = [{ path: '/', children: await this.children(root, '/'), next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next >= top.children.length) {
        stack.pop();
        continue;
      }
      const child = top.children[top.next++]!;
      const path = (top.path === '/' ? '/' : top.path + '/') + child.name.toString('utf8');
      const inode = await this.inode(child.inode);
      yield await this.entry(path, inode);
      if (inode.type === 'dir') {
        if (seenDirs.has(inode.ino)) throw this.corrupt(`directory ${path} (inode ${inode.ino}) appears twice: the directory tree loops`);
        seenDirs.add(inode.ino);
        stack.push({ path, children: await this.children(inode, path), next: 0 });
      }
    }
  }

  open(entry: Entry): Readable {
    const self = this;
    async function* gen(): AsyncGenerator<Buffer> {
      const inode = await self.inode(entry.inode);
      if (inode.type !== 'file') throw new InvalidInputError('not-a-file', `${entry.path} is not a regular file`, { file: self.src.name });
      yield* self.content(inode);
    }
    return Readable.from(gen(), { objectMode: false });
  }

  /** The tree holds no resources of its own: the source belongs to whoever opened it. */
  async close(): Promise<void> {}
}
