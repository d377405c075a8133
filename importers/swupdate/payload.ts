/**
 * The bytes of one sw-description entry: the cpio member as stored (byte sum and sha256 checked while it
 * streams), then AES-decrypted, then decompressed — swupdate's order, so producers compress first and
 * encrypt second. Payload.tree() opens the decoded content through the filesystem layer.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createUnzip } from 'node:zlib';
import { ByteSum, cpioChecksumError, type CpioMember } from '../../src/archive/cpio.ts';
import { decompressStream } from '../../src/fs/compression.ts';
import { InvalidInputError, PvError } from '../../src/errors.ts';
import type { RandomAccessSource } from '../../src/fs/source.ts';
import { openTempCopy } from '../../src/fs/temp-image.ts';
import type { Payload, PayloadKind } from '../types.ts';
import { aesDecipher, type AesKey } from './aes.ts';
import { lz4FrameDecoder } from './lz4-frame.ts';
import { NOT_CONVERTIBLE, type Entry } from './description.ts';
import { sha256For, type Sha256 } from '../../src/crypto/parallel-sha256.ts';

/** Enough decoded bytes to recognise a filesystem (ext4 superblock, GPT header, vfat BPB, tar header). */
const HEAD_BYTES = 64 * 1024;

export interface Decoding {
  sha256: string;
  size: number;
  head: Buffer;
}

export interface MemberScan {
  storedSha256: string;
  /** Decoded content facts per entry whose decoding was requested. */
  decoded: Map<Entry, Decoding>;
}

export const needsDecoding = (e: Entry): boolean => e.compressed !== false || e.encrypted !== false;

/** The decrypt and decompress stages for an entry (empty when stored as is). */
export function decodeStages(e: Entry, aes: AesKey | undefined, file: string): Transform[] {
  const stages: Transform[] = [];
  if (e.encrypted !== false) stages.push(aesDecipher(e.encrypted, aes, e, file));
  if (e.compressed === 'zlib') stages.push(createUnzip()); // swupdate inflates with gzip or zlib headers
  else if (e.compressed === 'zstd' || e.compressed === 'xz') stages.push(decompressStream(e.compressed));
  else if (e.compressed === 'lz4') stages.push(lz4FrameDecoder());
  return stages;
}

/** Turn decoder failures into one-line errors naming the member. */
function decodeError(err: unknown, e: Entry, file: string): PvError {
  if (err instanceof PvError) return err;
  const msg = (err as Error).message ?? String(err);
  const what = /bad decrypt|wrong final block/i.test(msg)
    ? `cannot be decrypted (${msg}): wrong --aes-key or ivt, or the member is corrupt`
    : `cannot be decoded (${e.compressed || 'stored'}${e.encrypted ? `, ${e.encrypted}` : ''}): ${msg}`;
  return new InvalidInputError('payload-decode', `${e.filename} ${what}`, { file, cause: err });
}

/** Counts and hashes what passes, keeping the first HEAD_BYTES. */
class Measure extends Writable {
  size = 0;
  private readonly headParts: Buffer[] = [];
  private headLen = 0;
  constructor(readonly hash: Sha256 & { dispose?(): void }) {
    super({ highWaterMark: 1 << 20 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.size += chunk.length;
    if (this.headLen < HEAD_BYTES) {
      const part = chunk.subarray(0, HEAD_BYTES - this.headLen);
      this.headParts.push(Buffer.from(part));
      this.headLen += part.length;
    }
    const pending = this.hash.update(chunk);
    if (pending) pending.then(() => cb(), cb);
    else cb();
  }
  async result(): Promise<Decoding> {
    return { sha256: await this.hash.digest(), size: this.size, head: Buffer.concat(this.headParts) };
  }
}

/**
 * Read one member once: crc byte sum and sha256 over the stored bytes, and for each entry in `decode` the
 * decrypted, decompressed size, sha256 and head. Fails on the first check that does not hold.
 */
export async function scanMember(src: RandomAccessSource, member: CpioMember, decode: Entry[], aes: AesKey | undefined): Promise<MemberScan> {
  const file = src.name;
  const sum = new ByteSum();
  // Large members hash on worker threads, beside the byte sum and the decoders.
  const stored = sha256For(member.size);
  const measures: Measure[] = [];
  try {
    const branches = decode.map((e) => {
      const input = new PassThrough({ highWaterMark: 1 << 20 });
      // The decoded size is unknown until the end; a compressed member is guessed to expand about 4×.
      const measure = new Measure(sha256For(e.compressed ? member.size * 4 : member.size));
      measures.push(measure);
      const done = pipeline([input, ...decodeStages(e, aes, file), measure]).then(
        () => measure.result(),
        (err: unknown) => {
          throw decodeError(err, e, file);
        },
      );
      done.catch(() => {}); // observed below; avoid an unhandled rejection while the read loop runs
      return { e, input, done };
    });
    try {
      for await (const chunk of src.stream(member.dataOffset, member.size) as AsyncIterable<Buffer>) {
        const hashing = stored.update(chunk);
        if (member.format === 'crc') sum.update(chunk);
        for (const b of branches) {
          if (b.input.destroyed) await b.done; // the decoder failed: surface its error, do not write on
          if (!b.input.write(chunk)) await waitDrain(b.input, b.done);
        }
        if (hashing) await hashing;
      }
    } finally {
      for (const b of branches) b.input.end();
    }
    if (member.format === 'crc' && sum.value !== member.check) throw cpioChecksumError(member, sum.value, file);
    const decoded = new Map<Entry, Decoding>();
    for (const b of branches) decoded.set(b.e, await b.done);
    return { storedSha256: await stored.digest(), decoded };
  } finally {
    stored.dispose?.();
    for (const m of measures) m.hash.dispose?.();
  }
}

function waitDrain(s: PassThrough, failed: Promise<unknown>): Promise<unknown> {
  return Promise.race([new Promise((r) => s.once('drain', r)), failed]);
}

/** A check at the end of the stored bytes: the sha256 swupdate would compare ("HASH mismatch"). */
function storedCheck(member: CpioMember, expectSha256: string | undefined, file: string): Transform {
  const sum = new ByteSum();
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (member.format === 'crc') sum.update(chunk);
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (member.format === 'crc' && sum.value !== member.check) return cb(cpioChecksumError(member, sum.value, file));
      const got = hash.digest('hex');
      if (expectSha256 && got !== expectSha256) return cb(sha256Mismatch(member.name, expectSha256, got, file));
      cb();
    },
  });
}

export function sha256Mismatch(name: string, expected: string, actual: string, file: string): InvalidInputError {
  return new InvalidInputError('sha256-mismatch', `${name}: sha256 of the stored member is ${actual} but sw-description says ${expected} (swupdate: HASH mismatch); the artifact was altered or corrupted`, { file });
}

function kindOf(e: Entry): PayloadKind {
  if (e.type === 'archive' || e.type === 'tar') return 'archive';
  if (e.type.startsWith('docker')) return 'docker-ref';
  return e.section === 'images' ? 'image' : e.section === 'files' ? 'file' : 'script';
}

export interface PayloadInput {
  src: RandomAccessSource;
  member: CpioMember;
  entry: Entry;
  decoding: Decoding;
  aes: AesKey | undefined;
  /** What the filesystem layer recognised in the decoded head, if anything. */
  imageKind: string | undefined;
}

export function makePayload({ src, member, entry, decoding, aes, imageKind }: PayloadInput): Payload {
  const file = src.name;
  const stream = (): Readable => {
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    let stages: Transform[];
    try {
      stages = decodeStages(entry, aes, file);
    } catch (err) {
      process.nextTick(() => out.destroy(err as Error));
      return out;
    }
    pipeline([src.stream(member.dataOffset, member.size), storedCheck(member, entry.sha256, file), ...stages, out]).catch((err: unknown) => out.destroy(decodeError(err, entry, file)));
    return out;
  };
  const notConvertible = NOT_CONVERTIBLE[entry.type];
  const archive = entry.type === 'archive' || entry.type === 'tar';
  const payload: Payload = {
    name: entry.filename!,
    kind: kindOf(entry),
    size: decoding.size,
    sha256: decoding.sha256,
    stream,
    attributes: {
      section: entry.section,
      type: entry.type,
      member: member.name,
      storedSize: member.size,
      ...(imageKind ? { imageKind } : {}),
      ...(notConvertible ? { notConvertible } : {}),
    },
  };
  if (!notConvertible && (archive || imageKind)) {
    payload.tree = async () => {
      const { openTar } = await import('../../src/fs/tar/reader.ts');
      const { openImage } = await import('../../src/fs/open-image.ts');
      const open = archive ? openTar : openImage;
      if (!needsDecoding(entry)) return open(src.slice(member.dataOffset, member.size, `${file} (${member.name})`));
      return openTempCopy(stream, `${file} (${member.name}, decoded)`, { prefix: 'pvmigrate-swu-', open });
    };
  }
  return payload;
}
