import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A temp name beside `path`, so the final rename stays on one filesystem. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
}

/** fsync a directory so a rename inside it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Durable write of a stream: temp file → fsync → rename → fsync directory. Returns the sha256 and size
 * of what was written. On any error the temp file is removed and `path` is untouched.
 */
export async function writeStreamAtomically(path: string, data: Readable, options: { mode?: number } = {}): Promise<{ sha256: string; size: number }> {
  const tmp = tempPathFor(path);
  const hash = createHash('sha256');
  let size = 0;
  try {
    await pipeline(
      data,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(tmp, { mode: options.mode ?? 0o644 }),
    );
    const h = await open(tmp, 'r+');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, path);
    await fsyncDir(dirname(path));
    return { sha256: hash.digest('hex'), size };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Durable write of small content (state JSON, progress, boot env). */
export async function writeFileAtomically(path: string, content: string | Buffer, options: { mode?: number } = {}): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const h = await open(tmp, 'w', options.mode ?? 0o644);
    try {
      await h.writeFile(content);
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, path);
    await fsyncDir(dirname(path));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
