import { open, rename, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { InvalidInputError, fromSystemError } from '../../errors.ts';
import { fsyncDir, tempPathFor } from '../atomic.ts';
import { compareNames, type Entry, type FileTree } from '../file-tree.ts';
import { CompressorPool, type WriterCompression } from './compressor.ts';
import { DataWriter, type FileData } from './data-writer.ts';
import { Flag, INVALID_TABLE, METADATA_SIZE, SUPERBLOCK_SIZE, writeSuperblock } from './format.ts';
import { MetadataWriter, type MetaRef } from './metadata-writer.ts';
import { encodeInode, XattrTable } from './tables.ts';

export interface SquashfsWriteOptions {
  comp?: WriterCompression;
  /** Compression threads (default: every core). The image does not depend on it. */
  workers?: number;
}

export interface SquashfsWriteResult {
  /** Image size including the padding to 4 KiB. */
  size: number;
  inodes: number;
  /** Xattrs squashfs cannot store (namespaces other than user, trusted, security), by path. */
  skippedXattrs: string[];
}

const BLOCK_SIZE = 128 * 1024;
const BLOCK_LOG = 17;
const BASIC_TYPE: Record<Entry['type'], number> = { dir: 1, file: 2, symlink: 3, blk: 4, chr: 5, fifo: 6, sock: 7 };

interface Node {
  entry: Entry;
  name: string;
  children?: Node[];
  /** Shared by hardlinks: one squashfs inode per group. */
  inode: InodeInfo;
}

interface InodeInfo {
  number: number;
  links: number;
  data?: FileData;
  ref?: bigint;
  xattr: number;
}

/**
 * Writes `tree` as a squashfs 4.0 image at `outPath` (temp file, renamed when complete). 128 KiB blocks,
 * fragments, duplicate files stored once, xattrs, ids, devices, hardlinks. Deterministic: the bytes depend
 * only on the tree, the compressor and the compressor's library version.
 */
export async function writeSquashfs(tree: FileTree, outPath: string, options: SquashfsWriteOptions = {}): Promise<SquashfsWriteResult> {
  const comp = options.comp ?? 'gzip';
  const workers = Math.max(1, options.workers ?? availableParallelism());

  // 1. Metadata of every entry (content is streamed later): inode groups, ids and xattr sets.
  const ids = new Map<number, number>();
  const idOf = (v: number): number => {
    let i = ids.get(v);
    if (i === undefined) {
      if (ids.size >= 65536) throw new InvalidInputError('too-many-ids', 'more than 65536 distinct uids/gids', { file: outPath });
      i = ids.size;
      ids.set(v, i);
    }
    return i;
  };
  const xattrs = new XattrTable(comp, BLOCK_SIZE);
  const groups = new Map<number, InodeInfo>();
  let root: Node | undefined;
  const stack: Node[] = [];
  for await (const entry of tree.walk()) {
    idOf(entry.uid);
    idOf(entry.gid);
    let info: InodeInfo;
    // Only entries that say they have other links are merged, so a tree with careless inode numbers
    // cannot fuse distinct files.
    const linkable = entry.type !== 'dir' && entry.nlink > 1;
    const shared = linkable ? groups.get(entry.inode) : undefined;
    if (shared) {
      info = shared;
      info.links++;
    } else {
      info = { number: 0, links: 1, xattr: xattrs.add(entry.xattrs, entry.path) };
      if (linkable) groups.set(entry.inode, info);
    }
    const name = entry.path === '/' ? '' : entry.path.slice(entry.path.lastIndexOf('/') + 1);
    const node: Node = { entry, name, inode: info, children: entry.type === 'dir' ? [] : undefined };
    if (!root) {
      if (entry.path !== '/' || entry.type !== 'dir') throw new InvalidInputError('bad-tree', `the tree must start with its root directory, got ${entry.path}`, { file: outPath });
      root = node;
      stack.push(node);
      continue;
    }
    const parentPath = entry.path.slice(0, entry.path.lastIndexOf('/')) || '/';
    while (stack.length > 0 && stack[stack.length - 1]!.entry.path !== parentPath) stack.pop();
    const parent = stack[stack.length - 1];
    if (!parent) throw new InvalidInputError('bad-tree', `${entry.path} comes outside its parent directory in the walk`, { file: outPath });
    parent.children!.push(node);
    if (node.children) stack.push(node);
  }
  if (!root) throw new InvalidInputError('bad-tree', 'the tree is empty', { file: outPath });

  // Inode numbers in the order inodes are written (children before their directory, the root last).
  // Listings must be name-sorted for the kernel's lookup and the directory index, whatever the walk did.
  let inodeCount = 0;
  const number = (n: Node): void => {
    const kids = n.children!;
    const sorted = kids.every((c, i) => i === 0 || compareNames(kids[i - 1]!.name, c.name) < 0);
    if (!sorted) kids.sort((a, b) => compareNames(a.name, b.name));
    for (let i = 1; i < kids.length; i++) {
      if (kids[i - 1]!.name === kids[i]!.name) throw new InvalidInputError('bad-tree', `${kids[i]!.entry.path} appears twice in the walk`, { file: outPath });
    }
    for (const c of kids) {
      if (c.children) number(c);
      else if (c.inode.number === 0) c.inode.number = ++inodeCount;
    }
    n.inode.number = ++inodeCount;
  };
  number(root);

  const tmp = tempPathFor(outPath);
  let handle;
  try {
    handle = await open(tmp, 'w', 0o644);
  } catch (err) {
    throw fromSystemError(err, outPath);
  }
  const pool = new CompressorPool(comp, BLOCK_SIZE, workers);
  try {
    // 2. File content, in walk order.
    const data = new DataWriter(handle, pool, BLOCK_SIZE, SUPERBLOCK_SIZE, workers);
    const storeFiles = async (n: Node): Promise<void> => {
      for (const c of n.children ?? []) {
        if (c.children) await storeFiles(c);
        else if (c.entry.type === 'file' && !c.inode.data) c.inode.data = await data.addFile(tree, c.entry);
      }
    };
    await storeFiles(root);
    await data.flush();

    // 3. Inodes and directories, children first.
    const inodes = new MetadataWriter(comp, BLOCK_SIZE);
    const dirs = new MetadataWriter(comp, BLOCK_SIZE);
    const toRef = (r: MetaRef): bigint => (BigInt(r.block) << 16n) | BigInt(r.offset);
    const writeDir = (n: Node, parentNumber: number): bigint => {
      const listed: { name: Buffer; ref: MetaRef; number: number; type: number }[] = [];
      let subdirs = 0;
      for (const c of n.children!) {
        let ref: MetaRef;
        if (c.children) {
          subdirs++;
          const r = writeDir(c, n.inode.number);
          ref = { block: Number(r >> 16n), offset: Number(r & 0xffffn) };
        } else {
          if (c.inode.ref === undefined) c.inode.ref = toRef(inodes.add(encodeInode(c.entry, c.inode, idOf, undefined)));
          ref = { block: Number(c.inode.ref >> 16n), offset: Number(c.inode.ref & 0xffffn) };
        }
        listed.push({ name: Buffer.from(c.name), ref, number: c.inode.number, type: BASIC_TYPE[c.entry.type] });
      }
      const { bytes: listing, headers } = encodeListing(listed);
      const at = dirs.add(listing);
      const index = directoryIndex(headers, at, dirs);
      const dir = { start: at.block, offset: at.offset, size: listing.length + 3, parent: parentNumber, nlink: 2 + subdirs, index };
      return toRef(inodes.add(encodeInode(n.entry, n.inode, idOf, dir)));
    };
    const rootRef = writeDir(root, inodeCount + 1);

    // 4. Tables after the data: inodes, directories, fragments, ids, xattrs; then the superblock.
    let pos = data.position;
    const chunks: Buffer[] = [];
    const put = (b: Buffer): number => {
      const at = pos;
      chunks.push(b);
      pos += b.length;
      return at;
    };
    const inodeTable = put(inodes.finish());
    const directoryTable = put(dirs.finish());
    const indexedTable = (records: Buffer): number => {
      const w = new MetadataWriter(comp, BLOCK_SIZE);
      w.add(records);
      const start = put(w.finish());
      const index = Buffer.alloc(8 * w.blockStarts.length);
      w.blockStarts.forEach((s, i) => index.writeBigUInt64LE(BigInt(start + s), i * 8));
      return put(index);
    };
    const frags = Buffer.alloc(16 * data.fragments.length);
    data.fragments.forEach(([start, word], i) => {
      frags.writeBigUInt64LE(BigInt(start), i * 16);
      frags.writeUInt32LE(word, i * 16 + 8);
    });
    const fragmentTable = indexedTable(frags);
    const idBuf = Buffer.alloc(4 * ids.size);
    for (const [v, i] of ids) idBuf.writeUInt32LE(v >>> 0, i * 4);
    const idTable = indexedTable(idBuf);
    const xattrIdTable = xattrs.count > 0 ? xattrs.write(put) : INVALID_TABLE;
    const bytesUsed = pos;
    const padded = Math.ceil(bytesUsed / 4096) * 4096;
    chunks.push(Buffer.alloc(padded - bytesUsed));
    // NoXattrs is left clear even without xattrs, as mksquashfs does: with it set, the kernel answers
    // listxattr with EOPNOTSUPP instead of an empty list.
    const flags = Flag.Duplicates;
    const sb = writeSuperblock({
      inodeCount,
      modTime: root.entry.mtime >>> 0,
      blockSize: BLOCK_SIZE,
      fragCount: data.fragments.length,
      compressor: comp === 'gzip' ? 1 : 4,
      blockLog: BLOCK_LOG,
      flags,
      idCount: ids.size,
      rootInode: rootRef,
      bytesUsed,
      idTable,
      xattrIdTable,
      inodeTable,
      directoryTable,
      fragmentTable: BigInt(fragmentTable),
      exportTable: INVALID_TABLE,
    });
    const tail = Buffer.concat(chunks);
    await handle.write(tail, 0, tail.length, data.position);
    await handle.write(sb, 0, sb.length, 0);
    await handle.truncate(padded);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, outPath);
    await fsyncDir(dirname(outPath));
    return { size: padded, inodes: inodeCount, skippedXattrs: xattrs.skipped };
  } catch (err) {
    await handle?.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  } finally {
    await pool.close();
  }
}

/**
 * The index of a listing that spans metadata blocks: the first header starting in each later block, so the
 * kernel's lookup decompresses one or two blocks instead of scanning the whole directory.
 */
function directoryIndex(headers: { pos: number; name: Buffer }[], at: MetaRef, dirs: MetadataWriter): Buffer {
  const parts: Buffer[] = [];
  let lastBlock = Math.floor(at.offset / METADATA_SIZE);
  for (const h of headers) {
    const block = Math.floor((at.offset + h.pos) / METADATA_SIZE);
    if (block === lastBlock) continue;
    lastBlock = block;
    const e = Buffer.alloc(12);
    e.writeUInt32LE(h.pos, 0);
    e.writeUInt32LE(dirs.blockAfter(at.block, block), 4);
    e.writeUInt32LE(h.name.length - 1, 8);
    parts.push(e, h.name);
  }
  return Buffer.concat(parts);
}

/** Directory entries grouped under headers: same inode block, at most 256, inode numbers within ±32767. */
function encodeListing(entries: { name: Buffer; ref: MetaRef; number: number; type: number }[]): { bytes: Buffer; headers: { pos: number; name: Buffer }[] } {
  const parts: Buffer[] = [];
  const headers: { pos: number; name: Buffer }[] = [];
  let pos = 0;
  let i = 0;
  while (i < entries.length) {
    const first = entries[i]!;
    let j = i;
    while (j < entries.length && j - i < 256 && entries[j]!.ref.block === first.ref.block && Math.abs(entries[j]!.number - first.number) <= 32767) j++;
    const h = Buffer.alloc(12);
    h.writeUInt32LE(j - i - 1, 0);
    h.writeUInt32LE(first.ref.block, 4);
    h.writeUInt32LE(first.number, 8);
    headers.push({ pos, name: first.name });
    parts.push(h);
    pos += 12;
    for (let k = i; k < j; k++) {
      const e = entries[k]!;
      const b = Buffer.alloc(8);
      b.writeUInt16LE(e.ref.offset, 0);
      b.writeInt16LE(e.number - first.number, 2);
      b.writeUInt16LE(e.type, 4);
      b.writeUInt16LE(e.name.length - 1, 6);
      parts.push(b, e.name);
      pos += 8 + e.name.length;
    }
    i = j;
  }
  return { bytes: Buffer.concat(parts), headers };
}
