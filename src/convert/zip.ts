import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { InvalidInputError, fromSystemError } from '../errors.ts';

/** Limits against decompression bombs: a member may inflate to at most MAX_RATIO × its stored size once past RATIO_FLOOR bytes. */
export const ZIP_LIMITS = {
  maxRatio: 500,
  ratioFloor: 64 * 1024 * 1024,
  maxTotal: 64 * 1024 * 1024 * 1024,
  maxMembers: 10_000,
};

export interface ZipMember {
  /** The member name inside the zip. */
  name: string;
  /** Where it was extracted. */
  path: string;
  size: number;
}

/** True for the local-file-header or empty-archive signature. */
export function isZip(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === 0x04034b50 || (head.length >= 4 && head.readUInt32LE(0) === 0x06054b50);
}

/** Member names must stay inside the archive's own tree: no absolute paths, drive letters, backslashes or "..". */
function traversalProblem(name: string): string | undefined {
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'is an absolute path';
  if (name.includes('\\')) return 'contains a backslash';
  if (name.includes('\0')) return 'contains a NUL byte';
  if (name.split('/').includes('..')) return 'climbs out of the archive with ".."';
  return undefined;
}

/**
 * Extract the regular-file members of a zip (e.g. a CI job's artifacts download) into `dir`, each as
 * `dir/<index>` so no member name touches the host path. Refuses traversing names, encrypted members and
 * bombs (ratio and total size, checked on the bytes actually inflated, not only on the declared sizes).
 */
export async function extractZip(file: string, dir: string): Promise<ZipMember[]> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true }, (err, z) =>
      err ? reject(new InvalidInputError('zip-format', `not a readable zip: ${err.message}`, { file })) : resolve(z!),
    ),
  );
  const members: ZipMember[] = [];
  let total = 0;
  try {
    const entries: yauzl.Entry[] = [];
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entries.length >= ZIP_LIMITS.maxMembers) return reject(new InvalidInputError('zip-members', `more than ${ZIP_LIMITS.maxMembers} members`, { file }));
        entries.push(entry);
        zip.readEntry();
      });
      zip.on('end', () => resolve());
      zip.on('error', (err: Error) => {
        // yauzl checks names itself while listing; report those as the traversal they are.
        const named = /^(invalid relative path|absolute path): (.*)$/.exec(err.message);
        if (named) reject(new InvalidInputError('zip-traversal', `member '${named[2]}' ${traversalProblem(named[2]!) ?? 'has an unsafe name'}; refusing the archive`, { file }));
        else reject(new InvalidInputError('zip-format', `corrupt zip: ${err.message}`, { file }));
      });
      zip.readEntry();
    });
    for (const entry of entries) {
      const name = entry.fileName;
      const problem = traversalProblem(name);
      if (problem) throw new InvalidInputError('zip-traversal', `member '${name}' ${problem}; refusing the archive`, { file });
      if (name.endsWith('/')) continue;
      if ((entry.generalPurposeBitFlag & 1) !== 0) throw new InvalidInputError('zip-encrypted', `member '${name}' is encrypted; decrypt the archive first`, { file });
      const limit = Math.max(ZIP_LIMITS.ratioFloor, entry.compressedSize * ZIP_LIMITS.maxRatio);
      if (entry.uncompressedSize > limit) throw bomb(file, name, entry.uncompressedSize, entry.compressedSize);
      const path = join(dir, String(members.length));
      const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
        zip.openReadStream(entry, (err, s) => (err ? reject(new InvalidInputError('zip-format', `member '${name}': ${err.message}`, { file })) : resolve(s!))),
      );
      let size = 0;
      const guard = new Transform({
        transform(chunk: Buffer, _enc, done) {
          size += chunk.length;
          total += chunk.length;
          if (size > limit) return done(bomb(file, name, size, entry.compressedSize));
          if (total > ZIP_LIMITS.maxTotal) return done(new InvalidInputError('zip-bomb', `members inflate past ${ZIP_LIMITS.maxTotal} bytes in total; refusing the archive`, { file }));
          done(null, chunk);
        },
      });
      await pipeline(stream, guard, createWriteStream(path)).catch((err: unknown) => {
        if (err instanceof InvalidInputError) throw err;
        const e = err as NodeJS.ErrnoException;
        if (e.code && /^E[A-Z]+$/.test(e.code)) throw fromSystemError(err, path);
        throw new InvalidInputError('zip-format', `member '${name}': ${e.message}`, { file });
      });
      members.push({ name, path, size });
    }
  } finally {
    zip.close();
  }
  return members;
}

function bomb(file: string, name: string, size: number, stored: number): InvalidInputError {
  return new InvalidInputError(
    'zip-bomb',
    `member '${name}' inflates to more than ${size} bytes from ${stored} stored (over ${ZIP_LIMITS.maxRatio}:1): a decompression bomb; refusing the archive`,
    { file },
  );
}
