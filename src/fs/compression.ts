/**
 * Shared decompressors for filesystem blocks and compressed payloads. Everything is pure JS/WASM (npm runs
 * no install scripts here, so no native addons): zlib/gzip from Node, zstd from `fzstd`, xz from
 * `xz-decompress` (xz-embedded compiled to WASM, async), lz4 block and LZO1X by the small decoders below.
 * Every call is bounded by `maxOut`, so a corrupt or hostile input cannot blow up memory.
 */
import { Blob } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import { createGunzip, createInflate, gunzip, gunzipSync, inflate, inflateSync } from 'node:zlib';
import { Decompress as ZstdStream, decompress as zstdDecompress } from 'fzstd';
import { createRequire } from 'node:module';

// xz-decompress ships a UMD bundle whose named export ESM cannot see; loaded on first xz use.
let xzModule: typeof import('xz-decompress') | undefined;
const XzStream = (input: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> => {
  xzModule ??= createRequire(import.meta.url)('xz-decompress') as typeof import('xz-decompress');
  return new xzModule.XzReadableStream(input);
};

export type Compression = 'gzip' | 'zlib' | 'xz' | 'zstd' | 'lz4' | 'lzo';

/** Thrown for malformed compressed data; callers wrap it into an InvalidInputError naming their file. */
export class DecompressError extends Error {
  constructor(kind: Compression, message: string) {
    super(`${kind} data is corrupt: ${message}`);
  }
}

/**
 * Decompress one self-contained block (a squashfs block, a whole small payload) of at most `maxOut` bytes.
 * gzip = RFC 1952 framing, zlib = RFC 1950 (what squashfs calls "gzip"), lz4 = raw LZ4 block, lzo = LZO1X.
 */
export async function decompress(kind: Compression, input: Buffer, maxOut: number): Promise<Buffer> {
  if (kind === 'xz') return xzDecompress(input, maxOut);
  if (kind === 'zlib' || kind === 'gzip') {
    // Node's async zlib runs on the libuv pool, so blocks read ahead decompress in parallel.
    const run = kind === 'zlib' ? inflateAsync : gunzipAsync;
    try {
      return await run(input, zlibLimits(maxOut));
    } catch (err) {
      throw new DecompressError(kind, (err as Error).message);
    }
  }
  return decompressSync(kind, input, maxOut);
}

const inflateAsync = promisify(inflate);

/** Output bounded by maxOut, produced in one chunk when it fits (zlib's default 16 KiB chunks cost copies). */
function zlibLimits(maxOut: number): { maxOutputLength: number; chunkSize: number } {
  return { maxOutputLength: Math.max(1, maxOut), chunkSize: Math.min(Math.max(maxOut, 64), 1 << 20) };
}
const gunzipAsync = promisify(gunzip);

/** The synchronous decoders (all but xz, whose WASM decoder only has an async interface). */
export function decompressSync(kind: Exclude<Compression, 'xz'>, input: Buffer, maxOut: number): Buffer {
  try {
    switch (kind) {
      case 'zlib':
        return inflateSync(input, zlibLimits(maxOut));
      case 'gzip':
        return gunzipSync(input, zlibLimits(maxOut));
      case 'zstd': {
        // fzstd sizes its output from the frame header, so refuse an oversized claim before it allocates.
        const claimed = zstdContentSize(input);
        if (claimed !== undefined && claimed > maxOut) throw new DecompressError('zstd', `frame claims ${claimed} bytes, more than the expected ${maxOut}`);
        const out = zstdDecompress(input);
        if (out.byteLength > maxOut) throw new DecompressError('zstd', `output exceeds the expected ${maxOut} bytes`);
        return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
      }
      case 'lz4':
        return lz4BlockDecompress(input, maxOut);
      case 'lzo':
        return lzo1xDecompress(input, maxOut);
    }
  } catch (err) {
    if (err instanceof DecompressError) throw err;
    throw new DecompressError(kind, (err as Error).message);
  }
}

/** Frame_Content_Size of a zstd frame header (RFC 8878 §3.1.1.1), when the frame records it. */
function zstdContentSize(b: Buffer): number | undefined {
  if (b.length < 6 || b.readUInt32LE(0) !== 0xfd2fb528) return undefined;
  const fhd = b[4]!;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  let p = 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]!;
  const size = fcsFlag === 0 ? single : [1, 2, 4, 8][fcsFlag]!;
  if (size === 0 || p + size > b.length) return undefined;
  switch (size) {
    case 1:
      return b[p];
    case 2:
      return b.readUInt16LE(p) + 256;
    case 4:
      return b.readUInt32LE(p);
    default:
      return Number(b.readBigUInt64LE(p));
  }
}

async function xzDecompress(input: Buffer, maxOut: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    const reader = XzStream(new Blob([input]).stream() as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxOut) {
        await reader.cancel();
        throw new DecompressError('xz', `output exceeds the expected ${maxOut} bytes`);
      }
      chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
  } catch (err) {
    if (err instanceof DecompressError) throw err;
    throw new DecompressError('xz', (err as Error).message);
  }
  return Buffer.concat(chunks, total);
}

/** Raw LZ4 block format (no frame): sequences of literals + (offset, match length). */
export function lz4BlockDecompress(src: Buffer, maxOut: number): Buffer {
  const out = Buffer.allocUnsafe(maxOut);
  let ip = 0;
  let op = 0;
  const fail = (why: string): never => {
    throw new DecompressError('lz4', why);
  };
  const extLength = (len: number): number => {
    let b: number;
    do {
      if (ip >= src.length) fail('truncated length');
      b = src[ip++]!;
      len += b;
    } while (b === 255);
    return len;
  };
  while (ip < src.length) {
    const token = src[ip++]!;
    let lit = token >> 4;
    if (lit === 15) lit = extLength(lit);
    if (ip + lit > src.length) fail('literals run past the input');
    if (op + lit > maxOut) fail(`output exceeds the expected ${maxOut} bytes`);
    src.copy(out, op, ip, ip + lit);
    ip += lit;
    op += lit;
    if (ip === src.length) break; // the last sequence has literals only
    if (ip + 2 > src.length) fail('truncated offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) fail('match offset before the start of the output');
    let len = token & 15;
    if (len === 15) len = extLength(len);
    len += 4;
    if (op + len > maxOut) fail(`output exceeds the expected ${maxOut} bytes`);
    copyMatch(out, op, offset, len);
    op += len;
  }
  return out.subarray(0, op);
}

/** LZ77 back-reference copy; byte by byte when source and destination overlap (run-length matches). */
function copyMatch(out: Buffer, op: number, distance: number, len: number): void {
  if (distance >= len) {
    out.copy(out, op, op - distance, op - distance + len);
  } else {
    for (let i = 0; i < len; i++) out[op + i] = out[op - distance + i]!;
  }
}

/** LZO1X (as produced by lzo1x_1 and lzo1x_999), with every read and write bounds-checked. */
export function lzo1xDecompress(src: Buffer, maxOut: number): Buffer {
  const out = Buffer.allocUnsafe(maxOut);
  let ip = 0;
  let op = 0;
  const fail = (why: string): never => {
    throw new DecompressError('lzo', why);
  };
  const byte = (): number => {
    if (ip >= src.length) fail('truncated input');
    return src[ip++]!;
  };
  const ext = (base: number): number => {
    let t = base;
    let b: number;
    while ((b = byte()) === 0) {
      t += 255;
      if (t > maxOut) fail('length exceeds the output size');
    }
    return t + b;
  };
  const literals = (n: number): void => {
    if (ip + n > src.length) fail('literals run past the input');
    if (op + n > maxOut) fail(`output exceeds the expected ${maxOut} bytes`);
    src.copy(out, op, ip, ip + n);
    ip += n;
    op += n;
  };
  const match = (distance: number, len: number): void => {
    if (distance <= 0 || distance > op) fail('match offset before the start of the output');
    if (op + len > maxOut) fail(`output exceeds the expected ${maxOut} bytes`);
    copyMatch(out, op, distance, len);
    op += len;
  };

  // state: literals copied after the last match (0..3), or 4 after a long literal run.
  let state = 0;
  if (src.length > 0 && src[0]! > 17) {
    const t = byte() - 17;
    literals(t);
    state = t < 4 ? t : 4;
  }
  for (;;) {
    let t = byte();
    let next: number;
    if (t < 16) {
      if (state === 0) {
        literals((t === 0 ? ext(15) : t) + 3);
        state = 4;
        continue;
      }
      next = t & 3;
      if (state !== 4) {
        match(1 + (t >> 2) + (byte() << 2), 2);
      } else {
        match(1 + 0x800 + (t >> 2) + (byte() << 2), 3);
      }
    } else if (t >= 64) {
      next = t & 3;
      match(1 + ((t >> 2) & 7) + (byte() << 3), (t >> 5) + 1);
    } else if (t >= 32) {
      const len = (t & 31) === 0 ? ext(31) + 2 : (t & 31) + 2;
      const d = byte() | (byte() << 8);
      next = d & 3;
      match(1 + (d >> 2), len);
    } else {
      const len = (t & 7) === 0 ? ext(7) + 2 : (t & 7) + 2;
      const d = byte() | (byte() << 8);
      next = d & 3;
      const distance = ((t & 8) << 11) + (d >> 2);
      if (distance === 0) break; // end-of-stream marker
      match(distance + 0x4000, len);
    }
    if (next > 0) literals(next);
    state = next;
  }
  return out.subarray(0, op);
}

/**
 * A streaming decoder for a compressed payload (gzip, zlib, xz or zstd), bounded by `maxOut` total bytes
 * when given. Output chunks are passed on as they are produced.
 */
export function decompressStream(kind: 'gzip' | 'zlib' | 'xz' | 'zstd', maxOut = Infinity): Transform {
  let produced = 0;
  /** Pass a chunk on unless it crosses the bound (the stream is then destroyed); false also when our reader is behind. */
  const limit = (t: Transform, chunk: Uint8Array): boolean => {
    produced += chunk.byteLength;
    if (produced > maxOut) {
      t.destroy(new DecompressError(kind, `output exceeds the expected ${maxOut} bytes`));
      return false;
    }
    return t.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  };
  if (kind === 'gzip' || kind === 'zlib') {
    const z = kind === 'gzip' ? createGunzip() : createInflate();
    if (maxOut === Infinity) return z;
    let ended: (() => void) | undefined;
    const t: Transform = new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        z.write(chunk, () => cb());
      },
      flush(cb: TransformCallback) {
        ended = cb;
        z.end();
      },
    });
    z.on('data', (d: Buffer) => limit(t, d));
    z.on('end', () => ended?.());
    z.on('error', (e) => t.destroy(new DecompressError(kind, e.message)));
    return t;
  }
  if (kind === 'zstd') {
    const t: Transform = new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        try {
          z.push(chunk);
          cb();
        } catch (e) {
          cb(new DecompressError('zstd', (e as Error).message));
        }
      },
      flush(cb: TransformCallback) {
        try {
          z.push(new Uint8Array(0), true);
          cb();
        } catch (e) {
          cb(new DecompressError('zstd', (e as Error).message));
        }
      },
    });
    // Synchronous per input chunk: Transform itself holds the next chunk back while our reader is behind.
    const z = new ZstdStream((data) => {
      if (!t.destroyed) limit(t, data);
    });
    return t;
  }
  // xz: our writable side feeds a web stream the decoder pulls from, and a pump moves its output to our
  // readable side. Both wait for room: a chunk is taken only as the decoder consumes input, and the pump
  // pauses while our reader is behind, so neither compressed nor decoded bytes pile up in memory.
  let feed!: ReadableStreamDefaultController<Uint8Array>;
  let inputTaken: TransformCallback | undefined;
  const input = new ReadableStream<Uint8Array>(
    {
      start: (c) => void (feed = c),
      pull: () => {
        const cb = inputTaken;
        inputTaken = undefined;
        cb?.();
      },
    },
    new CountQueuingStrategy({ highWaterMark: 4 }),
  );
  const reader = XzStream(input).getReader();
  let outputRead: (() => void) | undefined;
  const t: Transform = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      feed.enqueue(new Uint8Array(chunk));
      if ((feed.desiredSize ?? 0) > 0) cb();
      else inputTaken = cb;
    },
    flush(cb: TransformCallback) {
      feed.close();
      pumped.then(() => cb(), (e: Error) => cb(e instanceof DecompressError ? e : new DecompressError('xz', e.message)));
    },
    destroy(err, cb) {
      // xz-decompress has ONE global decoder context, released only when a stream finishes, fails or is
      // cancelled: a stream dropped early (output bound hit, consumer gone) must cancel, or every later xz
      // decode waits on it forever (the process then exits 13 with nothing pending).
      if (!finished) reader.cancel().catch(() => undefined);
      cb(err);
    },
  });
  // Transform's own _read releases a held write; here it also resumes a pump waiting for our reader.
  const transformRead = t._read.bind(t);
  t._read = (size: number) => {
    const resume = outputRead;
    outputRead = undefined;
    resume?.();
    transformRead(size);
  };
  let finished = false;
  const pumped = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      if (!limit(t, value)) {
        if (t.destroyed) return;
        await new Promise<void>((r) => (outputRead = r));
      }
    }
  })();
  pumped.catch((e: Error) => t.destroy(e instanceof DecompressError ? e : new DecompressError('xz', e.message)));
  return t;
}
