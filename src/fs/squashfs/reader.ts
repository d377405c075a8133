import { Readable } from 'node:stream';
import { decompress, decompressSync, type Compression } from '../compression.ts';
import { InvalidInputError, PvError } from '../../errors.ts';
import { compareNames, type Entry, type EntryType, type FileTree } from '../file-tree.ts';
import type { FileLocation, RandomAccessSource } from '../source.ts';
import {
  COMPRESSORS,
  DATA_UNCOMPRESSED,
  decodeDev,
  INVALID_TABLE,
  InodeType,
  METADATA_SIZE,
  NO_FRAGMENT,
  NO_XATTR,
  parseSuperblock,
  SQUASHFS_MAGIC,
  SUPERBLOCK_SIZE,
  XATTR_PREFIXES,
  XATTR_VALUE_OOL,
} from './format.ts';
import { CorruptImage, MetadataReader } from './metadata.ts';
import { closedImage, DigestPool, type DigestJob } from './digest-pool.ts';

export interface SquashfsOptions {
  /** Data blocks decompressed ahead of the consumer per open file (default 4). */
  readAhead?: number;
}

/** What a regular file's inode says about where its bytes are. */
interface FileLayout {
  size: number;
  start: number;
  blocks: number[];
  fragment: number;
  fragOffset: number;
}

interface Inode {
  type: InodeType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  number: number;
  nlink: number;
  xattr: number;
  file?: FileLayout;
  dir?: { start: number; offset: number; size: number };
  target?: string;
  rdev?: number;
}

const TYPE_NAMES: Record<number, EntryType> = { 1: 'dir', 2: 'file', 3: 'symlink', 4: 'blk', 5: 'chr', 6: 'fifo', 7: 'sock' };
const MAX_NAME = 256;
/** Data (everything before the inode table) below which starting hash workers costs more than it saves. */
const POOL_MIN_DATA = 8 << 20;

/** The `squashfs` FileTree: reads an image through random access, never mounting or extracting it. */
export async function openSquashfs(src: RandomAccessSource, options: SquashfsOptions = {}): Promise<FileTree> {
  const fail = (msg: string): InvalidInputError =>
    new InvalidInputError('squashfs-corrupt', `squashfs image is corrupt: ${msg}; rebuild or re-download the image`, { file: src.name });
  // Whatever a damaged image makes the parsing trip on (bounds, decoders, buffer reads) is reported as corruption.
  const guard = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (err) {
      if (err instanceof PvError) throw err;
      throw fail((err as Error).message);
    }
  };
  if (src.size < SUPERBLOCK_SIZE) throw fail(`only ${src.size} bytes, shorter than a superblock`);
  const head = await src.read(0, SUPERBLOCK_SIZE);
  if (head.readUInt32LE(0) !== SQUASHFS_MAGIC) throw new InvalidInputError('not-squashfs', 'not a squashfs image (no "hsqs" magic at offset 0); pass a squashfs 4.0 image', { file: src.name });
  const sb = parseSuperblock(head);
  if (head.readUInt16LE(28) !== 4 || head.readUInt16LE(30) !== 0) throw new InvalidInputError('squashfs-version', `squashfs ${head.readUInt16LE(28)}.${head.readUInt16LE(30)} is not supported; rebuild the image as squashfs 4.0 (mksquashfs 4.x)`, { file: src.name });
  const compName = COMPRESSORS[sb.compressor];
  if (!compName || compName === 'lzma') throw new InvalidInputError('squashfs-compressor', `unsupported squashfs compressor id ${sb.compressor}${compName ? ` (${compName})` : ''}; rebuild the image with gzip, xz, zstd, lz4 or lzo`, { file: src.name });
  const comp: Compression = compName;
  if (sb.blockSize < 4096 || sb.blockSize > 1 << 20 || 1 << sb.blockLog !== sb.blockSize) throw fail(`bad block size ${sb.blockSize}`);
  const end = Math.min(sb.bytesUsed, src.size);
  if (sb.bytesUsed > src.size) throw fail(`superblock says ${sb.bytesUsed} bytes are used but the image has ${src.size} (truncated?)`);
  for (const [name, v] of [['inode table', sb.inodeTable], ['directory table', sb.directoryTable], ['id table', sb.idTable]] as const) {
    if (v < SUPERBLOCK_SIZE || v >= end) throw fail(`${name} offset ${v} is outside the image`);
  }
  if (sb.directoryTable < sb.inodeTable) throw fail('directory table precedes the inode table');
  const meta = new MetadataReader(src, comp);
  const inodeEnd = sb.directoryTable;
  // The directory table ends where the next table begins (fragment, export, id or xattr table, in that order).
  const tableStarts = [sb.fragmentTable, sb.exportTable, BigInt(sb.idTable), sb.xattrIdTable].filter((v) => v !== INVALID_TABLE).map(Number);
  const dirEnd = Math.min(end, ...tableStarts.filter((v) => v > sb.directoryTable));

  /** A table of fixed-size records in metadata blocks, found through an index of u64 block positions. */
  async function readIndexedTable(indexPos: number, count: number, recordSize: number, what: string): Promise<Buffer> {
    const bytes = count * recordSize;
    const blocks = Math.ceil(bytes / METADATA_SIZE);
    if (indexPos + blocks * 8 > end) throw fail(`${what} index lies outside the image`);
    const index = await src.read(indexPos, blocks * 8);
    const parts: Buffer[] = [];
    for (let i = 0; i < blocks; i++) {
      const pos = Number(index.readBigUInt64LE(i * 8));
      const want = Math.min(METADATA_SIZE, bytes - i * METADATA_SIZE);
      const { data } = await meta.read(pos, 0, want, SUPERBLOCK_SIZE, indexPos);
      parts.push(data);
    }
    return Buffer.concat(parts, bytes);
  }

  const { ids, fragments, xattrIds, xattrStart } = await guard(
    (async () => {
      if (sb.idCount === 0) throw fail('the id table is empty');
      const ids = await readIndexedTable(sb.idTable, sb.idCount, 4, 'id table');
      let fragments: Buffer = Buffer.alloc(0);
      if (sb.fragCount > 0 && sb.fragmentTable !== INVALID_TABLE) {
        if (sb.fragCount > end / 16) throw fail(`absurd fragment count ${sb.fragCount}`);
        fragments = await readIndexedTable(Number(sb.fragmentTable), sb.fragCount, 16, 'fragment table');
      }
      let xattrIds: Buffer = Buffer.alloc(0);
      let xattrStart = 0;
      if (sb.xattrIdTable !== INVALID_TABLE) {
        const pos = Number(sb.xattrIdTable);
        if (pos + 16 > end) throw fail('xattr id table lies outside the image');
        const h = await src.read(pos, 16);
        xattrStart = Number(h.readBigUInt64LE(0));
        const count = h.readUInt32LE(8);
        if (count > end / 16) throw fail(`absurd xattr id count ${count}`);
        if (xattrStart < SUPERBLOCK_SIZE || xattrStart > pos) throw fail('xattr table lies outside the image');
        xattrIds = await readIndexedTable(pos + 16, count, 16, 'xattr id table');
      }
      return { ids, fragments, xattrIds, xattrStart };
    })(),
  );

  const idAt = (i: number): number => {
    if (i >= sb.idCount) throw new CorruptImage(`id index ${i} beyond the ${sb.idCount}-entry id table`);
    return ids.readUInt32LE(i * 4);
  };

  async function readInode(ref: bigint): Promise<Inode> {
    let pos = sb.inodeTable + Number(ref >> 16n);
    let offset = Number(ref & 0xffffn);
    if (offset >= METADATA_SIZE) throw new CorruptImage(`inode reference offset ${offset} is past a metadata block`);
    const take = async (n: number): Promise<Buffer> => {
      const r = await meta.read(pos, offset, n, sb.inodeTable, inodeEnd);
      pos = r.pos;
      offset = r.offset;
      return r.data;
    };
    const h = await take(16);
    const type = h.readUInt16LE(0) as InodeType;
    const ino: Inode = {
      type,
      mode: h.readUInt16LE(2) & 0o7777,
      uid: idAt(h.readUInt16LE(4)),
      gid: idAt(h.readUInt16LE(6)),
      mtime: h.readUInt32LE(8),
      number: h.readUInt32LE(12),
      nlink: 1,
      xattr: NO_XATTR,
    };
    const blockList = async (size: number, fragment: number): Promise<number[]> => {
      const n = fragment === NO_FRAGMENT ? Math.ceil(size / sb.blockSize) : Math.floor(size / sb.blockSize);
      if (n * 4 > (Math.ceil((inodeEnd - sb.inodeTable) / 3) + 1) * METADATA_SIZE) throw new CorruptImage(`file size ${size} needs more block pointers than the inode table holds`);
      const b = await take(n * 4);
      const out = new Array<number>(n);
      for (let i = 0; i < n; i++) out[i] = b.readUInt32LE(i * 4);
      return out;
    };
    switch (type) {
      case InodeType.Dir: {
        const b = await take(16);
        ino.nlink = b.readUInt32LE(4);
        ino.dir = { start: b.readUInt32LE(0), size: b.readUInt16LE(8), offset: b.readUInt16LE(10) };
        break;
      }
      case InodeType.LDir: {
        const b = await take(24);
        ino.nlink = b.readUInt32LE(0);
        ino.dir = { size: b.readUInt32LE(4), start: b.readUInt32LE(8), offset: b.readUInt16LE(18) };
        ino.xattr = b.readUInt32LE(20);
        break;
      }
      case InodeType.File: {
        const b = await take(16);
        const fragment = b.readUInt32LE(4);
        const size = b.readUInt32LE(12);
        ino.file = { start: b.readUInt32LE(0), fragment, fragOffset: b.readUInt32LE(8), size, blocks: await blockList(size, fragment) };
        break;
      }
      case InodeType.LFile: {
        const b = await take(40);
        const size = Number(b.readBigUInt64LE(8));
        if (!Number.isSafeInteger(size)) throw new CorruptImage(`absurd file size ${b.readBigUInt64LE(8)}`);
        const fragment = b.readUInt32LE(28);
        ino.nlink = b.readUInt32LE(24);
        ino.xattr = b.readUInt32LE(36);
        ino.file = { start: Number(b.readBigUInt64LE(0)), fragment, fragOffset: b.readUInt32LE(32), size, blocks: await blockList(size, fragment) };
        break;
      }
      case InodeType.Symlink:
      case InodeType.LSymlink: {
        const b = await take(8);
        ino.nlink = b.readUInt32LE(0);
        const len = b.readUInt32LE(4);
        if (len > 65536) throw new CorruptImage(`symlink target of ${len} bytes`);
        ino.target = (await take(len)).toString('utf8');
        if (type === InodeType.LSymlink) ino.xattr = (await take(4)).readUInt32LE(0);
        break;
      }
      case InodeType.Blk:
      case InodeType.Chr:
      case InodeType.LBlk:
      case InodeType.LChr: {
        const b = await take(type >= InodeType.LDir ? 12 : 8);
        ino.nlink = b.readUInt32LE(0);
        ino.rdev = b.readUInt32LE(4);
        if (type >= InodeType.LDir) ino.xattr = b.readUInt32LE(8);
        break;
      }
      case InodeType.Fifo:
      case InodeType.Sock:
      case InodeType.LFifo:
      case InodeType.LSock: {
        const b = await take(type >= InodeType.LDir ? 8 : 4);
        ino.nlink = b.readUInt32LE(0);
        if (type >= InodeType.LDir) ino.xattr = b.readUInt32LE(4);
        break;
      }
      default:
        throw new CorruptImage(`unknown inode type ${type}`);
    }
    return ino;
  }

  const xattrCache = new Map<number, Record<string, Buffer>>();
  async function readXattrs(index: number): Promise<Record<string, Buffer> | undefined> {
    if (index === NO_XATTR) return undefined;
    const cached = xattrCache.get(index);
    if (cached) return cached;
    if (index >= xattrIds.length / 16) throw new CorruptImage(`xattr index ${index} beyond the xattr id table`);
    const ref = xattrIds.readBigUInt64LE(index * 16);
    const count = xattrIds.readUInt32LE(index * 16 + 8);
    if (count > 65536) throw new CorruptImage(`absurd xattr count ${count}`);
    const tableEnd = Number(sb.xattrIdTable);
    let pos = xattrStart + Number(ref >> 16n);
    let offset = Number(ref & 0xffffn);
    const take = async (n: number): Promise<Buffer> => {
      const r = await meta.read(pos, offset, n, xattrStart, tableEnd);
      pos = r.pos;
      offset = r.offset;
      return r.data;
    };
    const out: Record<string, Buffer> = {};
    for (let i = 0; i < count; i++) {
      const k = await take(4);
      const t = k.readUInt16LE(0);
      const prefix = XATTR_PREFIXES[t & 0xff];
      if (!prefix) throw new CorruptImage(`unknown xattr type ${t}`);
      const name = prefix + (await take(k.readUInt16LE(2))).toString('utf8');
      const vsize = (await take(4)).readUInt32LE(0);
      if (vsize > 1 << 20) throw new CorruptImage(`xattr value of ${vsize} bytes`);
      if (t & XATTR_VALUE_OOL) {
        if (vsize !== 8) throw new CorruptImage('out-of-line xattr reference is not 8 bytes');
        const vref = (await take(8)).readBigUInt64LE(0);
        const r = await meta.read(xattrStart + Number(vref >> 16n), Number(vref & 0xffffn), 4, xattrStart, tableEnd);
        const len = r.data.readUInt32LE(0);
        if (len > 1 << 20) throw new CorruptImage(`xattr value of ${len} bytes`);
        out[name] = Buffer.from((await meta.read(r.pos, r.offset, len, xattrStart, tableEnd)).data);
      } else {
        out[name] = Buffer.from(await take(vsize));
      }
    }
    if (xattrCache.size > 4096) xattrCache.clear();
    xattrCache.set(index, out);
    return out;
  }

  interface DirEntry {
    name: string;
    ref: bigint;
    type: number;
  }
  async function readDir(d: NonNullable<Inode['dir']>): Promise<DirEntry[]> {
    // file_size counts 3 bytes for the implicit "." and ".." entries.
    if (d.size <= 3) return [];
    const { data } = await meta.read(sb.directoryTable + d.start, d.offset, d.size - 3, sb.directoryTable, dirEnd);
    const out: DirEntry[] = [];
    let p = 0;
    while (p < data.length) {
      if (p + 12 > data.length) throw new CorruptImage('truncated directory header');
      const count = data.readUInt32LE(p) + 1;
      const start = data.readUInt32LE(p + 4);
      p += 12;
      if (count > 256) throw new CorruptImage(`directory header claims ${count} entries`);
      for (let i = 0; i < count; i++) {
        if (p + 8 > data.length) throw new CorruptImage('truncated directory entry');
        const offset = data.readUInt16LE(p);
        const type = data.readUInt16LE(p + 4);
        const nameLen = data.readUInt16LE(p + 6) + 1;
        if (nameLen > MAX_NAME || p + 8 + nameLen > data.length) throw new CorruptImage('directory entry name runs past its listing');
        const name = data.subarray(p + 8, p + 8 + nameLen).toString('utf8');
        if (name === '.' || name === '..' || name.includes('/')) throw new CorruptImage(`invalid name in directory: ${JSON.stringify(name)}`);
        out.push({ name, ref: (BigInt(start) << 16n) | BigInt(offset), type });
        p += 8 + nameLen;
      }
    }
    out.sort((a, b) => compareNames(a.name, b.name));
    return out;
  }

  const layouts = new Map<number, FileLayout>();
  async function toEntry(path: string, ino: Inode): Promise<Entry> {
    const type = TYPE_NAMES[ino.type > 7 ? ino.type - 7 : ino.type]!;
    const e: Entry = { path, type, mode: ino.mode, uid: ino.uid, gid: ino.gid, mtime: ino.mtime, size: ino.file?.size ?? 0, nlink: ino.nlink, inode: ino.number };
    if (ino.target !== undefined) e.target = ino.target;
    if (ino.rdev !== undefined) e.rdev = decodeDev(ino.rdev);
    const x = await readXattrs(ino.xattr);
    if (x && Object.keys(x).length > 0) e.xattrs = x;
    if (ino.file) layouts.set(ino.number, ino.file);
    return e;
  }

  async function* walkDir(path: string, dir: Inode, ancestors: Set<number>, budget: { dirs: number }): AsyncGenerator<Entry> {
    const entries = await guard(readDir(dir.dir!));
    for (const de of entries) {
      const ino = await guard(readInode(de.ref));
      const baseType = ino.type > 7 ? ino.type - 7 : ino.type;
      if (baseType !== de.type) throw fail(`${path}/${de.name}: directory says type ${de.type}, inode says ${ino.type}`);
      const childPath = path === '/' ? `/${de.name}` : `${path}/${de.name}`;
      yield await guard(toEntry(childPath, ino));
      if (ino.dir) {
        if (ancestors.has(ino.number)) throw fail(`directory loop at ${childPath}`);
        if (--budget.dirs < 0) throw fail('more directories than the image has inodes');
        ancestors.add(ino.number);
        yield* walkDir(childPath, ino, ancestors, budget);
        ancestors.delete(ino.number);
      }
    }
  }

  const rootInode = await guard(readInode(sb.rootInode));
  if (!rootInode.dir) throw fail('the root inode is not a directory');

  const fragmentCache: { index: number; data?: Promise<Buffer> } = { index: -1 };
  /** Where fragment block `index` is (its position in the image) and its size word, from the fragment table. */
  function fragmentEntry(index: number): { start: number; word: number } {
    if (index >= sb.fragCount || (index + 1) * 16 > fragments.length) throw new CorruptImage(`fragment ${index} beyond the fragment table`);
    return { start: Number(fragments.readBigUInt64LE(index * 16)), word: fragments.readUInt32LE(index * 16 + 8) };
  }

  async function fragmentBlock(index: number): Promise<Buffer> {
    if (fragmentCache.index === index && fragmentCache.data) return fragmentCache.data;
    const { start, word } = fragmentEntry(index);
    fragmentCache.index = index;
    fragmentCache.data = dataBlock(start, word, sb.blockSize, false, false);
    fragmentCache.data.catch(() => (fragmentCache.index = -1));
    return fragmentCache.data;
  }

  /**
   * One data block: `expected` is its exact size when `exact`, else an upper bound (fragment blocks).
   * `parallel` decodes on the thread pool (blocks of one file read ahead overlap); otherwise in this thread,
   * which saves a pool round trip for single blocks and fragment blocks. (digest-pool.ts's workers apply
   * the same checks in plain JS: they cannot load this module.)
   */
  async function dataBlock(pos: number, word: number, expected: number, exact: boolean, parallel: boolean): Promise<Buffer> {
    const size = word & (DATA_UNCOMPRESSED - 1);
    if (size === 0) return Buffer.alloc(expected);
    if (size > sb.blockSize || pos + size > end) throw new CorruptImage(`data block at ${pos} (${size} bytes) lies outside the image`);
    const raw = await src.read(pos, size);
    let out: Buffer;
    if (word & DATA_UNCOMPRESSED) out = raw;
    else {
      try {
        out = parallel || comp === 'xz' ? await decompress(comp, raw, sb.blockSize) : decompressSync(comp, raw, sb.blockSize);
      } catch (err) {
        throw new CorruptImage(`data block at ${pos}: ${(err as Error).message}`);
      }
    }
    if (exact ? out.length !== expected : out.length > expected) throw new CorruptImage(`data block at ${pos} holds ${out.length} bytes, expected ${expected}`);
    return out;
  }

  function layoutOf(entry: Entry): FileLayout {
    const layout = entry.type === 'file' ? layouts.get(entry.inode) : undefined;
    if (!layout) throw new InvalidInputError('not-a-file', `${entry.path} is not a regular file of this image (walk the tree first)`, { file: src.name });
    return layout;
  }

  const readAhead = Math.max(1, options.readAhead ?? 4);
  function openFile(entry: Entry): Readable {
    const layout = layoutOf(entry);
    const { size, blocks } = layout;
    const positions: number[] = [];
    let pos = layout.start;
    for (const w of blocks) {
      positions.push(pos);
      pos += w & (DATA_UNCOMPRESSED - 1);
    }
    const pending: Promise<Buffer>[] = [];
    let next = 0; // next block to schedule
    let fragmentDone = layout.fragment === NO_FRAGMENT;
    const fill = (): void => {
      while (pending.length < readAhead && next < blocks.length) {
        const i = next++;
        const want = Math.min(sb.blockSize, size - i * sb.blockSize);
        const p = guard(dataBlock(positions[i]!, blocks[i]!, want, true, blocks.length > 1));
        p.catch(() => {}); // observed when its turn comes
        pending.push(p);
      }
      if (next === blocks.length && !fragmentDone && pending.length < readAhead) {
        fragmentDone = true;
        const tail = size - blocks.length * sb.blockSize;
        const p = guard(
          fragmentBlock(layout.fragment).then((f) => {
            if (layout.fragOffset + tail > f.length) throw new CorruptImage(`fragment ${layout.fragment} is shorter than ${entry.path}'s tail`);
            return f.subarray(layout.fragOffset, layout.fragOffset + tail);
          }),
        );
        p.catch(() => {});
        pending.push(p);
      }
    };
    return new Readable({
      highWaterMark: 4 * sb.blockSize,
      read() {
        fill();
        const p = pending.shift();
        if (!p) {
          this.push(null);
          return;
        }
        p.then(
          (b) => {
            fill();
            this.push(b);
          },
          (e: Error) => this.destroy(e),
        );
      },
    });
  }

  // Hashing on worker threads pays off for zlib images of some size read from a file (see digest-pool.ts).
  const at = src.location();
  const pooled = at && comp === 'zlib' && sb.inodeTable >= POOL_MIN_DATA ? at : undefined;
  let pool: DigestPool | undefined;
  let closed = false;
  const digest = pooled && ((entry: Entry): Promise<string> => guard(pooledDigest(entry, pooled)));
  async function pooledDigest(entry: Entry, pooled: FileLocation): Promise<string> {
    const layout = layoutOf(entry);
    if (closed) throw closedImage(src.name);
    const job: DigestJob = { path: pooled.path, dev: pooled.dev, ino: pooled.ino, base: pooled.offset, end: pooled.offset + end, blockSize: sb.blockSize, size: layout.size, start: pooled.offset + layout.start, words: layout.blocks };
    if (layout.fragment !== NO_FRAGMENT && layout.size > layout.blocks.length * sb.blockSize) {
      const { start, word } = fragmentEntry(layout.fragment);
      job.fragment = { pos: pooled.offset + start, word, offset: layout.fragOffset };
    }
    pool ??= new DigestPool(src.name);
    return pool.digest(job);
  }

  return {
    async *walk() {
      yield await guard(toEntry('/', rootInode));
      yield* walkDir('/', rootInode, new Set([rootInode.number]), { dirs: sb.inodeCount });
    },
    open: openFile,
    // Only where workers can do it: callers hash open()'s stream otherwise, with their own bounded window.
    ...(digest ? { digest } : {}),
    // The caller opened the source and closes it; the pool is ours.
    close: async () => {
      closed = true;
      await pool?.close();
    },
  };
}
