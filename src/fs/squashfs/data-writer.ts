import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { InvalidInputError } from '../../errors.ts';
import type { Entry, FileTree } from '../file-tree.ts';
import type { CompressorPool } from './compressor.ts';
import { DATA_UNCOMPRESSED, NO_FRAGMENT } from './format.ts';

/** Where a regular file's bytes went: filled in as its blocks reach the image. */
export interface FileData {
  size: number;
  start: number;
  blocks: Uint32Array;
  fragment: number;
  fragOffset: number;
  /** Bytes covered by sparse (all-zero, not stored) blocks. */
  sparse: number;
}

interface Item {
  packed: Promise<Buffer>;
  raw: Buffer;
  written(pos: number, word: number): void;
}

/**
 * Writes data and fragment blocks in order while a pool compresses them ahead (a bounded window), so the
 * image layout depends only on the tree's content. Identical files are stored once: a duplicate's blocks
 * are still compressed, then the write position is rewound over them (as mksquashfs does).
 */
export class DataWriter {
  private pos: number;
  private readonly queue: (Item | (() => void))[] = [];
  private readonly window: number;
  private readonly zero: Buffer;
  private fragBuf: Buffer;
  private fragUsed = 0;
  /** [start, size word] of each fragment block, filled in as they are written. */
  readonly fragments: [number, number][] = [];
  private readonly seen = new Map<string, FileData>();

  constructor(
    private readonly out: FileHandle,
    private readonly pool: CompressorPool,
    private readonly blockSize: number,
    start: number,
    workers: number,
  ) {
    this.pos = start;
    this.window = Math.max(4, workers * 4);
    this.zero = Buffer.alloc(blockSize);
    this.fragBuf = Buffer.alloc(blockSize);
  }

  get position(): number {
    return this.pos;
  }

  private async enqueue(item: Item | (() => void)): Promise<void> {
    // A failure is reported when the item's turn comes; until then it must not count as unhandled.
    if (typeof item !== 'function') item.packed.catch(() => {});
    this.queue.push(item);
    while (this.queue.length > this.window) await this.writeOne();
  }

  private async writeOne(): Promise<void> {
    const item = this.queue.shift()!;
    if (typeof item === 'function') {
      item();
      return;
    }
    const packed = await item.packed;
    let body = packed;
    let word = packed.length;
    if (packed.length >= item.raw.length) {
      body = item.raw;
      word = item.raw.length | DATA_UNCOMPRESSED;
    }
    let done = 0;
    while (done < body.length) {
      const { bytesWritten } = await this.out.write(body, done, body.length - done, this.pos + done);
      done += bytesWritten;
    }
    item.written(this.pos, word);
    this.pos += body.length;
  }

  async flush(): Promise<void> {
    this.flushFragment();
    while (this.queue.length > 0) await this.writeOne();
  }

  private flushFragment(): void {
    if (this.fragUsed === 0) return;
    const raw = this.fragBuf.subarray(0, this.fragUsed);
    const index = this.fragments.length;
    this.fragments.push([0, 0]);
    const packed = this.pool.compress(raw);
    packed.catch(() => {});
    this.queue.push({ packed, raw, written: (pos, word) => (this.fragments[index] = [pos, word]) });
    this.fragBuf = Buffer.alloc(this.blockSize);
    this.fragUsed = 0;
  }

  /** Store one regular file's content; returns where it lives (shared with an identical earlier file). */
  async addFile(tree: FileTree, entry: Entry): Promise<FileData> {
    const size = entry.size;
    const bs = this.blockSize;
    const hash = createHash('sha256');
    hash.update(`${size}\n`);
    if (size === 0) return { size, start: 0, blocks: new Uint32Array(0), fragment: NO_FRAGMENT, fragOffset: 0, sparse: 0 };
    const small = size < bs;
    const nBlocks = small ? 0 : Math.ceil(size / bs);
    const data: FileData = { size, start: small ? 0 : -1, blocks: new Uint32Array(nBlocks), fragment: NO_FRAGMENT, fragOffset: 0, sparse: 0 };
    let block = Buffer.allocUnsafe(small ? size : Math.min(bs, size));
    let fill = 0;
    let index = 0;
    let total = 0;
    const emit = async (buf: Buffer): Promise<void> => {
      const i = index++;
      if (buf.equals(this.zero.subarray(0, buf.length))) {
        hash.update(`z${buf.length}`);
        data.sparse += buf.length;
        return;
      }
      hash.update(buf);
      await this.enqueue({
        packed: this.pool.compress(buf),
        raw: buf,
        written: (pos, word) => {
          if (data.start < 0) data.start = pos;
          data.blocks[i] = word;
        },
      });
    };
    const stream = tree.open(entry);
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        let p = 0;
        total += chunk.length;
        if (total > size) throw new InvalidInputError('source-changed', `${entry.path} holds more than its ${size} bytes (changed while read?)`);
        while (p < chunk.length) {
          const n = Math.min(chunk.length - p, block.length - fill);
          chunk.copy(block, fill, p, p + n);
          fill += n;
          p += n;
          if (fill === block.length && !small) {
            await emit(block);
            const left = size - index * bs;
            block = Buffer.allocUnsafe(Math.min(bs, Math.max(left, 0)));
            fill = 0;
          }
        }
      }
    } finally {
      stream.destroy();
    }
    if (total !== size) throw new InvalidInputError('source-changed', `${entry.path} has ${total} bytes, ${size} expected (changed while read?)`);

    if (small) hash.update(block);
    const key = hash.digest('hex');
    const earlier = this.seen.get(key);
    if (earlier) {
      if (!small) {
        // Our blocks are queued or written: once they are, move the write position back over them.
        this.queue.push(() => {
          if (data.start >= 0) this.pos = data.start;
        });
      }
      return earlier;
    }
    this.seen.set(key, data);
    if (small) {
      if (this.fragUsed + size > bs) this.flushFragment();
      data.fragment = this.fragments.length;
      data.fragOffset = this.fragUsed;
      block.copy(this.fragBuf, this.fragUsed);
      this.fragUsed += size;
    } else {
      // A file made only of sparse blocks has no start; any position reads the same.
      this.queue.push(() => {
        if (data.start < 0) data.start = 0;
      });
    }
    return data;
  }
}
