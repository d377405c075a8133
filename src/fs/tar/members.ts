import { InvalidInputError } from '../../errors.ts';
import { BLOCK, isZeroBlock, parseHeader, parsePaxRecords, parseSparseExtension, type RawHeader, type SparseSegment } from './header.ts';

/**
 * Tar member assembly shared by the streaming parser and the random-access index: reads a header, folds in
 * the pax / GNU long-name / sparse records that precede or follow it, and says where the content lies.
 */
export type TarMemberType = 'file' | 'hardlink' | 'symlink' | 'chr' | 'blk' | 'dir' | 'fifo';

export interface TarMember {
  /** As stored (after pax `path` / GNU long name), not normalised. */
  path: string;
  type: TarMemberType;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch (pax fractions dropped). */
  mtime: number;
  /** Apparent content size (the real size of a sparse file); 0 for types without content. */
  size: number;
  linkpath?: string;
  devmajor: number;
  devminor: number;
  xattrs?: Record<string, Buffer>;
  /** Archive offset of the first header block of this member (its pax / long-name headers included). */
  headerOffset: number;
  /** Archive offset and length of the stored content (after a sparse 1.0 map). */
  dataOffset: number;
  dataSize: number;
  /** Sparse layout: the stored content is these segments of the file, holes read as zeros. */
  sparse?: SparseSegment[];
}

/** Sequential byte input: a stream being consumed, or positional reads on a random-access source. */
export interface ByteInput {
  readonly name: string;
  /** Bytes consumed so far. */
  readonly position: number;
  /** Exactly `n` bytes; null when the input ends exactly here; an error when it ends part-way. */
  readExact(n: number): Promise<Buffer | null>;
  skip(n: number): Promise<void>;
}

// Bounds that keep a corrupt or hostile archive from exhausting memory or looping.
const MAX_META_BYTES = 8 << 20; // one pax header or GNU long name
const MAX_META_HEADERS = 64; // extension headers before one member
const MAX_SPARSE_SEGMENTS = 1 << 20;

export function padding(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

async function need(input: ByteInput, n: number, what: string): Promise<Buffer> {
  const at = input.position;
  const b = await input.readExact(n);
  if (!b) throw new InvalidInputError('truncated', `tar archive ends at offset ${at} inside ${what}`, { file: input.name });
  return b;
}

async function readMeta(input: ByteInput, h: RawHeader, what: string): Promise<Buffer> {
  if (h.size > MAX_META_BYTES) throw new InvalidInputError('tar-meta', `${what} of ${h.size} bytes exceeds the ${MAX_META_BYTES}-byte limit`, { file: input.name });
  const data = await need(input, h.size, what);
  await input.skip(padding(h.size));
  return data;
}

function metaText(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}

type Pax = Map<string, Buffer>;

function paxNumber(pax: Pax, key: string, file: string): number | undefined {
  const v = pax.get(key);
  if (v === undefined) return undefined;
  const s = v.toString('latin1');
  if (!/^-?\d+(\.\d+)?$/.test(s)) throw new InvalidInputError('tar-pax', `pax ${key} is not a number: '${s.slice(0, 40)}'`, { file });
  const n = Math.floor(Number(s));
  if (!Number.isSafeInteger(n)) throw new InvalidInputError('tar-pax', `pax ${key} is out of range`, { file });
  return n;
}

function checkSparse(segments: SparseSegment[], realSize: number, stored: number, path: string, file: string): void {
  let end = 0;
  let total = 0;
  for (const s of segments) {
    if (s.offset < end || s.size < 0 || s.offset + s.size > realSize) {
      throw new InvalidInputError('tar-sparse', `sparse map of '${path}' has overlapping or out-of-range segments`, { file });
    }
    end = s.offset + s.size;
    total += s.size;
  }
  if (total !== stored) {
    throw new InvalidInputError('tar-sparse', `sparse map of '${path}' covers ${total} bytes but ${stored} are stored`, { file });
  }
}

/** GNU sparse 1.0: decimal numbers, one per line, at the start of the content, padded to a block. */
async function readSparse10Map(input: ByteInput, limit: number, path: string): Promise<{ segments: SparseSegment[]; bytes: number }> {
  const numbers: number[] = [];
  let wanted = -1;
  let carry = '';
  let bytes = 0;
  while (wanted < 0 || numbers.length < 1 + 2 * wanted) {
    if (bytes + BLOCK > limit) throw new InvalidInputError('tar-sparse', `sparse map of '${path}' runs past its member`, { file: input.name });
    const block = await need(input, BLOCK, `the sparse map of '${path}'`);
    bytes += BLOCK;
    const parts = (carry + block.toString('latin1')).split('\n');
    carry = parts.pop() ?? '';
    for (const p of parts) {
      if (wanted >= 0 && numbers.length >= 1 + 2 * wanted) break;
      if (!/^\d+$/.test(p)) throw new InvalidInputError('tar-sparse', `sparse map of '${path}' holds a non-number`, { file: input.name });
      numbers.push(Number(p));
      if (numbers.length === 1) {
        wanted = numbers[0];
        if (wanted > MAX_SPARSE_SEGMENTS) throw new InvalidInputError('tar-sparse', `sparse map of '${path}' has too many segments (${wanted})`, { file: input.name });
      }
    }
    if (wanted >= 0 && numbers.length >= 1 + 2 * wanted) break;
    if (carry.length > 32) throw new InvalidInputError('tar-sparse', `sparse map of '${path}' is malformed`, { file: input.name });
  }
  const segments: SparseSegment[] = [];
  for (let i = 0; i < wanted; i++) segments.push({ offset: numbers[1 + 2 * i], size: numbers[2 + 2 * i] });
  return { segments, bytes };
}

function typeOf(h: RawHeader, path: string): TarMemberType {
  switch (h.typeflag) {
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'chr';
    case '4':
      return 'blk';
    case '5':
    case 'D': // GNU dumpdir: a directory whose content lists its entries
      return 'dir';
    case '6':
      return 'fifo';
    default:
      // '0', '7', 'S' and, as POSIX asks, any unknown type: a regular file. V7 marked directories by a slash.
      return h.typeflag === '0' && path.endsWith('/') ? 'dir' : 'file';
  }
}

function xattrsOf(pax: Pax, file: string): Record<string, Buffer> | undefined {
  let out: Record<string, Buffer> | undefined;
  for (const [k, v] of pax) {
    if (k.startsWith('SCHILY.xattr.')) (out ??= {})[k.slice(13)] = v;
    else if (k.startsWith('LIBARCHIVE.xattr.')) {
      let name: string;
      try {
        name = decodeURIComponent(k.slice(17));
      } catch {
        throw new InvalidInputError('tar-pax', `pax record ${k.slice(0, 60)} has a malformed xattr name`, { file });
      }
      (out ??= {})[name] = Buffer.from(v.toString('latin1'), 'base64');
    }
  }
  return out;
}

/**
 * The next member, or null at the end-of-archive marker. The input is left at the member's content
 * (`dataOffset`); the caller consumes or skips `dataSize + padding(dataSize)` bytes before the next call.
 * `globals` carries pax 'g' records across calls.
 */
export async function nextMember(input: ByteInput, globals: Pax): Promise<TarMember | null> {
  const file = input.name;
  const headerOffset = input.position;
  const local: Pax = new Map();
  const sparse00: SparseSegment[] = [];
  let longName: string | undefined;
  let longLink: string | undefined;
  for (let n = 0; ; n++) {
    if (n > MAX_META_HEADERS) throw new InvalidInputError('tar-meta', `more than ${MAX_META_HEADERS} extension headers before one member at offset ${headerOffset}`, { file });
    const at = input.position;
    const block = await input.readExact(BLOCK);
    if (!block) {
      if (n === 0) throw new InvalidInputError('truncated', `tar archive ends at offset ${at} without its end-of-archive marker (truncated?)`, { file });
      throw new InvalidInputError('truncated', `tar archive ends at offset ${at} after an extension header`, { file });
    }
    if (isZeroBlock(block)) {
      if (n > 0) throw new InvalidInputError('tar-meta', `extension header at offset ${headerOffset} is followed by the end of the archive`, { file });
      return null;
    }
    const h = parseHeader(block, file, at);
    switch (h.typeflag) {
      case 'x':
      case 'X': {
        for (const [k, v] of parsePaxRecords(await readMeta(input, h, 'a pax header'), file)) {
          // Sparse 0.0 repeats offset/numbytes pairs, so they are kept in order rather than in the map.
          if (k === 'GNU.sparse.offset') sparse00.push({ offset: Number(v.toString('latin1')), size: -1 });
          else if (k === 'GNU.sparse.numbytes') {
            const last = sparse00[sparse00.length - 1];
            if (!last || last.size !== -1) throw new InvalidInputError('tar-sparse', 'pax GNU.sparse.numbytes without a GNU.sparse.offset', { file });
            last.size = Number(v.toString('latin1'));
            if (sparse00.length > MAX_SPARSE_SEGMENTS) throw new InvalidInputError('tar-sparse', 'too many sparse segments', { file });
          } else local.set(k, v);
        }
        continue;
      }
      case 'g':
        for (const [k, v] of parsePaxRecords(await readMeta(input, h, 'a pax global header'), file)) globals.set(k, v);
        continue;
      case 'L':
        longName = metaText(await readMeta(input, h, 'a GNU long name'));
        continue;
      case 'K':
        longLink = metaText(await readMeta(input, h, 'a GNU long link name'));
        continue;
      case 'V': // volume label: no member
        await input.skip(h.size + padding(h.size));
        continue;
      case 'M':
      case 'N':
        throw new InvalidInputError('tar-unsupported', `multi-volume tar archives are not supported (header at offset ${at})`, { file });
    }
    const pax: Pax = new Map([...globals, ...local]);
    let path = pax.get('GNU.sparse.name')?.toString('utf8') ?? pax.get('path')?.toString('utf8') ?? longName ?? h.name;
    const type = typeOf(h, path);
    if (type === 'dir' && path.length > 1 && path.endsWith('/')) path = path.replace(/\/+$/, '');
    const linkpath = pax.get('linkpath')?.toString('utf8') ?? longLink ?? h.linkname;
    let stored = paxNumber(pax, 'size', file) ?? h.size;
    if (h.typeflag === '1' || h.typeflag === '2' || h.typeflag === '3' || h.typeflag === '4' || h.typeflag === '5' || h.typeflag === '6') stored = 0;
    const m: TarMember = {
      path,
      type,
      mode: h.mode & 0o7777,
      uid: paxNumber(pax, 'uid', file) ?? h.uid,
      gid: paxNumber(pax, 'gid', file) ?? h.gid,
      uname: pax.get('uname')?.toString('utf8') ?? h.uname,
      gname: pax.get('gname')?.toString('utf8') ?? h.gname,
      mtime: paxNumber(pax, 'mtime', file) ?? h.mtime,
      size: type === 'file' ? stored : 0,
      devmajor: h.devmajor,
      devminor: h.devminor,
      headerOffset,
      dataOffset: input.position,
      dataSize: stored,
    };
    if (type === 'hardlink' || type === 'symlink') m.linkpath = linkpath;
    const xattrs = xattrsOf(pax, file);
    if (xattrs) m.xattrs = xattrs;

    if (h.gnuSparse) {
      const segments = [...h.gnuSparse.entries];
      for (let ext = h.gnuSparse.extended; ext; ) {
        if (segments.length > MAX_SPARSE_SEGMENTS) throw new InvalidInputError('tar-sparse', `too many sparse segments in '${path}'`, { file });
        const e = parseSparseExtension(await need(input, BLOCK, `the sparse map of '${path}'`), file);
        segments.push(...e.entries);
        ext = e.extended;
      }
      m.sparse = segments;
      m.size = h.gnuSparse.realSize;
      m.dataOffset = input.position;
    } else if (pax.get('GNU.sparse.major')?.toString() === '1') {
      if (pax.get('GNU.sparse.minor')?.toString() !== '0') throw new InvalidInputError('tar-sparse', `unsupported GNU sparse format 1.${pax.get('GNU.sparse.minor')} for '${path}'`, { file });
      const map = await readSparse10Map(input, stored, path);
      m.sparse = map.segments;
      m.size = paxNumber(pax, 'GNU.sparse.realsize', file) ?? 0;
      m.dataOffset = input.position;
      m.dataSize = stored - map.bytes;
    } else if (pax.has('GNU.sparse.map')) {
      const nums = pax.get('GNU.sparse.map')!.toString('latin1').split(',');
      if (nums.length % 2 || nums.length / 2 > MAX_SPARSE_SEGMENTS || !nums.every((x) => /^\d+$/.test(x))) {
        throw new InvalidInputError('tar-sparse', `malformed GNU.sparse.map for '${path}'`, { file });
      }
      m.sparse = [];
      for (let i = 0; i < nums.length; i += 2) m.sparse.push({ offset: Number(nums[i]), size: Number(nums[i + 1]) });
      m.size = paxNumber(pax, 'GNU.sparse.size', file) ?? paxNumber(pax, 'GNU.sparse.realsize', file) ?? 0;
    } else if (sparse00.length) {
      if (sparse00.some((s) => !Number.isSafeInteger(s.offset) || !Number.isSafeInteger(s.size) || s.size < 0)) {
        throw new InvalidInputError('tar-sparse', `malformed GNU.sparse.offset/numbytes records for '${path}'`, { file });
      }
      m.sparse = sparse00;
      m.size = paxNumber(pax, 'GNU.sparse.size', file) ?? 0;
    }
    if (m.sparse) checkSparse(m.sparse, m.size, m.dataSize, path, file);
    return m;
  }
}

const ZERO_CHUNK = 1 << 16;

/**
 * The apparent content of a member from its stored bytes: the data itself, or for a sparse member the
 * segments placed at their offsets with zeros between (holes yielded in bounded chunks).
 */
export async function* expandContent(m: TarMember, stored: AsyncIterable<Buffer>, file: string): AsyncGenerator<Buffer> {
  if (!m.sparse) {
    yield* stored;
    return;
  }
  const it = stored[Symbol.asyncIterator]();
  let pending: Buffer | undefined;
  let pos = 0;
  function* zeros(n: number): Generator<Buffer> {
    for (let left = n; left > 0; left -= ZERO_CHUNK) yield Buffer.alloc(Math.min(ZERO_CHUNK, left));
  }
  for (const seg of m.sparse) {
    yield* zeros(seg.offset - pos);
    let left = seg.size;
    while (left > 0) {
      if (!pending || pending.length === 0) {
        const r = await it.next();
        if (r.done) throw new InvalidInputError('truncated', `content of '${m.path}' ends early`, { file });
        pending = r.value;
      }
      const take = pending.subarray(0, Math.min(left, pending.length));
      pending = pending.subarray(take.length);
      left -= take.length;
      yield take;
    }
    pos = seg.offset + seg.size;
  }
  yield* zeros(m.size - pos);
}
