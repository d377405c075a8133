/**
 * A revision given on the command line: a pvr repo directory, or an export tarball imported into a
 * temporary repo that `close()` removes.
 */
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidInputError, fromSystemError } from '../errors.ts';
import { importTarball } from './export.ts';
import { openRepo, type PvrRepo } from './pvr-repo.ts';

export interface OpenRevision {
  repo: PvrRepo;
  close(): Promise<void>;
}

export async function openRevision(path: string): Promise<OpenRevision> {
  const st = await stat(path).catch((err: unknown) => {
    throw fromSystemError(err, path);
  });
  if (st.isDirectory()) return { repo: await openRepo(path), close: async () => {} };
  if (await looksLikeJson(path)) {
    throw new InvalidInputError('not-a-revision', 'this is a JSON file, not a pvr repo or an export tarball: a revision needs its objects too (a repo with .pvr/json and .pvr/objects, or json + objects/ in a tar)', { file: path });
  }
  const work = await mkdtemp(join(tmpdir(), 'pvmigrate-revision-'));
  const close = (): Promise<void> => rm(work, { recursive: true, force: true });
  try {
    const { dir } = await importTarball(path, join(work, 'repo'));
    return { repo: await openRepo(dir), close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function looksLikeJson(path: string): Promise<boolean> {
  const h = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await h.read(Buffer.alloc(64), 0, 64, 0);
    return /^\s*[{[]/.test(buffer.subarray(0, bytesRead).toString('latin1'));
  } finally {
    await h.close();
  }
}
