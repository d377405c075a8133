/**
 * Streaming reader for SVR4 ASCII cpio archives: newc (070701) and crc (070702).
 *
 * Reading only: headers are parsed one at a time from a RandomAccessSource and member data is never
 * loaded by the reader; callers stream each member's range (and may verify the crc byte sum while they
 * do with ByteSum / checkedMemberStream). Writing lives elsewhere.
 *
 * Why not the npm `cpio-stream` package: it decodes the crc check field but never verifies it, keeps
 * emitting entries after a header error, does not bound name sizes, and needs `bl`; a byte-sum check
 * that fails on the first bad member is the point of reading 070702.
 */
import { Transform, type TransformCallback, type Readable } from 'node:stream';
import { InvalidInputError } from '../errors.ts';
import type { RandomAccessSource } from '../fs/source.ts';

export type CpioFormat = 'newc' | 'crc';

export const CPIO_HEADER_SIZE = 110;
export const CPIO_TRAILER = 'TRAILER!!!';
const MAGIC_FORMAT: Record<string, CpioFormat> = { '070701': 'newc', '070702': 'crc' };
/** A name longer than PATH_MAX is corrupt input, not a file name. */
const MAX_NAME_SIZE = 4096;

export interface CpioMember {
  name: string;
  format: CpioFormat;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  /** Stored size of the data in bytes (32-bit field, so < 4 GiB). */
  size: number;
  devMajor: number;
  devMinor: number;
  rdevMajor: number;
  rdevMinor: number;
  /** The c_check field: the byte sum of the data for crc archives, 0 for newc. */
  check: number;
  /** Where the header starts, where the data starts and where the next header starts (all absolute). */
  headerOffset: number;
  dataOffset: number;
  nextOffset: number;
  /** 0-based position in the archive. */
  index: number;
}

/** Arithmetic, not bit operations: offsets pass 2^32 in archives with large members. */
const align4 = (n: number): number => n + ((4 - (n % 4)) % 4);

function hexField(head: Buffer, offset: number, field: string, at: number, file: string): number {
  const text = head.toString('latin1', offset, offset + 8);
  if (!/^[0-9A-Fa-f]{8}$/.test(text)) {
    throw new InvalidInputError('cpio-header', `cpio header at offset ${at}: field ${field} is '${text.replace(/[^\x20-\x7e]/g, '?')}', not 8 hex digits; the archive is corrupt`, { file });
  }
  return parseInt(text, 16);
}

/** The format named by the first 6 bytes, or undefined when they are not a newc/crc magic. */
export function cpioFormatOf(head: Uint8Array): CpioFormat | undefined {
  return MAGIC_FORMAT[Buffer.from(head.buffer, head.byteOffset, Math.min(6, head.length)).toString('latin1')];
}

/** Parse the 110-byte header at absolute offset `at` (head holds the header bytes). */
export function parseCpioHeader(head: Buffer, at: number, file: string): Omit<CpioMember, 'name' | 'dataOffset' | 'nextOffset' | 'index'> & { nameSize: number } {
  const magic = head.toString('latin1', 0, 6);
  const format = MAGIC_FORMAT[magic];
  if (!format) {
    const shown = magic.replace(/[^\x20-\x7e]/g, '?');
    throw new InvalidInputError('cpio-magic', `no cpio newc/crc magic at offset ${at} (found '${shown}', expected 070701 or 070702): not a cpio archive, or corrupt`, { file });
  }
  const f = (o: number, n: string) => hexField(head, o, n, at, file);
  return {
    format,
    ino: f(6, 'c_ino'),
    mode: f(14, 'c_mode'),
    uid: f(22, 'c_uid'),
    gid: f(30, 'c_gid'),
    nlink: f(38, 'c_nlink'),
    mtime: f(46, 'c_mtime'),
    size: f(54, 'c_filesize'),
    devMajor: f(62, 'c_devmajor'),
    devMinor: f(70, 'c_devminor'),
    rdevMajor: f(78, 'c_rdevmajor'),
    rdevMinor: f(86, 'c_rdevminor'),
    nameSize: f(94, 'c_namesize'),
    check: f(102, 'c_check'),
    headerOffset: at,
  };
}

export interface CpioReadOptions {
  /** Refuse archives with more members than this (corrupt input must not loop for ever). */
  maxMembers?: number;
  /** Largest accepted c_namesize including the NUL (default 4096). */
  maxNameSize?: number;
}

export interface CpioEnd {
  /** Offset just after the trailer member (before any block padding). */
  trailerEnd: number;
  /** Members before the trailer. */
  count: number;
}

/**
 * Walk the member headers of a cpio archive in order, without reading member data. Yields every member
 * before `TRAILER!!!` and returns where the trailer ends. A missing trailer, a header or data range past
 * the end of the source, or a malformed header is an InvalidInputError naming the offset.
 */
export async function* readCpioMembers(src: RandomAccessSource, options: CpioReadOptions = {}): AsyncGenerator<CpioMember, CpioEnd> {
  const maxMembers = options.maxMembers ?? 1_000_000;
  const maxNameSize = options.maxNameSize ?? MAX_NAME_SIZE;
  let at = 0;
  let format: CpioFormat | undefined;
  for (let index = 0; index <= maxMembers; index++) {
    if (at + CPIO_HEADER_SIZE > src.size) {
      throw new InvalidInputError('truncated', `cpio archive truncated: ${index === 0 ? 'no header' : `after member #${index - 1}, no header and no ${CPIO_TRAILER}`} at offset ${at} (file is ${src.size} bytes)`, { file: src.name });
    }
    const head = await src.read(at, CPIO_HEADER_SIZE);
    const h = parseCpioHeader(head, at, src.name);
    if (format && h.format !== format) {
      throw new InvalidInputError('cpio-header', `cpio member #${index} at offset ${at} switches format from ${format} to ${h.format}; the archive is corrupt`, { file: src.name });
    }
    format = h.format;
    if (h.nameSize < 2 || h.nameSize > maxNameSize) {
      throw new InvalidInputError('cpio-header', `cpio member #${index} at offset ${at}: name size ${h.nameSize} is outside 2…${maxNameSize}; the archive is corrupt`, { file: src.name });
    }
    const nameEnd = at + CPIO_HEADER_SIZE + h.nameSize;
    if (nameEnd > src.size) {
      throw new InvalidInputError('truncated', `cpio archive truncated inside the name of member #${index} at offset ${at}`, { file: src.name });
    }
    const rawName = await src.read(at + CPIO_HEADER_SIZE, h.nameSize);
    if (rawName[h.nameSize - 1] !== 0 || rawName.indexOf(0) !== h.nameSize - 1) {
      throw new InvalidInputError('cpio-header', `cpio member #${index} at offset ${at}: name is not NUL-terminated at its declared size ${h.nameSize}; the archive is corrupt`, { file: src.name });
    }
    const name = rawName.toString('utf8', 0, h.nameSize - 1);
    const dataOffset = align4(nameEnd);
    const dataEnd = dataOffset + h.size;
    if (name === CPIO_TRAILER) {
      return { trailerEnd: Math.min(align4(dataEnd), src.size), count: index };
    }
    if (dataEnd > src.size) {
      throw new InvalidInputError('truncated', `cpio member '${name}' declares ${h.size} bytes at offset ${dataOffset} but the file ends at ${src.size}: truncated archive`, { file: src.name });
    }
    const { nameSize: _n, ...fields } = h;
    const member: CpioMember = { ...fields, name, dataOffset, nextOffset: align4(dataEnd), index };
    yield member;
    at = member.nextOffset;
  }
  throw new InvalidInputError('cpio-header', `cpio archive has more than ${maxMembers} members; refusing it as corrupt`, { file: src.name });
}

/**
 * Sum of bytes modulo 2^32, the 070702 check value. Adds 32-bit words two bytes at a time in 16-bit
 * lanes (flushed before they can overflow), about four times faster than a byte loop.
 */
export function byteSum(data: Uint8Array, initial = 0): number {
  let sum = initial;
  let i = 0;
  const n = data.length;
  while (i < n && (data.byteOffset + i) % 4 !== 0) sum += data[i++];
  const words = (n - i) >>> 2;
  if (words > 0) {
    const w = new Uint32Array(data.buffer, data.byteOffset + i, words);
    let k = 0;
    while (k < words) {
      // Each word adds at most 2 × 255 to a lane: 128 words stay below 2^16.
      const stop = Math.min(words, k + 128);
      let lanes = 0;
      for (; k < stop; k++) {
        const v = w[k];
        lanes += (v & 0x00ff00ff) + ((v >>> 8) & 0x00ff00ff);
      }
      sum += (lanes & 0xffff) + (lanes >>> 16);
    }
    i += words * 4;
    sum %= 0x100000000;
  }
  while (i < n) sum += data[i++];
  return sum % 0x100000000;
}

/** Incremental byte sum for data that arrives in chunks. */
export class ByteSum {
  value = 0;
  update(chunk: Uint8Array): this {
    this.value = byteSum(chunk, this.value);
    return this;
  }
}

/** Hex as cpio and swupdate print it. */
export const hex32 = (n: number): string => '0x' + n.toString(16);

/**
 * A pass-through that fails at the end of a crc member whose byte sum differs from c_check (newc members
 * pass unchecked). The error names the member and both sums, as swupdate's "Checksum WRONG" does.
 */
export function cpioCheckStream(member: CpioMember, file: string): Transform {
  const sum = new ByteSum();
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (member.format === 'crc') sum.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (member.format === 'crc' && sum.value !== member.check) {
        cb(cpioChecksumError(member, sum.value, file));
      } else cb();
    },
  });
}

export function cpioChecksumError(member: CpioMember, computed: number, file: string): InvalidInputError {
  return new InvalidInputError('cpio-checksum', `cpio member '${member.name}' fails its crc byte sum: computed ${hex32(computed)}, the header says ${hex32(member.check)}; the archive is corrupt or was altered`, { file });
}

/** The member's stored bytes, checked against its crc byte sum as they are read. */
export function checkedMemberStream(src: RandomAccessSource, member: CpioMember): Readable {
  const raw = src.stream(member.dataOffset, member.size);
  const check = cpioCheckStream(member, src.name);
  raw.on('error', (e) => check.destroy(e));
  return raw.pipe(check);
}
