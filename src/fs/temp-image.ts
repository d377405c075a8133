/**
 * A payload opened as a FileTree through a private temp copy. Filesystem readers need random access, but an
 * importer can only hand out some payloads as streams (decoded, decrypted, or inside a squashfs); such a
 * payload is copied once to a file of its own and opened there. The stream checks its own hash, so a
 * mismatch fails the copy before the filesystem layer sees a byte; closing the tree removes the copy.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PvError, fromSystemError } from '../errors.ts';
import { closingAlso, type FileTree } from './file-tree.ts';
import { FileSource, type RandomAccessSource } from './source.ts';

export interface TempCopyOptions {
  /** mkdtemp prefix under the OS temp directory, e.g. `pvmigrate-mender-`: says who left it, should one stay. */
  prefix: string;
  /** How to open the copy; by default the filesystem layer's openImage (ext4, squashfs, vfat, tar, disk). */
  open?: (src: RandomAccessSource) => Promise<FileTree>;
}

/**
 * Copy what `stream()` gives to a private temp file and open it as a tree whose sources are named `name` (how messages
 * name the payload). The copy is neither renamed nor fsynced: nobody else sees it and it dies with the tree.
 */
export async function openTempCopy(stream: () => Readable, name: string, options: TempCopyOptions): Promise<FileTree> {
  const open = options.open ?? (async (src: RandomAccessSource) => (await import('./open-image.ts')).openImage(src));
  const dir = await mkdtemp(join(tmpdir(), options.prefix));
  const remove = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    const path = join(dir, 'image');
    await pipeline(stream(), createWriteStream(path)).catch((err: unknown) => {
      throw err instanceof PvError ? err : fromSystemError(err, path);
    });
    const file = await FileSource.open(path);
    const tree = await open(file.slice(0, file.size, name)).catch(async (err: unknown) => {
      await file.close();
      throw err;
    });
    return closingAlso(tree, async () => {
      try {
        await file.close();
      } finally {
        await remove();
      }
    });
  } catch (err) {
    await remove();
    throw err;
  }
}
