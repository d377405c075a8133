import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { writeStreamAtomically } from '../../src/fs/atomic.ts';
import type { FileTree } from '../../src/fs/file-tree.ts';
import { FileSource } from '../../src/fs/source.ts';

/**
 * An image inside the bundle's squashfs as a FileTree. The squashfs reader gives files only as streams and
 * filesystem readers need random access, so the image is written once (hash- and verity-checked while
 * streamed) to a private temp file that the tree's close() removes.
 */
export async function openImageTree(name: string, stream: () => Readable): Promise<FileTree> {
  const { openImage } = await import('../../src/fs/open-image.ts');
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-rauc-'));
  const remove = (): Promise<void> => rm(dir, { recursive: true, force: true });
  let src: FileSource | undefined;
  try {
    const path = join(dir, 'image');
    await writeStreamAtomically(path, stream());
    src = await FileSource.open(path);
    const tree = await openImage(src.slice(0, src.size, name));
    const file = src;
    return {
      walk: () => tree.walk(),
      open: (e) => tree.open(e),
      close: async () => {
        try {
          await tree.close();
        } finally {
          await file.close();
          await remove();
        }
      },
    };
  } catch (err) {
    await src?.close();
    await remove();
    throw err;
  }
}
