import { InvalidInputError } from '../../errors.ts';

/**
 * One 512-byte tar header block decoded as ustar / GNU / v7: the raw fields before pax or GNU long-name
 * records are applied. Numbers are octal, or GNU base-256 when the top bit of the first byte is set.
 */
export const BLOCK = 512;

export interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** 'ustar' (POSIX, with prefix), 'gnu' (old GNU "ustar  "), 'v7' (no magic). */
  flavour: 'ustar' | 'gnu' | 'v7';
  /** Old-GNU sparse ('S'): the map entries in this block, whether more follow, and the real size. */
  gnuSparse?: { entries: SparseSegment[]; extended: boolean; realSize: number };
}

export interface SparseSegment {
  offset: number;
  size: number;
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** NUL-terminated string field; tar names are bytes, read here as UTF-8 (as GNU tar and Go write them). */
function text(block: Buffer, off: number, len: number): string {
  const field = block.subarray(off, off + len);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? len : end).toString('utf8');
}

/** An octal or base-256 number field; `what` names the field in the error. */
export function parseNumber(block: Buffer, off: number, len: number, what: string, file: string): number {
  const field = block.subarray(off, off + len);
  if (field[0] & 0x80) {
    // GNU base-256: big-endian two's complement with the marker bit in the first byte.
    const negative = field[0] === 0xff;
    let v = BigInt(field[0] & 0x7f) - (negative ? 0x80n : 0n);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(field[i]);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new InvalidInputError('tar-number', `tar header ${what} ${v} is out of range`, { file });
    }
    return Number(v);
  }
  const s = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[\0 ]+/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new InvalidInputError('tar-number', `tar header ${what} is not an octal number: '${s.replace(/[^\x20-\x7e]/g, '?')}'`, { file });
  const v = parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw new InvalidInputError('tar-number', `tar header ${what} is out of range`, { file });
  return v;
}

/** Sum of the header bytes with the checksum field counted as spaces; both unsigned and (old) signed sums are valid. */
function checksumMatches(block: Buffer, file: string, at: number): void {
  // A checksum field that is no number at all is the usual sign of input that is not a tar.
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').replace(/^[\0 ]+/, '');
  if (!/^[0-7]+$/.test(field)) {
    throw new InvalidInputError('tar-checksum', `tar header at offset ${at} has no octal checksum ('${field.replace(/[^\x20-\x7e]/g, '?')}'); the archive is corrupt or not a tar`, { file });
  }
  const stored = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new InvalidInputError('tar-checksum', `tar header at offset ${at} has a bad checksum (stored ${stored}, computed ${unsigned}); the archive is corrupt or not a tar`, { file });
  }
}

function sparseEntries(block: Buffer, off: number, count: number, file: string): SparseSegment[] {
  const out: SparseSegment[] = [];
  for (let i = 0; i < count; i++) {
    const o = off + i * 24;
    if (block[o] === 0) break;
    out.push({ offset: parseNumber(block, o, 12, 'sparse offset', file), size: parseNumber(block, o + 12, 12, 'sparse size', file) });
  }
  return out;
}

/** Decode one non-zero header block at archive offset `at`, checking its checksum. */
export function parseHeader(block: Buffer, file: string, at: number): RawHeader {
  checksumMatches(block, file, at);
  const magic = block.subarray(257, 265).toString('latin1');
  const flavour = magic === 'ustar  \0' ? 'gnu' : magic.startsWith('ustar') ? 'ustar' : 'v7';
  let name = text(block, 0, 100);
  // The prefix field exists only in POSIX ustar; old GNU uses those bytes for atime/ctime/sparse data.
  if (flavour === 'ustar') {
    const prefix = text(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const typeflag = block[156] === 0 ? '0' : String.fromCharCode(block[156]);
  const h: RawHeader = {
    name,
    mode: parseNumber(block, 100, 8, 'mode', file),
    uid: parseNumber(block, 108, 8, 'uid', file),
    gid: parseNumber(block, 116, 8, 'gid', file),
    size: parseNumber(block, 124, 12, 'size', file),
    mtime: parseNumber(block, 136, 12, 'mtime', file),
    typeflag,
    linkname: text(block, 157, 100),
    uname: flavour === 'v7' ? '' : text(block, 265, 32),
    gname: flavour === 'v7' ? '' : text(block, 297, 32),
    devmajor: flavour === 'v7' ? 0 : parseNumber(block, 329, 8, 'devmajor', file),
    devminor: flavour === 'v7' ? 0 : parseNumber(block, 337, 8, 'devminor', file),
    flavour,
  };
  if (h.size < 0) throw new InvalidInputError('tar-number', `tar header at offset ${at} has a negative size`, { file });
  if (typeflag === 'S' && flavour === 'gnu') {
    h.gnuSparse = {
      entries: sparseEntries(block, 386, 4, file),
      extended: block[482] !== 0,
      realSize: parseNumber(block, 483, 12, 'sparse real size', file),
    };
  }
  return h;
}

/** An old-GNU sparse extension block: 21 entries and a continuation flag. */
export function parseSparseExtension(block: Buffer, file: string): { entries: SparseSegment[]; extended: boolean } {
  return { entries: sparseEntries(block, 0, 21, file), extended: block[504] !== 0 };
}

/** Pax extended header records "<len> <key>=<value>\n", in order (sparse 0.0 repeats keys); values stay bytes. */
export function parsePaxRecords(data: Buffer, file: string): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers pad the record block with NULs
    const space = data.indexOf(0x20, pos);
    const len = space < 0 ? NaN : Number(data.subarray(pos, space).toString('latin1'));
    if (!Number.isSafeInteger(len) || len <= space - pos + 1 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new InvalidInputError('tar-pax', `malformed pax extended header record at byte ${pos}`, { file });
    }
    const rec = data.subarray(space + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new InvalidInputError('tar-pax', `pax extended header record at byte ${pos} has no key=value`, { file });
    out.push([rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1)]);
    pos += len;
  }
  return out;
}
