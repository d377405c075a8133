import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { InvalidInputError, fromSystemError } from '../errors.ts';

/**
 * Random access to bytes: a whole file, or a byte range inside another source (a tar member, a partition,
 * a bundle payload), so readers never copy a payload before they need it.
 */
/** Where a source's bytes lie in a file; `dev`/`ino` let another opener check it reached the same file. */
export interface FileLocation {
  path: string;
  offset: number;
  dev: number;
  ino: number;
}

export interface RandomAccessSource {
  /** What error messages name: the file, plus the range inside it when this is a slice. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `position`; a read past the end is an InvalidInputError (truncated input). */
  read(position: number, length: number): Promise<Buffer>;
  /** A view of `length` bytes from `offset`, sharing the underlying file. */
  slice(offset: number, length: number, name?: string): RandomAccessSource;
  /** A stream of `length` bytes from `offset` (whole source by default), read in chunks. */
  stream(offset?: number, length?: number): Readable;
  /** The plain file these bytes are in and where they start there, for work handed to other threads; none for memory. */
  location(): FileLocation | undefined;
  close(): Promise<void>;
}

const STREAM_CHUNK = 1 << 20;

abstract class BaseSource implements RandomAccessSource {
  abstract readonly name: string;
  abstract readonly size: number;
  abstract read(position: number, length: number): Promise<Buffer>;
  abstract location(): FileLocation | undefined;
  abstract close(): Promise<void>;

  slice(offset: number, length: number, name?: string): RandomAccessSource {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new InvalidInputError('truncated', `range ${offset}+${length} lies outside the ${this.size}-byte input`, { file: this.name });
    }
    return new SliceSource(this, offset, length, name ?? this.name);
  }

  stream(offset = 0, length = this.size - offset): Readable {
    let pos = offset;
    const end = offset + length;
    const readChunk = (readable: Readable): void => {
      if (pos >= end) {
        readable.push(null);
        return;
      }
      const n = Math.min(STREAM_CHUNK, end - pos);
      const at = pos;
      pos += n;
      this.read(at, n).then((b) => readable.push(b), (e: Error) => readable.destroy(e));
    };
    return new Readable({
      highWaterMark: STREAM_CHUNK,
      read() {
        readChunk(this);
      },
    });
  }
}

/** An open file; reads go through one file handle with positional reads. */
export class FileSource extends BaseSource {
  readonly name: string;
  readonly size: number;
  private readonly handle: FileHandle;

  private constructor(
    name: string,
    handle: FileHandle,
    size: number,
    private readonly id: { dev: number; ino: number },
  ) {
    super();
    this.name = name;
    this.handle = handle;
    this.size = size;
  }

  static async open(path: string): Promise<FileSource> {
    try {
      const handle = await open(path, 'r');
      const st = await handle.stat();
      if (st.isDirectory()) {
        await handle.close();
        throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      }
      return new FileSource(path, handle, st.size, { dev: st.dev, ino: st.ino });
    } catch (err) {
      throw fromSystemError(err, path);
    }
  }

  async read(position: number, length: number): Promise<Buffer> {
    if (position < 0 || length < 0 || position + length > this.size) {
      throw new InvalidInputError('truncated', `unexpected end of file: needed ${length} bytes at offset ${position}, the file has ${this.size}`, { file: this.name });
    }
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(buf, done, length - done, position + done);
      if (bytesRead === 0) throw new InvalidInputError('truncated', `file shrank while reading at offset ${position + done}`, { file: this.name });
      done += bytesRead;
    }
    return buf;
  }

  location(): FileLocation {
    return { path: this.name, offset: 0, ...this.id };
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** A byte range of another source. Closing a slice leaves its parent open. */
export class SliceSource extends BaseSource {
  constructor(
    private readonly parent: RandomAccessSource,
    private readonly offset: number,
    readonly size: number,
    readonly name: string,
  ) {
    super();
  }

  read(position: number, length: number): Promise<Buffer> {
    if (position < 0 || length < 0 || position + length > this.size) {
      return Promise.reject(new InvalidInputError('truncated', `unexpected end of data: needed ${length} bytes at offset ${position} of a ${this.size}-byte range`, { file: this.name }));
    }
    return this.parent.read(this.offset + position, length);
  }

  location(): FileLocation | undefined {
    // A subclass with its own read() transforms or checks the bytes (dm-verity, decryption): the file holds
    // something else, and reading it directly would bypass that.
    if (Object.getPrototypeOf(this).read !== SliceSource.prototype.read) return undefined;
    const at = this.parent.location();
    return at && { ...at, offset: at.offset + this.offset };
  }

  async close(): Promise<void> {}
}

/** Bytes already in memory (small inputs: manifests, test vectors). */
export class BufferSource extends BaseSource {
  constructor(private readonly buf: Buffer, readonly name: string) {
    super();
  }
  get size(): number {
    return this.buf.length;
  }
  async read(position: number, length: number): Promise<Buffer> {
    if (position < 0 || length < 0 || position + length > this.buf.length) {
      throw new InvalidInputError('truncated', `unexpected end of data: needed ${length} bytes at offset ${position}, have ${this.buf.length}`, { file: this.name });
    }
    return this.buf.subarray(position, position + length);
  }
  location(): undefined {
    return undefined;
  }
  async close(): Promise<void> {}
}
