import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { EnvironmentError, InvalidInputError, fromSystemError } from '../../src/errors.ts';
import { DecompressError, decompress } from '../../src/fs/compression.ts';

/**
 * casync blob indexes (`.caibx`, made by `rauc convert`/`casync make`): a header, then a table of
 * (end offset, chunk id) items; each chunk lives zstd-compressed in the chunk store as
 * `<store>/<id[0:4]>/<id>.cacnk`, and its id is the SHA-512/256 (or SHA-256) of its uncompressed bytes.
 * The reconstructed image streams chunk by chunk, each chunk checked against its id.
 */
const CA_FORMAT_INDEX = 0x96824d9c7b129ff9n;
const CA_FORMAT_TABLE = 0xe75b9e112f17417dn;
const CA_FORMAT_TABLE_TAIL_MARKER = 0x4b4f050e5549ecd1n;
const CA_FORMAT_SHA512_256 = 0x2000000000000000n;
const HEADER = 48;
const TABLE_HEADER = 16;
const ITEM = 40;
const TAIL = 40;
/** casync caps chunk_size_max far below this; anything larger is a corrupt index. */
const MAX_CHUNK = 64 << 20;

export interface CasyncIndex {
  hash: 'sha512-256' | 'sha256';
  chunkMax: number;
  chunks: { id: string; size: number }[];
  size: number;
}

export function parseCaibx(buf: Buffer, file: string): CasyncIndex {
  const fail = (msg: string): never => {
    throw new InvalidInputError('rauc-casync-index', `casync index is corrupt: ${msg}`, { file });
  };
  if (buf.length < HEADER + TABLE_HEADER + TAIL) fail(`only ${buf.length} bytes`);
  if (buf.readBigUInt64LE(0) !== BigInt(HEADER) || buf.readBigUInt64LE(8) !== CA_FORMAT_INDEX) fail('no index header (is this a .caidx directory index? only blob indexes are read)');
  const flags = buf.readBigUInt64LE(16);
  const chunkMax = Number(buf.readBigUInt64LE(40));
  if (chunkMax <= 0 || chunkMax > MAX_CHUNK) fail(`maximum chunk size ${chunkMax} out of range`);
  if (buf.readBigUInt64LE(HEADER) !== 0xffffffffffffffffn || buf.readBigUInt64LE(HEADER + 8) !== CA_FORMAT_TABLE) fail('no table header');
  const itemsEnd = buf.length - TAIL;
  if ((itemsEnd - HEADER - TABLE_HEADER) % ITEM !== 0) fail('table size is not a whole number of items');
  if (buf.readBigUInt64LE(buf.length - 8) !== CA_FORMAT_TABLE_TAIL_MARKER) fail('no table tail marker');
  const chunks: CasyncIndex['chunks'] = [];
  let prev = 0;
  for (let p = HEADER + TABLE_HEADER; p < itemsEnd; p += ITEM) {
    const end = Number(buf.readBigUInt64LE(p));
    const size = end - prev;
    if (size <= 0 || size > chunkMax) fail(`chunk ${chunks.length} spans ${size} bytes (maximum ${chunkMax})`);
    chunks.push({ id: buf.subarray(p + 8, p + ITEM).toString('hex'), size });
    prev = end;
  }
  return { hash: flags & CA_FORMAT_SHA512_256 ? 'sha512-256' : 'sha256', chunkMax, chunks, size: prev };
}

/** The blob an index describes, read from `store` chunk by chunk; errors on a missing or corrupt chunk. */
export function casyncBlobStream(index: CasyncIndex, store: string, file: string): Readable {
  let i = 0;
  return new Readable({
    async read() {
      if (i === index.chunks.length) return void this.push(null);
      const { id, size } = index.chunks[i++]!;
      const path = join(store, id.slice(0, 4), `${id}.cacnk`);
      try {
        let packed: Buffer;
        try {
          packed = await readFile(path);
        } catch (err) {
          const e = fromSystemError(err, path);
          throw new EnvironmentError('rauc-casync-chunk', `chunk ${id} is not in the chunk store ${store} (${e.message}); --castr must point at the store the bundle was made with`, { file: path, cause: err });
        }
        if (packed.length > index.chunkMax + 1024) throw new InvalidInputError('rauc-casync-chunk', `chunk file is ${packed.length} bytes, larger than any chunk of this index`, { file: path });
        let data: Buffer;
        try {
          data = await decompress('zstd', packed, size);
        } catch (err) {
          if (err instanceof DecompressError) throw new InvalidInputError('rauc-casync-chunk', `chunk is corrupt: ${err.message}`, { file: path, cause: err });
          throw err;
        }
        if (data.length !== size) throw new InvalidInputError('rauc-casync-chunk', `chunk holds ${data.length} bytes, the index says ${size}`, { file: path });
        if (createHash(index.hash).update(data).digest('hex') !== id) throw new InvalidInputError('rauc-casync-chunk', `chunk content does not match its id ${id}: the chunk store is corrupt`, { file: path });
        this.push(data);
      } catch (err) {
        this.destroy(err as Error);
      }
    },
  });
}
