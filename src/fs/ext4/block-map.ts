import { InvalidInputError } from '../../errors.ts';
import type { CachedReader } from '../disk/cached-reader.ts';
import { extentBlockChecksumOk, inodeSeed } from './checksum.ts';
import { FL_EXTENTS, type Inode } from './inode.ts';
import type { Superblock } from './superblock.ts';

/** `count` logical blocks from `logical` stored at `physical`; `zero` for uninitialised extents (read as zeros). */
export interface Run {
  logical: number;
  physical: number;
  count: number;
  zero: boolean;
}

const EXTENT_MAGIC = 0xf30a;
/** The kernel never builds extent trees deeper than 5 levels (EXT4_MAX_EXTENT_DEPTH). */
const MAX_EXTENT_DEPTH = 5;
/** An extent's ee_len above this marks it uninitialised (length − 32768). */
const INIT_MAX_LEN = 32768;

export class BlockMapper {
  constructor(
    private readonly sb: Superblock,
    private readonly meta: CachedReader,
    private readonly file: string,
  ) {}

  private corrupt(inode: Inode, what: string): InvalidInputError {
    return new InvalidInputError('ext4-corrupt', `inode ${inode.ino}: ${what}; the filesystem is corrupt (check it with 'e2fsck -fn')`, { file: this.file });
  }

  private checkRange(inode: Inode, physical: number, count: number): void {
    if (physical < this.sb.firstDataBlock || physical + count > this.sb.blocksCount) {
      throw this.corrupt(inode, `blocks ${physical}+${count} lie outside the ${this.sb.blocksCount}-block filesystem`);
    }
  }

  /** Largest logical block count a file can address (2^32 for extents; the indirect tree's reach otherwise). */
  maxBlocks(inode: Inode): number {
    if (inode.flags & FL_EXTENTS) return 2 ** 32;
    const p = this.sb.blockSize / 4;
    return 12 + p + p * p + p * p * p;
  }

  /**
   * The mapped runs of an inode's data in logical order, contiguous blocks coalesced, stopping at
   * `limit` logical blocks (runs may extend past it; callers clip).
   */
  async *runs(inode: Inode, limit: number): AsyncGenerator<Run> {
    let pending: Run | undefined;
    // A file cannot own more blocks than the filesystem has: this bounds what a corrupt map can make us read.
    let mapped = 0;
    const source = inode.flags & FL_EXTENTS ? this.extentRuns(inode, limit) : this.indirectRuns(inode, limit);
    for await (const r of source) {
      mapped += r.count;
      if (mapped > this.sb.blocksCount) throw this.corrupt(inode, `its block map covers more blocks than the ${this.sb.blocksCount}-block filesystem has`);
      if (pending && pending.zero === r.zero && pending.logical + pending.count === r.logical && (r.zero || pending.physical + pending.count === r.physical)) {
        pending.count += r.count;
        continue;
      }
      if (pending) yield pending;
      pending = { ...r };
    }
    if (pending) yield pending;
  }

  private async *extentRuns(inode: Inode, limit: number): AsyncGenerator<Run> {
    const state = { next: 0 };
    yield* this.extentNode(inode, inode.block, -1, state, limit);
  }

  /**
   * One extent tree node. Each child must be exactly one level shallower and extents must move forward
   * in logical order, so a corrupt tree cannot loop or revisit blocks.
   */
  private async *extentNode(inode: Inode, node: Buffer, expectDepth: number, state: { next: number }, limit: number): AsyncGenerator<Run> {
    if (node.length < 12 || node.readUInt16LE(0) !== EXTENT_MAGIC) throw this.corrupt(inode, 'bad extent header magic');
    const entries = node.readUInt16LE(2);
    const max = node.readUInt16LE(4);
    const depth = node.readUInt16LE(6);
    if (entries > max || 12 + max * 12 > node.length) throw this.corrupt(inode, `extent node claims ${entries}/${max} entries`);
    if (depth > MAX_EXTENT_DEPTH || (expectDepth >= 0 && depth !== expectDepth)) throw this.corrupt(inode, `extent tree depth ${depth} is invalid`);
    for (let i = 0; i < entries; i++) {
      const e = node.subarray(12 + i * 12, 24 + i * 12);
      const logical = e.readUInt32LE(0);
      if (logical < state.next) throw this.corrupt(inode, `extent at logical block ${logical} overlaps or precedes the previous one`);
      if (logical >= limit) return;
      if (depth === 0) {
        let count = e.readUInt16LE(4);
        const zero = count > INIT_MAX_LEN;
        if (zero) count -= INIT_MAX_LEN;
        const physical = e.readUInt16LE(6) * 2 ** 32 + e.readUInt32LE(8);
        if (count === 0) continue;
        this.checkRange(inode, physical, count);
        state.next = logical + count;
        yield { logical, physical, count, zero };
      } else {
        const child = e.readUInt32LE(4) + e.readUInt16LE(8) * 2 ** 32;
        this.checkRange(inode, child, 1);
        const block = await this.meta.read(child * this.sb.blockSize, this.sb.blockSize);
        const seed = this.sb.checksumSeed;
        if (seed !== undefined && !extentBlockChecksumOk(inodeSeed(seed, inode.ino, inode.generation), block)) {
          throw this.corrupt(inode, `extent block ${child} fails its metadata_csum checksum`);
        }
        yield* this.extentNode(inode, block, depth - 1, state, limit);
      }
    }
  }

  /** ext2/3 block map: 12 direct pointers, then single, double and triple indirect blocks. */
  private async *indirectRuns(inode: Inode, limit: number): AsyncGenerator<Run> {
    const perBlock = this.sb.blockSize / 4;
    for (let i = 0; i < 12 && i < limit; i++) {
      const b = inode.block.readUInt32LE(i * 4);
      if (b === 0) continue;
      this.checkRange(inode, b, 1);
      yield { logical: i, physical: b, count: 1, zero: false };
    }
    let logical = 12;
    for (let level = 1; level <= 3 && logical < limit; level++) {
      const ptr = inode.block.readUInt32LE((11 + level) * 4);
      if (ptr !== 0) yield* this.indirect(inode, ptr, level, logical, limit);
      logical += perBlock ** level;
    }
  }

  private async *indirect(inode: Inode, ptr: number, level: number, logical: number, limit: number): AsyncGenerator<Run> {
    this.checkRange(inode, ptr, 1);
    const perBlock = this.sb.blockSize / 4;
    const span = perBlock ** (level - 1);
    const block = await this.meta.read(ptr * this.sb.blockSize, this.sb.blockSize);
    for (let i = 0; i < perBlock && logical < limit; i++, logical += span) {
      const b = block.readUInt32LE(i * 4);
      if (b === 0) continue;
      if (level === 1) {
        this.checkRange(inode, b, 1);
        yield { logical, physical: b, count: 1, zero: false };
      } else {
        yield* this.indirect(inode, b, level - 1, logical, limit);
      }
    }
  }
}
