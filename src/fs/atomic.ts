import { createWriteStream } from 'node:fs';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Sha256Meter } from '../crypto/sha256-stream.ts';

/** A temp name beside `path`, so the final rename stays on one filesystem. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
}

/** fsync a file (its content) or a directory (names created or renamed in it), so it survives a power cut. */
export async function fsyncPath(path: string): Promise<void> {
  const h = await open(path, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** fsync a directory so a rename inside it is durable. */
export const fsyncDir: (dir: string) => Promise<void> = fsyncPath;

/**
 * Stream `data` into a new file at `path`, hashing while writing. Not yet durable: the caller checks the
 * result and then publishes the file (publishTemp, or a link as the object store does). `mode` defaults to
 * createWriteStream's (0o666 less the umask).
 */
export async function writeHashed(path: string, data: Readable, mode?: number): Promise<{ sha256: string; size: number }> {
  const meter = new Sha256Meter();
  await pipeline(data, (chunks: AsyncIterable<Buffer>) => meter.through(chunks), createWriteStream(path, mode === undefined ? {} : { mode }));
  return { sha256: meter.digest(), size: meter.size };
}

/** Give a finished temp file its final name durably: fsync it, rename it over `path`, fsync the directory. */
export async function publishTemp(tmp: string, path: string): Promise<void> {
  await fsyncPath(tmp);
  await rename(tmp, path);
  await fsyncDir(dirname(path));
}

/**
 * Durable write of a stream: temp file → fsync → rename → fsync directory. Returns the sha256 and size
 * of what was written. On any error the temp file is removed and `path` is untouched.
 */
export async function writeStreamAtomically(path: string, data: Readable, options: { mode?: number } = {}): Promise<{ sha256: string; size: number }> {
  const tmp = tempPathFor(path);
  try {
    const written = await writeHashed(tmp, data, options.mode ?? 0o644);
    await publishTemp(tmp, path);
    return written;
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Durable write of small content (state JSON, progress, boot env). */
export async function writeFileAtomically(path: string, content: string | Buffer, options: { mode?: number } = {}): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await writeFile(tmp, content, { mode: options.mode ?? 0o644 });
    await publishTemp(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
