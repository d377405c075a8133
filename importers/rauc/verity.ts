import { createHash } from 'node:crypto';
import { InvalidInputError } from '../../src/errors.ts';
import { SliceSource, type RandomAccessSource } from '../../src/fs/source.ts';

/**
 * dm-verity (format 1, no superblock) as RAUC lays it out after the squashfs: salted SHA-256 over 4 KiB
 * blocks, 128 digests per 4 KiB hash block, top level first. The tree is checked against the signed root
 * once; each data block is then checked against its leaf digest whenever it is read through VerifiedSource.
 */
export const VERITY_BLOCK = 4096;
const DIGEST = 32;
const PER_BLOCK = VERITY_BLOCK / DIGEST;
/** A tree larger than this would cover more than 16 TiB of data: refuse instead of allocating it. */
const MAX_TREE = 1 << 30;

export interface VerityParams {
  rootHash: string;
  salt: string;
  /** Bytes of hash tree at the end of the payload (`verity-size`). */
  treeSize: number;
}

/** Hash blocks per level, leaves first, for `dataBlocks` data blocks. */
export function verityLevels(dataBlocks: number): number[] {
  const levels: number[] = [];
  let n = dataBlocks;
  do {
    n = Math.ceil(n / PER_BLOCK);
    levels.push(n);
  } while (n > 1);
  return levels;
}

function saltedHash(salt: Buffer, block: Buffer): Buffer {
  return createHash('sha256').update(salt).update(block).digest();
}

/**
 * Check the tree at the end of `payload` against the signed root hash and return a source of the data area
 * whose every read is verified.
 */
export async function openVerity(payload: RandomAccessSource, params: VerityParams): Promise<VerifiedSource> {
  const file = payload.name;
  const fail = (message: string): never => {
    throw new InvalidInputError('rauc-verity', message, { file });
  };
  const dataSize = payload.size - params.treeSize;
  if (params.treeSize <= 0 || dataSize <= 0) fail(`verity-size ${params.treeSize} does not fit the ${payload.size}-byte payload: the bundle is truncated or its manifest is wrong`);
  if (dataSize % VERITY_BLOCK !== 0) fail(`verity data area is ${dataSize} bytes, not a multiple of ${VERITY_BLOCK}: the bundle is truncated or corrupt`);
  const levels = verityLevels(dataSize / VERITY_BLOCK);
  const expected = levels.reduce((a, b) => a + b, 0) * VERITY_BLOCK;
  if (expected !== params.treeSize) fail(`verity-size is ${params.treeSize} bytes but ${dataSize} bytes of data need a ${expected}-byte hash tree: the bundle is truncated or corrupt`);
  if (expected > MAX_TREE) fail(`verity hash tree of ${expected} bytes is too large`);
  const salt = Buffer.from(params.salt, 'hex');
  const tree = await payload.read(dataSize, params.treeSize);

  // On disk the top level comes first: level i (0 = leaves) starts after all levels above it.
  const offsets: number[] = [];
  let off = 0;
  for (let i = levels.length - 1; i >= 0; i--) {
    offsets[i] = off;
    off += levels[i]! * VERITY_BLOCK;
  }
  const top = tree.subarray(offsets[levels.length - 1]!, offsets[levels.length - 1]! + VERITY_BLOCK);
  if (!saltedHash(salt, top).equals(Buffer.from(params.rootHash, 'hex'))) {
    fail('verity hash tree does not match the signed root hash (verity-hash): the hash tree was modified or the bundle is corrupt');
  }
  for (let lvl = levels.length - 1; lvl > 0; lvl--) {
    const parent = tree.subarray(offsets[lvl]!, offsets[lvl]! + levels[lvl]! * VERITY_BLOCK);
    const childCount = levels[lvl - 1]!;
    for (let b = 0; b < childCount; b++) {
      const child = tree.subarray(offsets[lvl - 1]! + b * VERITY_BLOCK, offsets[lvl - 1]! + (b + 1) * VERITY_BLOCK);
      if (!saltedHash(salt, child).equals(parent.subarray(b * DIGEST, (b + 1) * DIGEST))) {
        fail(`verity hash tree block ${b} of level ${lvl - 1} does not match its parent: the hash tree was modified`);
      }
    }
    if (parent.subarray(childCount * DIGEST).some((x) => x !== 0)) fail(`verity hash tree level ${lvl} has non-zero padding: the hash tree was modified`);
  }
  const leaves = tree.subarray(offsets[0]!, offsets[0]! + levels[0]! * VERITY_BLOCK);
  if (leaves.subarray((dataSize / VERITY_BLOCK) * DIGEST).some((x) => x !== 0)) fail('verity hash tree leaf level has non-zero padding: the hash tree was modified');
  return new VerifiedSource(payload, dataSize, salt, leaves);
}

const CACHE_BLOCKS = 256;
/** Blocks hashed per staging round; salt ‖ block laid out contiguously so each block costs one hash update. */
const STAGE_BLOCKS = 256;

/** The verity data area; a read fails on the first block whose salted hash differs from its leaf digest. */
export class VerifiedSource extends SliceSource {
  // Recently verified blocks, so small reads of a filesystem reader do not re-read and re-hash one block.
  private readonly cache = new Map<number, Buffer>();
  private readonly stride: number;
  private readonly stage: Buffer;

  constructor(
    private readonly payload: RandomAccessSource,
    size: number,
    salt: Buffer,
    private readonly leaves: Buffer,
  ) {
    super(payload, 0, size, payload.name);
    this.stride = salt.length + VERITY_BLOCK;
    this.stage = Buffer.alloc(this.stride * STAGE_BLOCKS);
    for (let k = 0; k < STAGE_BLOCKS; k++) salt.copy(this.stage, k * this.stride);
  }

  /** Check whole blocks `buf` starting at block `first` (synchronous, so the shared stage is never interleaved). */
  private checkBlocks(buf: Buffer, first: number): void {
    const n = buf.length / VERITY_BLOCK;
    const saltLen = this.stride - VERITY_BLOCK;
    for (let done = 0; done < n; done += STAGE_BLOCKS) {
      const m = Math.min(STAGE_BLOCKS, n - done);
      for (let k = 0; k < m; k++) buf.copy(this.stage, k * this.stride + saltLen, (done + k) * VERITY_BLOCK, (done + k + 1) * VERITY_BLOCK);
      for (let k = 0; k < m; k++) {
        const b = first + done + k;
        const digest = createHash('sha256').update(this.stage.subarray(k * this.stride, (k + 1) * this.stride)).digest();
        if (!digest.equals(this.leaves.subarray(b * DIGEST, (b + 1) * DIGEST))) {
          throw new InvalidInputError('rauc-verity-data', `payload block ${b} (offset ${b * VERITY_BLOCK}) fails its dm-verity hash: the bundle payload was modified or is corrupt`, { file: this.name });
        }
      }
    }
  }

  override async read(position: number, length: number): Promise<Buffer> {
    if (position < 0 || length < 0 || position + length > this.size) return super.read(position, length);
    if (length === 0) return Buffer.alloc(0);
    const first = Math.floor(position / VERITY_BLOCK);
    const last = Math.floor((position + length - 1) / VERITY_BLOCK);
    if (first === last && this.cache.has(first)) {
      const b = this.cache.get(first)!;
      return b.subarray(position - first * VERITY_BLOCK, position - first * VERITY_BLOCK + length);
    }
    const buf = await this.payload.read(first * VERITY_BLOCK, (last - first + 1) * VERITY_BLOCK);
    this.checkBlocks(buf, first);
    if (last - first < 4) {
      for (let b = first; b <= last; b++) this.remember(b, buf.subarray((b - first) * VERITY_BLOCK, (b - first + 1) * VERITY_BLOCK));
    }
    return buf.subarray(position - first * VERITY_BLOCK, position - first * VERITY_BLOCK + length);
  }

  private remember(block: number, data: Buffer): void {
    this.cache.delete(block);
    this.cache.set(block, data);
    if (this.cache.size > CACHE_BLOCKS) this.cache.delete(this.cache.keys().next().value!);
  }

  /** Read and check every data block once (what `rauc extract` does before trusting the payload). */
  async checkAll(): Promise<void> {
    for await (const _ of this.stream()) {
      // Each chunk was verified by read().
    }
  }

  /** The data area read without block checks: only for use after checkAll() (see openBundle for when). */
  unchecked(): RandomAccessSource {
    return this.payload.slice(0, this.size, this.name);
  }
}
