import type { Entry } from '../file-tree.ts';
import type { WriterCompression } from './compressor.ts';
import type { FileData } from './data-writer.ts';
import { encodeDev, InodeType, NO_FRAGMENT, NO_XATTR, XATTR_PREFIXES } from './format.ts';
import { MetadataWriter } from './metadata-writer.ts';

export interface DirPlacement {
  start: number;
  offset: number;
  size: number;
  parent: number;
  nlink: number;
  /** Directory index entries (see directoryIndex in writer.ts); empty for listings inside one block. */
  index: Buffer;
}

const U32 = 2 ** 32;

function countIndex(index: Buffer): number {
  let n = 0;
  for (let p = 0; p < index.length; p += 12 + index.readUInt32LE(p + 8) + 1) n++;
  return n;
}

/**
 * One inode record. Basic inodes where they suffice (as mksquashfs does); extended ones for xattrs,
 * hardlinked or sparse files, sizes or positions past 4 GiB and directory listings past 64 KiB.
 */
export function encodeInode(entry: Entry, info: { number: number; links: number; data?: FileData; xattr: number }, idOf: (v: number) => number, dir: DirPlacement | undefined): Buffer {
  const ext = info.xattr !== NO_XATTR;
  const head = (type: InodeType, rest: number): Buffer => {
    const b = Buffer.alloc(16 + rest);
    b.writeUInt16LE(type, 0);
    b.writeUInt16LE(entry.mode & 0o7777, 2);
    b.writeUInt16LE(idOf(entry.uid), 4);
    b.writeUInt16LE(idOf(entry.gid), 6);
    b.writeUInt32LE(entry.mtime >>> 0, 8);
    b.writeUInt32LE(info.number, 12);
    return b;
  };
  switch (entry.type) {
    case 'dir': {
      const d = dir!;
      if (!ext && d.size <= 0xffff && d.index.length === 0) {
        const b = head(InodeType.Dir, 16);
        b.writeUInt32LE(d.start, 16);
        b.writeUInt32LE(d.nlink, 20);
        b.writeUInt16LE(d.size, 24);
        b.writeUInt16LE(d.offset, 26);
        b.writeUInt32LE(d.parent, 28);
        return b;
      }
      const b = head(InodeType.LDir, 24);
      b.writeUInt32LE(d.nlink, 16);
      b.writeUInt32LE(d.size, 20);
      b.writeUInt32LE(d.start, 24);
      b.writeUInt32LE(d.parent, 28);
      b.writeUInt16LE(countIndex(d.index), 32);
      b.writeUInt16LE(d.offset, 34);
      b.writeUInt32LE(info.xattr, 36);
      return Buffer.concat([b, d.index]);
    }
    case 'file': {
      const f = info.data!;
      const blocks = f.blocks;
      if (!ext && info.links === 1 && f.sparse === 0 && f.size < U32 && f.start < U32) {
        const b = head(InodeType.File, 16 + 4 * blocks.length);
        b.writeUInt32LE(f.start, 16);
        b.writeUInt32LE(f.fragment, 20);
        b.writeUInt32LE(f.fragment === NO_FRAGMENT ? 0 : f.fragOffset, 24);
        b.writeUInt32LE(f.size, 28);
        for (let i = 0; i < blocks.length; i++) b.writeUInt32LE(blocks[i]!, 32 + 4 * i);
        return b;
      }
      const b = head(InodeType.LFile, 40 + 4 * blocks.length);
      b.writeBigUInt64LE(BigInt(f.start), 16);
      b.writeBigUInt64LE(BigInt(f.size), 24);
      b.writeBigUInt64LE(BigInt(f.sparse), 32);
      b.writeUInt32LE(info.links, 40);
      b.writeUInt32LE(f.fragment, 44);
      b.writeUInt32LE(f.fragment === NO_FRAGMENT ? 0 : f.fragOffset, 48);
      b.writeUInt32LE(info.xattr, 52);
      for (let i = 0; i < blocks.length; i++) b.writeUInt32LE(blocks[i]!, 56 + 4 * i);
      return b;
    }
    case 'symlink': {
      const target = Buffer.from(entry.target ?? '');
      const b = head(ext ? InodeType.LSymlink : InodeType.Symlink, 8 + target.length + (ext ? 4 : 0));
      b.writeUInt32LE(info.links, 16);
      b.writeUInt32LE(target.length, 20);
      target.copy(b, 24);
      if (ext) b.writeUInt32LE(info.xattr, 24 + target.length);
      return b;
    }
    case 'blk':
    case 'chr': {
      const basic = entry.type === 'blk' ? InodeType.Blk : InodeType.Chr;
      const b = head(ext ? basic + 7 : basic, ext ? 12 : 8);
      b.writeUInt32LE(info.links, 16);
      b.writeUInt32LE(encodeDev(entry.rdev?.major ?? 0, entry.rdev?.minor ?? 0), 20);
      if (ext) b.writeUInt32LE(info.xattr, 24);
      return b;
    }
    case 'fifo':
    case 'sock': {
      const basic = entry.type === 'fifo' ? InodeType.Fifo : InodeType.Sock;
      const b = head(ext ? basic + 7 : basic, ext ? 8 : 4);
      b.writeUInt32LE(info.links, 16);
      if (ext) b.writeUInt32LE(info.xattr, 20);
      return b;
    }
  }
}

/** Xattr sets, stored once each; entries refer to a set by index. */
export class XattrTable {
  private readonly kv: MetadataWriter;
  private readonly sets = new Map<string, number>();
  private readonly ids: { ref: bigint; count: number; size: number }[] = [];
  readonly skipped: string[] = [];

  constructor(
    private readonly comp: WriterCompression,
    private readonly blockSize: number,
  ) {
    this.kv = new MetadataWriter(comp, blockSize);
  }

  get count(): number {
    return this.ids.length;
  }

  /** The index of this entry's xattr set (NO_XATTR for none). Names are stored sorted. */
  add(xattrs: Record<string, Buffer> | undefined, path: string): number {
    if (!xattrs) return NO_XATTR;
    const pairs: { type: number; name: Buffer; value: Buffer }[] = [];
    for (const full of Object.keys(xattrs).sort()) {
      const type = XATTR_PREFIXES.findIndex((p) => full.startsWith(p));
      if (type < 0) {
        this.skipped.push(`${path}: ${full}`);
        continue;
      }
      pairs.push({ type, name: Buffer.from(full.slice(XATTR_PREFIXES[type]!.length)), value: xattrs[full]! });
    }
    if (pairs.length === 0) return NO_XATTR;
    const parts: Buffer[] = [];
    for (const p of pairs) {
      const k = Buffer.alloc(4);
      k.writeUInt16LE(p.type, 0);
      k.writeUInt16LE(p.name.length, 2);
      const v = Buffer.alloc(4);
      v.writeUInt32LE(p.value.length, 0);
      parts.push(k, p.name, v, p.value);
    }
    const record = Buffer.concat(parts);
    const key = record.toString('base64');
    let index = this.sets.get(key);
    if (index === undefined) {
      const at = this.kv.add(record);
      index = this.ids.length;
      this.ids.push({ ref: (BigInt(at.block) << 16n) | BigInt(at.offset), count: pairs.length, size: record.length });
      this.sets.set(key, index);
    }
    return index;
  }

  /** Writes key/value blocks, id blocks and the id table header + index; returns the header position. */
  write(put: (b: Buffer) => number): bigint {
    const kvStart = put(this.kv.finish());
    const idw = new MetadataWriter(this.comp, this.blockSize);
    for (const id of this.ids) {
      const r = Buffer.alloc(16);
      r.writeBigUInt64LE(id.ref, 0);
      r.writeUInt32LE(id.count, 8);
      r.writeUInt32LE(id.size, 12);
      idw.add(r);
    }
    const idStart = put(idw.finish());
    const header = Buffer.alloc(16 + 8 * idw.blockStarts.length);
    header.writeBigUInt64LE(BigInt(kvStart), 0);
    header.writeUInt32LE(this.ids.length, 8);
    idw.blockStarts.forEach((s, i) => header.writeBigUInt64LE(BigInt(idStart + s), 16 + i * 8));
    return BigInt(put(header));
  }
}
