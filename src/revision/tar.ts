/**
 * The small slice of ustar the revision exchange format needs (pvr export: regular files only, short
 * names), written and read as streams. Reading also understands the pax headers Go's archive/tar and GNU
 * tar may add, and reports every other entry type so the caller can refuse it.
 */
import { InvalidInputError } from '../errors.ts';

const BLOCK = 512;

export interface TarHeader {
  name: string;
  size: number;
  /** '0' regular file, '5' directory, anything else reported as is. */
  type: string;
  mode: number;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** One ustar header block for a regular file (uid/gid 0, fixed mtime: exports are deterministic). */
export function fileHeader(name: string, size: number, options: { mode?: number; mtime?: number } = {}): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > 100) throw new InvalidInputError('tar-name', `member name longer than 100 bytes: ${name}`);
  const h = Buffer.alloc(BLOCK);
  nameBytes.copy(h, 0);
  h.write(octal(options.mode ?? 0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  if (size <= 0o77777777777) h.write(octal(size, 12), 124, 'ascii');
  else {
    // GNU base-256 for members of 8 GiB and more.
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  h.write(octal(options.mtime ?? 0, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

export function padding(size: number): Buffer {
  const rem = size % BLOCK;
  return Buffer.alloc(rem === 0 ? 0 : BLOCK - rem);
}

/** Two zero blocks end the archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

function cstring(b: Buffer): string {
  const nul = b.indexOf(0);
  return (nul === -1 ? b : b.subarray(0, nul)).toString('utf8');
}

function parseNumber(field: Buffer, what: string, file: string): number {
  if (field[0]! & 0x80) {
    let v = 0n;
    for (let i = 1; i < field.length; i++) v = (v << 8n) | BigInt(field[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidInputError('tar-header', `${what} too large`, { file });
    return Number(v);
  }
  const s = cstring(field).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new InvalidInputError('tar-header', `${what} is not an octal number`, { file });
  return Number.parseInt(s, 8);
}

/** Reads exact byte counts from a chunk stream without holding more than one chunk. */
export class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  private readonly it: AsyncIterator<Buffer>;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    return true;
  }

  /** Exactly n bytes, or null when the stream ended before the first byte; a partial read is truncation. */
  async read(n: number, file: string): Promise<Buffer | null> {
    while (this.buf.length < n) {
      if (!(await this.fill())) {
        if (this.buf.length === 0) return null;
        throw new InvalidInputError('truncated', 'the archive ends in the middle of a block', { file });
      }
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** The next n bytes as chunks (for streaming a member's content). */
  async *take(n: number, file: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) throw new InvalidInputError('truncated', 'the archive ends inside a member', { file });
      const chunk = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(chunk.length);
      left -= chunk.length;
      yield chunk;
    }
  }

  async skip(n: number, file: string): Promise<void> {
    for await (const _ of this.take(n, file));
  }
}

/** pax extended header records: "<len> key=value\n". */
function parsePax(data: Buffer, file: string): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    const len = sp > pos ? Number.parseInt(data.subarray(pos, sp).toString('ascii'), 10) : NaN;
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > data.length) throw new InvalidInputError('tar-header', 'malformed pax header', { file });
    const rec = data.subarray(sp + 1, pos + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    pos += len;
  }
  return out;
}

const MAX_PAX = 64 * 1024;

/**
 * Iterate the members of a tar stream. For each member the caller must consume `body` fully (or the
 * iteration skips whatever is left). Stops at the end-of-archive block or at the end of the stream.
 */
export async function* readTar(source: AsyncIterable<Buffer>, file: string): AsyncGenerator<{ header: TarHeader; body: AsyncGenerator<Buffer> }> {
  const r = new ChunkReader(source);
  let pax = new Map<string, string>();
  for (;;) {
    const block = await r.read(BLOCK, file);
    if (block === null || block.every((b) => b === 0)) return;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
    const stored = cstring(block.subarray(148, 156)).trim();
    if (!/^[0-7]{1,7}$/.test(stored) || Number.parseInt(stored, 8) !== sum) {
      throw new InvalidInputError('tar-header', 'bad tar header checksum: not a tar archive, or corrupted', { file });
    }
    const type = String.fromCharCode(block[156]!) === '\0' ? '0' : String.fromCharCode(block[156]!);
    let size = parseNumber(block.subarray(124, 136), 'member size', file);
    if (type === 'x' || type === 'g') {
      if (size > MAX_PAX) throw new InvalidInputError('tar-header', `pax header of ${size} bytes is too large`, { file });
      const data = (await r.read(size + padding(size).length, file)) ?? Buffer.alloc(0);
      if (type === 'x') pax = parsePax(data.subarray(0, size), file);
      continue;
    }
    const prefix = block.subarray(257, 263).toString('ascii') === 'ustar\0' ? cstring(block.subarray(345, 500)) : '';
    let name = (prefix ? prefix + '/' : '') + cstring(block.subarray(0, 100));
    if (pax.has('path')) name = pax.get('path')!;
    if (pax.has('size')) {
      size = Number(pax.get('size'));
      if (!Number.isSafeInteger(size) || size < 0) throw new InvalidInputError('tar-header', 'bad pax size', { file });
    }
    pax = new Map();
    const header: TarHeader = { name, size, type, mode: parseNumber(block.subarray(100, 108), 'mode', file) };
    let taken = 0;
    const body = (async function* () {
      for await (const chunk of r.take(size, file)) {
        taken += chunk.length;
        yield chunk;
      }
    })();
    yield { header, body };
    // Whatever the caller left unread is skipped so the next header is found where it belongs.
    await body.return(undefined);
    await r.skip(size - taken, file);
    await r.skip(padding(size).length, file);
  }
}
