/**
 * The small slice of ustar the revision exchange format writes (pvr export: regular files only, short
 * names). Reading an export goes through the general tar reader, src/fs/tar/stream.ts.
 */
import { InvalidInputError } from '../errors.ts';
import { BLOCK } from '../fs/tar/header.ts';
import { padding as paddingLength } from '../fs/tar/members.ts';

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

/** The zero bytes that fill a member's content up to the next block. */
export function padding(size: number): Buffer {
  return Buffer.alloc(paddingLength(size));
}

/** Two zero blocks end the archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
