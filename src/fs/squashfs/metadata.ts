import type { Compression } from '../compression.ts';
import { decompress, decompressSync } from '../compression.ts';
import type { RandomAccessSource } from '../source.ts';
import { METADATA_SIZE, METADATA_UNCOMPRESSED } from './format.ts';

/** A corrupt-image report; the reader turns it into an InvalidInputError naming the file. */
export class CorruptImage extends Error {}

interface Block {
  data: Buffer;
  /** Absolute position of the following metadata block. */
  next: number;
}

const CACHE_BLOCKS = 512;

/**
 * Reads the 8 KiB metadata blocks that hold inodes, directories, ids, fragments and xattrs, with a small
 * cache. Positions are absolute; every read stays inside [start, end) of its table.
 */
export class MetadataReader {
  private readonly cache = new Map<number, Promise<Block>>();

  constructor(
    private readonly src: RandomAccessSource,
    private readonly comp: Compression,
  ) {}

  block(pos: number, start: number, end: number): Promise<Block> {
    let b = this.cache.get(pos);
    if (b) {
      // Refresh for LRU order.
      this.cache.delete(pos);
      this.cache.set(pos, b);
      return b;
    }
    b = this.load(pos, start, end);
    this.cache.set(pos, b);
    b.catch(() => this.cache.delete(pos));
    if (this.cache.size > CACHE_BLOCKS) this.cache.delete(this.cache.keys().next().value!);
    return b;
  }

  private async load(pos: number, start: number, end: number): Promise<Block> {
    if (!Number.isSafeInteger(pos) || pos < start || pos + 2 > end) throw new CorruptImage(`metadata block at ${pos} lies outside its table (${start}..${end})`);
    // Header and body in one read: a block never exceeds 2 + 8192 bytes.
    const chunk = await this.src.read(pos, Math.min(2 + METADATA_SIZE, end - pos));
    const header = chunk.readUInt16LE(0);
    const size = header & 0x7fff;
    if (size === 0 || 2 + size > chunk.length) throw new CorruptImage(`metadata block at ${pos} has a bad size ${size}`);
    const raw = chunk.subarray(2, 2 + size);
    let data: Buffer;
    if (header & METADATA_UNCOMPRESSED) data = raw;
    else {
      try {
        // Small blocks: decoding here beats a round trip through the thread pool.
        data = this.comp === 'xz' ? await decompress(this.comp, raw, METADATA_SIZE) : decompressSync(this.comp, raw, METADATA_SIZE);
      } catch (err) {
        throw new CorruptImage(`metadata block at ${pos}: ${(err as Error).message}`);
      }
    }
    return { data, next: pos + 2 + size };
  }

  /**
   * `length` bytes starting `offset` bytes into the metadata block at `pos`, continuing into following
   * blocks. Returns the bytes and the position just after them.
   */
  async read(pos: number, offset: number, length: number, start: number, end: number): Promise<{ data: Buffer; pos: number; offset: number }> {
    // Each 8 KiB of metadata takes at least 3 bytes of table (header + data), which bounds what a corrupt
    // length can make us assemble.
    if (length > (Math.ceil((end - start) / 3) + 1) * METADATA_SIZE) throw new CorruptImage(`metadata read of ${length} bytes exceeds its table`);
    const parts: Buffer[] = [];
    let need = length;
    for (;;) {
      const b = await this.block(pos, start, end);
      if (offset > b.data.length) throw new CorruptImage(`offset ${offset} past the end of the metadata block at ${pos}`);
      const take = Math.min(need, b.data.length - offset);
      parts.push(b.data.subarray(offset, offset + take));
      need -= take;
      offset += take;
      if (need === 0) {
        if (offset === b.data.length) return { data: parts.length === 1 ? parts[0]! : Buffer.concat(parts), pos: b.next, offset: 0 };
        return { data: parts.length === 1 ? parts[0]! : Buffer.concat(parts), pos, offset };
      }
      pos = b.next;
      offset = 0;
    }
  }
}
