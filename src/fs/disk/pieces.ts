import type { RandomAccessSource } from '../source.ts';

/** A stretch of file content: bytes stored at `at` in the image, or a run of zeros (a hole). */
export type Piece = { at: number; length: number } | { zeros: number };

/** Content is read in chunks of up to this many bytes. */
const CHUNK = 1 << 20;
/** Holes are served from this one zero buffer; consumers must not write to the chunks they receive. */
const ZEROS = Buffer.alloc(CHUNK);

/**
 * The bytes of a file described as pieces, in chunks of at most 1 MiB, with one read in flight ahead of the
 * consumer so the disk stays busy while the previous chunk is hashed or written.
 */
export async function* readPieces(src: RandomAccessSource, pieces: AsyncIterable<Piece> | Iterable<Piece>): AsyncGenerator<Buffer> {
  let pending: Promise<Buffer> | undefined;
  for await (const p of pieces) {
    let done = 0;
    const total = 'zeros' in p ? p.zeros : p.length;
    while (done < total) {
      const n = Math.min(CHUNK, total - done);
      const next = 'zeros' in p ? Promise.resolve(ZEROS.subarray(0, n)) : src.read(p.at + done, n);
      // Mark as handled now; the rejection still surfaces when it is awaited below.
      next.catch(() => {});
      done += n;
      if (pending) yield await pending;
      pending = next;
    }
  }
  if (pending) yield await pending;
}
