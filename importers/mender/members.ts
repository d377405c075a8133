import { sha256Of } from '../../src/crypto/sha256-stream.ts';
import { pipeline, type Readable, type TransformOptions } from 'node:stream';
import { createGunzip, type ZlibOptions } from 'node:zlib';
import { InvalidInputError, PvError } from '../../src/errors.ts';
import { DecompressError, decompressStream } from '../../src/fs/compression.ts';
import type { RandomAccessSource } from '../../src/fs/source.ts';
import type { TarMember } from '../../src/fs/tar/stream.ts';

/** Compression of an outer member, from its name suffix only (as mender-artifact decides). */
export type MemberCompression = 'none' | 'gzip' | 'xz' | 'zstd';

export function compressionOfName(name: string): MemberCompression {
  if (name.endsWith('.gz')) return 'gzip';
  if (name.endsWith('.xz')) return 'xz';
  if (name.endsWith('.zst')) return 'zstd';
  return 'none';
}

/** The decoded bytes of an outer member read straight from its byte range. */
export function decodedMember(src: RandomAccessSource, m: TarMember, compression: MemberCompression): Readable {
  const raw = src.stream(m.dataOffset, m.dataSize);
  if (compression === 'none') return raw;
  // gzip (the common case) with 1 MiB output chunks: zlib's default 16 KiB chunks make a 200 MB payload
  // cost ~10× more in per-chunk overhead (measured in bench/mender.bench.ts). Up to 8 MiB decoded ahead lets
  // the pool thread inflate while this one hashes (zlib passes the option on to its Transform).
  const gunzip: ZlibOptions & TransformOptions = { chunkSize: 1 << 20, readableHighWaterMark: 8 << 20 };
  const decoder = compression === 'gzip' ? createGunzip(gunzip) : decompressStream(compression);
  return pipeline(raw, decoder, () => {});
}

/** Rewrap decoder and tar errors so they name the member they concern. */
export function memberError(err: unknown, file: string, member: string): PvError {
  if (err instanceof DecompressError) return new InvalidInputError('mender-compression', `${member}: ${err.message}; the artifact is damaged`, { file, cause: err });
  // node:zlib reports corrupt gzip with its own error codes.
  const zcode = (err as { code?: unknown })?.code;
  if (typeof zcode === 'string' && zcode.startsWith('Z_')) {
    return new InvalidInputError('mender-compression', `${member}: compressed data is corrupt (${(err as Error).message}); the artifact is damaged`, { file, cause: err });
  }
  if (err instanceof PvError) {
    if (err.message.startsWith(`${member}:`) || err.code.startsWith('mender-')) return err;
    return new InvalidInputError(err.code, `${member}: ${err.message}`, { file, cause: err });
  }
  return new InvalidInputError('mender-read', `${member}: ${(err as Error)?.message ?? String(err)}`, { file, cause: err });
}

/** sha256 of a byte range as stored. */
export async function hashRange(src: RandomAccessSource, offset: number, length: number): Promise<string> {
  return (await sha256Of(src.stream(offset, length))).sha256;
}

/** A small member read whole, refusing anything above `max` bytes. */
export async function readSmall(src: RandomAccessSource, m: TarMember, max: number): Promise<Buffer> {
  if (m.dataSize > max) throw new InvalidInputError('mender-structure', `${m.path} is ${m.dataSize} bytes; at most ${max} are expected`, { file: src.name });
  return src.read(m.dataOffset, m.dataSize);
}
