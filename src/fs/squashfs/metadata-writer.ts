import { compressSync, type WriterCompression } from './compressor.ts';
import { METADATA_SIZE, METADATA_UNCOMPRESSED } from './format.ts';

/** A position inside a metadata table: compressed block start (relative to the table) and offset inside it. */
export interface MetaRef {
  block: number;
  offset: number;
}

/**
 * Packs records into 8 KiB metadata blocks, compressing each as it fills (stored raw when compression
 * does not shrink it), and keeps the compressed table in memory: inode and directory tables are a few
 * bytes per entry.
 */
export class MetadataWriter {
  private readonly done: Buffer[] = [];
  private doneBytes = 0;
  private current = Buffer.allocUnsafe(METADATA_SIZE);
  private used = 0;
  /** Compressed start of each finished block, for tables indexed by block (ids, fragments, xattr ids). */
  readonly blockStarts: number[] = [];

  constructor(
    private readonly comp: WriterCompression,
    private readonly blockSize: number,
  ) {}

  /** Where the next byte added will land. */
  get position(): MetaRef {
    return { block: this.doneBytes, offset: this.used };
  }

  /**
   * Compressed start of the block `k` blocks after the one starting at `first` (for directory indexes,
   * which point into later blocks of a long listing). Valid for blocks already written or being filled.
   */
  blockAfter(first: number, k: number): number {
    let i = this.blockStarts.length;
    if (first !== this.doneBytes) {
      i = this.blockStarts.indexOf(first);
      if (i < 0) throw new Error(`no metadata block starts at ${first}`);
    }
    if (i + k < this.blockStarts.length) return this.blockStarts[i + k]!;
    if (i + k === this.blockStarts.length) return this.doneBytes;
    throw new Error('metadata block not written yet');
  }

  add(data: Buffer): MetaRef {
    const at = this.position;
    let p = 0;
    while (p < data.length) {
      const n = Math.min(data.length - p, METADATA_SIZE - this.used);
      data.copy(this.current, this.used, p, p + n);
      this.used += n;
      p += n;
      if (this.used === METADATA_SIZE) this.flush();
    }
    return at;
  }

  private flush(): void {
    if (this.used === 0) return;
    const raw = this.current.subarray(0, this.used);
    const packed = compressSync(this.comp, raw, this.blockSize);
    const header = Buffer.allocUnsafe(2);
    let body: Buffer;
    if (packed.length < raw.length) {
      header.writeUInt16LE(packed.length, 0);
      body = packed;
    } else {
      header.writeUInt16LE(raw.length | METADATA_UNCOMPRESSED, 0);
      body = Buffer.from(raw);
    }
    this.blockStarts.push(this.doneBytes);
    this.done.push(header, body);
    this.doneBytes += 2 + body.length;
    this.current = Buffer.allocUnsafe(METADATA_SIZE);
    this.used = 0;
  }

  /** The finished table (the partial last block is flushed). */
  finish(): Buffer {
    this.flush();
    return Buffer.concat(this.done, this.doneBytes);
  }
}
