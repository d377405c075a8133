/**
 * A content-addressed object directory: `<dir>/<sha256>`, as pvr's `.pvr/objects/` and the device's
 * `/storage/objects/`. Independent of any repo layout so the runtime can use it for on-device storage.
 *
 * Writes hash while streaming into a temp file in the same directory, fsync it, then publish it under its
 * hash with link(2) (no-clobber, so an object already present keeps its inode and the trail hard links
 * to it stay valid), fsync the directory. A temp file whose hash is wrong is deleted, never published.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { InvalidInputError, fromSystemError } from '../errors.ts';
import { sha256Of } from '../crypto/sha256-stream.ts';
import { fsyncDir, fsyncPath, writeHashed } from '../fs/atomic.ts';
import { isSha256 } from './state.ts';

export interface PutResult {
  sha256: string;
  size: number;
}

export type VerifyResult = { status: 'ok'; size: number } | { status: 'missing' } | { status: 'mismatch'; actual: string; size: number };

const TEMP_PREFIX = '.incoming-';
/** Large reads: per-chunk overhead dominates hashing below about 1 MiB. */
const READ_CHUNK = 1 << 20;

export class ObjectStore {
  constructor(readonly dir: string) {}

  /** Path of an object (whether or not it exists); refuses anything that is not a sha256 name. */
  path(sha: string): string {
    if (!isSha256(sha)) throw new InvalidInputError('object-name', `'${sha}' is not a 64-character lowercase sha256`, { file: this.dir });
    return join(this.dir, sha);
  }

  async has(sha: string): Promise<boolean> {
    try {
      return (await stat(this.path(sha))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw fromSystemError(err, this.path(sha));
    }
  }

  /** Size in bytes, or undefined when absent. */
  async size(sha: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(sha))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fromSystemError(err, this.path(sha));
    }
  }

  /** A stream of the object's bytes (not re-verified; use verify() or verifyingStream for that). */
  open(sha: string): Readable {
    return createReadStream(this.path(sha), { highWaterMark: READ_CHUNK });
  }

  /** Store whatever the stream holds under its sha256. */
  put(data: Readable): Promise<PutResult> {
    return this.write(data, undefined);
  }

  putFile(file: string): Promise<PutResult> {
    return this.write(createReadStream(file, { highWaterMark: READ_CHUNK }), undefined, file);
  }

  /** Store the stream only if it hashes to `sha` (a download or import); otherwise nothing is kept. */
  putExpected(sha: string, data: Readable, source?: string): Promise<PutResult> {
    this.path(sha);
    return this.write(data, sha, source);
  }

  /** Re-hash an object and compare it with its name. */
  async verify(sha: string): Promise<VerifyResult> {
    const file = this.path(sha);
    let got: { sha256: string; size: number };
    try {
      got = await sha256Of(createReadStream(file, { highWaterMark: READ_CHUNK }));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'missing' };
      throw fromSystemError(err, file);
    }
    const { sha256: actual, size } = got;
    return actual === sha ? { status: 'ok', size } : { status: 'mismatch', actual, size };
  }

  /** Names of the objects present, sorted; temp files and anything not named by a sha256 are skipped. */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => isSha256(n)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fromSystemError(err, this.dir);
    }
  }

  private async write(data: Readable, expected: string | undefined, source?: string): Promise<PutResult> {
    await mkdir(this.dir, { recursive: true }).catch((err: unknown) => {
      throw fromSystemError(err, this.dir);
    });
    const tmp = join(this.dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      const { sha256, size } = await writeHashed(tmp, data, 0o644);
      if (expected !== undefined && sha256 !== expected) {
        throw new InvalidInputError('object-hash', `content hashes to ${sha256}, not to the expected object ${expected}`, { file: source ?? this.path(expected) });
      }
      await fsyncPath(tmp);
      await publish(tmp, join(this.dir, sha256));
      await fsyncDir(this.dir);
      return { sha256, size };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err instanceof InvalidInputError ? err : fromSystemError(err, source ?? this.dir);
    }
  }
}

/**
 * Give the temp file its final name without replacing an existing object: concurrent puts of the same
 * content all succeed and the first one's inode stays. Filesystems without hard links fall back to
 * rename, which is still atomic (and the content is the same by construction).
 */
async function publish(tmp: string, target: string): Promise<void> {
  try {
    await link(tmp, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      await rm(tmp, { force: true });
      return;
    }
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EMLINK') {
      await rename(tmp, target);
      return;
    }
    throw err;
  }
  await rm(tmp, { force: true });
}
